#pragma once

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace tokenstatus {

// The two conversions between absl::Status and grpc::Status, each written once.

// The one conversion from absl::Status to grpc::Status, used at the service boundary only.
// The gRPC code equals the absl code; the message is kept; the third argument is a serialized
// google.rpc.Status whose details hold the status's google.rpc.ErrorInfo (ErrorInfoOf), so
// clients read it from the grpc-status-details-bin trailer. OK maps to grpc::Status::OK.
grpc::Status ToGrpcStatus(const absl::Status& status);

// Converts a gRPC status as a client receives it into an absl::Status with the same code and
// message. Each detail of the grpc-status-details-bin trailer (a google.rpc.Status whose
// details are google.protobuf.Any) becomes a payload under its type URL, so ErrorInfoOf and
// ErrorReason (core/status_util.h) return the server's ErrorInfo (reason, domain,
// metadata). A status without an ErrorInfo (e.g. a transport failure: the server is not
// there) gets one from MakeError with the reason ErrorReason gives a bare status of that code
// ("UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL", ...). OK maps to OK. Pure, thread-safe.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace tokenstatus
