#pragma once

#include <cstdint>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/read_requests.h"
#include "core/unary_call.h"
#include "grpcpp/server_context.h"

namespace tokenstatus {

// How long a read RPC may wait for the copy it reads from (see ReadWaitDeadline).
struct ReadWaitLimits {
  absl::Duration deadline_margin;    // the work ends this much before the RPC's deadline
  absl::Duration max_revision_wait;  // the longest wait for a min_revision
  absl::Duration load_wait;          // the longest wait for a copy that has not loaded yet
};

// The one way a read RPC (GetToken, ListTokens, VerifyToken) waits for the copy it is served from
// (the server's TokenMirror, token-sidecar's TokenCache): finishes `call` with what `read`
// returns, run once the copy is loaded (`loaded()`) and has reached `min_revision`: at once if it
// has; else when `wait(min_revision, deadline, done)` calls `done`, `deadline` being
// ReadWaitDeadline(context, ...limits). If the wait fails while the copy is loaded, the call
// finishes with the wait's error (DEADLINE_EXCEEDED / REVISION_NOT_REACHED, or UNAVAILABLE when
// shutting down); if the copy has still not loaded, `read` runs and says so itself
// (MIRROR_NOT_READY).
//
// `loaded` is `bool()` and thread-safe; `wait` is
// `void(int64_t, absl::Time, absl::AnyInvocable<void(absl::Status)>)`, calling its callback once.
// `call` is a UnaryCall<Log>, or any movable type with `void Finish(const absl::Status&) &&`
// (token-sidecar hands a verification's outcome to a callback instead of finishing an RPC).
template <typename Call, typename Loaded, typename Wait>
void ReadAtRevision(const grpc::CallbackServerContext& context, const ReadWaitLimits& limits,
                    int64_t min_revision, Loaded loaded, Wait wait, Call call,
                    absl::AnyInvocable<absl::Status()> read) {
  const bool was_loaded = loaded();
  if (was_loaded && min_revision == 0) {
    std::move(call).Finish(read());
    return;
  }
  const absl::Time deadline = ReadWaitDeadline(
      context, limits.deadline_margin, limits.max_revision_wait, was_loaded, limits.load_wait);
  wait(min_revision, deadline,
       [loaded = std::move(loaded), call = std::move(call),
        read = std::move(read)](absl::Status reached) mutable {
         std::move(call).Finish(reached.ok() || !loaded() ? read() : reached);
       });
}

}  // namespace tokenstatus
