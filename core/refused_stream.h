#pragma once

#include "absl/status/status.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/server_callback.h"

namespace tokenstatus {

// A reactor for a server-streaming call refused before it started (bad request, no permission,
// no such RPC here): it finishes at once with ToGrpcStatus(`status`) and deletes itself when gRPC
// is done with it. Return it from a callback handler. `status` must not be OK.
grpc::ServerWriteReactor<grpc::ByteBuffer>* RefusedStream(const absl::Status& status);

}  // namespace tokenstatus
