#pragma once

#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/grpc_status.h"
#include "core/metrics/grpc_server_metrics.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"

namespace tokenstatus {

// The one pipeline of every unary RPC handler, on the server and on token-sidecar:
//
//   admit (authenticate + authorize) -> validate -> run -> finish, a refusal logged once and
//   the call measured once (grpc_server_* metrics, when given a CallMetrics).
//
// Example (a handler of the server):
//   return ServeUnary(
//       context, CallLog("GetToken", request->token_id()),
//       [&](CallLog& log) { return Admit(*context, Permission::kRead, log); },
//       [&] { return ValidateGetRequest(*request); },
//       [&](UnaryCall<CallLog> call) { ReadAtRevision(..., std::move(call), ...); });
//
// `Log` is the call's log: it has `void Refused(const absl::Status&) const` (the server's
// CallLog; token-sidecar's UnloggedCall writes nothing). The pipeline is the only caller of
// Refused for the steps it runs, and UnaryCall::Finish the only one after them, so that each
// refusal is logged exactly once.

// The end of one unary call: finishes its reactor exactly once with a status converted once
// (ToGrpcStatus), reporting a non-OK status to the call's log first and the status to the
// call's metrics. Move-only; Finish consumes it. Thread-compatible (a call is finished from
// whichever thread completes its work).
template <typename Log>
class UnaryCall {
 public:
  UnaryCall(grpc::ServerUnaryReactor* reactor, Log log, metrics::CallMetrics metrics = {})
      : reactor_(reactor), log_(std::move(log)), metrics_(std::move(metrics)) {}
  UnaryCall(UnaryCall&&) = default;
  UnaryCall& operator=(UnaryCall&&) = default;

  Log& log() { return log_; }
  const Log& log() const { return log_; }

  // Finishes the call with `status` (the response must be complete if it is OK).
  void Finish(const absl::Status& status) && {
    if (!status.ok()) log_.Refused(status);
    metrics_.Finish(status);
    reactor_->Finish(ToGrpcStatus(status));
  }

 private:
  grpc::ServerUnaryReactor* reactor_;
  Log log_;
  metrics::CallMetrics metrics_;
};

// Runs one unary call through the pipeline and returns its reactor (the handler returns it):
//   1. `admit(log)` -> absl::Status: authenticates and authorizes the caller (and may record the
//      principal in `log`); a refusal finishes the call.
//   2. `validate()` -> absl::Status or absl::StatusOr<T>: checks the request (into T); a
//      refusal finishes the call. Runs only for an admitted caller: permission is checked
//      before the request is looked at.
//   3. `run(UnaryCall<Log>)`, or `run(UnaryCall<Log>, T)`: the work, which finishes the call
//      (at once or later, on any thread) through UnaryCall::Finish.
// `metrics` (started by the handler, or none) records the call once it finishes.
template <typename Log, typename Admit, typename Validate, typename Run>
grpc::ServerUnaryReactor* ServeUnary(grpc::CallbackServerContext* context, Log log, Admit&& admit,
                                     Validate&& validate, Run&& run,
                                     metrics::CallMetrics metrics = {}) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  UnaryCall<Log> call(reactor, std::move(log), std::move(metrics));
  if (absl::Status admitted = admit(call.log()); !admitted.ok()) {
    std::move(call).Finish(admitted);
    return reactor;
  }
  auto validated = validate();
  if constexpr (std::is_same_v<decltype(validated), absl::Status>) {
    if (!validated.ok()) {
      std::move(call).Finish(validated);
      return reactor;
    }
    run(std::move(call));
  } else {
    if (!validated.ok()) {
      std::move(call).Finish(validated.status());
      return reactor;
    }
    run(std::move(call), *std::move(validated));
  }
  return reactor;
}

}  // namespace tokenstatus
