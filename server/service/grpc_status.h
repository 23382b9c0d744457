#pragma once

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace tokenstatus {

// The one conversion from absl::Status to grpc::Status, used at the service boundary only.
// The gRPC code equals the absl code; the message is kept; the third argument is a serialized
// google.rpc.Status whose details hold the status's google.rpc.ErrorInfo (ErrorInfoOf), so
// clients read it from the grpc-status-details-bin trailer. OK maps to grpc::Status::OK.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace tokenstatus
