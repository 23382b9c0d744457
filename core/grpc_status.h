#pragma once

#include "absl/status/status.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/support/status.h"

namespace tokenstatus {

// The conversions between absl::Status and the forms of a gRPC status, each written once.

// The one conversion from absl::Status to grpc::Status, used at the service boundary only.
// The gRPC code equals the absl code; the message is kept; the third argument is the serialized
// RpcStatusOf(status), so clients read the status's google.rpc.ErrorInfo from the
// grpc-status-details-bin trailer. OK maps to grpc::Status::OK.
grpc::Status ToGrpcStatus(const absl::Status& status);

// The google.rpc.Status of `status`: its code and message, and for a non-OK status its
// google.rpc.ErrorInfo (ErrorInfoOf) as the one detail. OK gives code 0 and nothing else. The
// trailer of ToGrpcStatus, and the status of an answer that carries one in its body (Envoy's
// ext_authz CheckResponse).
google::rpc::Status RpcStatusOf(const absl::Status& status);

// Converts a gRPC status as a client receives it into an absl::Status with the same code and
// message. Each detail of the grpc-status-details-bin trailer (a google.rpc.Status whose
// details are google.protobuf.Any) becomes a payload under its type URL, so ErrorInfoOf and
// ErrorReason (core/status_util.h) return the server's ErrorInfo (reason, domain,
// metadata). A status without an ErrorInfo (e.g. a transport failure: the server is not
// there) gets one from MakeError with the reason ErrorReason gives a bare status of that code
// ("UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL", ...). OK maps to OK. Pure, thread-safe.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace tokenstatus
