#include "core/grpc_status.h"

#include <string>

#include "absl/strings/cord.h"
#include "core/status_util.h"
#include "google/rpc/status.pb.h"

namespace tokenstatus {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  google::rpc::Status details;
  details.set_code(static_cast<int>(status.code()));
  details.set_message(std::string(status.message()));
  details.add_details()->PackFrom(ErrorInfoOf(status));
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()),
                      details.SerializeAsString());
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  const auto code = static_cast<absl::StatusCode>(status.error_code());
  absl::Status result(code, status.error_message());
  bool has_error_info = false;
  google::rpc::Status details;
  if (!status.error_details().empty() && details.ParseFromString(status.error_details())) {
    for (const google::protobuf::Any& detail : details.details()) {
      result.SetPayload(detail.type_url(), absl::Cord(detail.value()));
      has_error_info = has_error_info || detail.Is<google::rpc::ErrorInfo>();
    }
  }
  if (has_error_info) return result;
  return MakeError(code, ErrorReason(absl::Status(code, "")), status.error_message());
}

}  // namespace tokenstatus
