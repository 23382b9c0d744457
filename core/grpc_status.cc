#include "core/grpc_status.h"

#include <string>

#include "absl/strings/cord.h"
#include "core/status_util.h"

namespace tokenstatus {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()),
                      RpcStatusOf(status).SerializeAsString());
}

google::rpc::Status RpcStatusOf(const absl::Status& status) {
  google::rpc::Status rpc_status;
  rpc_status.set_code(static_cast<int>(status.code()));
  if (status.ok()) return rpc_status;
  rpc_status.set_message(std::string(status.message()));
  rpc_status.add_details()->PackFrom(ErrorInfoOf(status));
  return rpc_status;
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
