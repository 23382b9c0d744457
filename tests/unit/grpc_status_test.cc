#include "core/grpc_status.h"

#include <string>

#include "core/status_util.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"

namespace tokenstatus {
namespace {

// Decodes the grpc-status-details-bin payload of `status` into its one ErrorInfo.
google::rpc::ErrorInfo DetailsOf(const grpc::Status& status) {
  google::rpc::Status details;
  EXPECT_TRUE(details.ParseFromString(status.error_details()));
  EXPECT_EQ(details.code(), static_cast<int>(status.error_code()));
  EXPECT_EQ(details.message(), status.error_message());
  google::rpc::ErrorInfo info;
  EXPECT_EQ(details.details_size(), 1);
  if (details.details_size() == 1) {
    EXPECT_TRUE(details.details(0).UnpackTo(&info));
  }
  return info;
}

TEST(GrpcStatusTest, OkIsOk) {
  const grpc::Status status = ToGrpcStatus(absl::OkStatus());
  EXPECT_TRUE(status.ok());
  EXPECT_TRUE(status.error_details().empty());
}

TEST(GrpcStatusTest, CarriesCodeMessageAndErrorInfo) {
  const grpc::Status status =
      ToGrpcStatus(MakeError(absl::StatusCode::kAborted, reason::kRevisionMismatch,
                             "token is at revision 7", {{"current_revision", "7"}}));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(status.error_message(), "token is at revision 7");
  const google::rpc::ErrorInfo info = DetailsOf(status);
  EXPECT_EQ(info.reason(), "REVISION_MISMATCH");
  EXPECT_EQ(info.domain(), kErrorDomain);
  EXPECT_EQ(info.metadata().at("current_revision"), "7");
}

TEST(GrpcStatusTest, AStatusWithoutErrorInfoGetsOneFromItsCode) {
  const grpc::Status unavailable = ToGrpcStatus(absl::UnavailableError("down"));
  EXPECT_EQ(unavailable.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(DetailsOf(unavailable).reason(), "UNAVAILABLE");
  const grpc::Status internal = ToGrpcStatus(absl::InternalError("bug"));
  EXPECT_EQ(internal.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(DetailsOf(internal).reason(), reason::kInternal);
}

TEST(GrpcStatusTest, RpcStatusOfOkIsCodeZeroAlone) {
  const google::rpc::Status status = RpcStatusOf(absl::OkStatus());
  EXPECT_EQ(status.code(), 0);
  EXPECT_TRUE(status.message().empty());
  EXPECT_EQ(status.details_size(), 0);
}

TEST(GrpcStatusTest, RpcStatusOfAnErrorIsTheTrailersDetails) {
  const absl::Status error =
      MakeError(absl::StatusCode::kPermissionDenied, reason::kTokenDisabled, "disabled");
  const google::rpc::Status status = RpcStatusOf(error);
  EXPECT_EQ(status.code(), static_cast<int>(absl::StatusCode::kPermissionDenied));
  EXPECT_EQ(status.message(), "disabled");
  EXPECT_EQ(status.SerializeAsString(), ToGrpcStatus(error).error_details());
  EXPECT_EQ(DetailsOf(ToGrpcStatus(error)).reason(), "TOKEN_DISABLED");
}

}  // namespace
}  // namespace tokenstatus
