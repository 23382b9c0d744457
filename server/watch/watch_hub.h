#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "apitoken/v1/token_service.pb.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/server_callback.h"
#include "server/store/token_store.h"
#include "server/watch/split_runner.h"
#include "server/watch/token_mirror.h"

namespace tokenstatus {

struct WatchHubOptions {
  // Messages a stream may have queued (live changes and PROGRESS; snapshot chunks do not count).
  // One more ends the stream with RESOURCE_EXHAUSTED / WATCHER_FELL_BEHIND.
  int queue_size = 1024;
  // Watch streams open at once, server-wide and per connection (ctx->peer()); one more is
  // refused with RESOURCE_EXHAUSTED / TOO_MANY_WATCHERS.
  int max_watchers = 20000;
  int max_watchers_per_connection = 2000;
  // Watch streams open at once per authenticated principal (see Watch); one more is refused
  // with RESOURCE_EXHAUSTED / TOO_MANY_WATCHERS. (A fleet of sidecars may share one principal.)
  int max_watchers_per_principal = 10000;
  // Tokens per KIND_SNAPSHOT message.
  int snapshot_chunk = 500;
  // Events per store read of a resume catch-up, and the timeout of each read.
  int catch_up_page = 1000;
  absl::Duration catch_up_timeout = absl::Seconds(5);
  // PROGRESS when a request does not set progress_interval, and the least one may ask for.
  absl::Duration default_progress_interval = absl::Seconds(5);
  absl::Duration min_progress_interval = absl::Milliseconds(100);
  // How often the hub's one timer thread looks for streams due a PROGRESS.
  absl::Duration tick = absl::Milliseconds(50);
};

class WatchStream;

// The fan-out of the mirror's changes to WatchTokens streams (DESIGN.md "Watch protocol").
//
// The hub is the mirror's listener. OnChanges serializes each batch once per filter (account or
// all, with or without secret hashes: one KIND_CHANGES message for all the streams that asked
// for the same) and only enqueues it to the matching streams: a stream has a bounded queue and ONE
// write in flight, its next write started from OnWriteDone, so a slow stream never slows OnChanges
// or the other streams. A stream that overflows its queue ends with RESOURCE_EXHAUSTED /
// WATCHER_FELL_BEHIND naming the revision to resume from.
//
// Start of a stream (consistent with the mirror: no change slips between the state read and the
// subscription):
//   - epoch given and != the mirror's, or since_revision > the mirror's revision R: KIND_RESET,
//     then SNAPSHOT..SYNCED and live changes with send_initial_state, else the stream ends OK;
//   - since_revision == 0: SNAPSHOT chunks + SYNCED at R with send_initial_state; live after R;
//   - 0 < since_revision < R: the events (since_revision, R] read from the store
//     (TokenStore::ReadEvents, in pages; KIND_RESET as above when the history is trimmed), live
//     changes after R held back meanwhile; then live.
// PROGRESS at the mirror's revision goes through the same queue when a stream sent nothing for
// its progress_interval. OnReset: every stream gets KIND_RESET, then a fresh SNAPSHOT..SYNCED
// with send_initial_state, else it ends OK. Tokens carry secret_sha256 only for a stream that
// asked for it with include_secret_hash (client caches that verify secrets locally).
//
// Thread-safe. Lock order: the mirror's lock, then the hub's, then a stream's. The hub must
// outlive every stream it served: destroy it after the gRPC server has shut down (and after
// mirror.SetListener(nullptr) or the mirror's destruction).
class WatchHub final : public MirrorListener {
 public:
  WatchHub(TokenMirror& mirror, TokenStore& store, WatchHubOptions options = {});
  ~WatchHub() override;  // Shutdown(), then stops the timer thread

  // Serves one WatchTokens call with the parsed `request` for `principal` (authenticated and
  // authorized by the caller); the returned reactor is gRPC's to drive. Errors end the stream
  // at once: INVALID_ARGUMENT (since_revision < 0, a malformed account_id, progress_interval
  // negative or below the minimum), RESOURCE_EXHAUSTED / TOO_MANY_WATCHERS (server, connection
  // or principal at its limit), UNAVAILABLE / MIRROR_NOT_READY before the mirror has loaded,
  // UNAVAILABLE / SERVER_SHUTTING_DOWN after Shutdown().
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Watch(grpc::CallbackServerContext* context,
                                                    const apitoken::v1::WatchTokensRequest& request,
                                                    const std::string& principal);

  // A reactor that ends its stream at once with `status` (not OK), e.g. for a request that does
  // not parse. Not counted as a watcher.
  static grpc::ServerWriteReactor<grpc::ByteBuffer>* Refuse(const absl::Status& status);

  // Ends every stream with UNAVAILABLE / SERVER_SHUTTING_DOWN ("resume with since_revision=N
  // elsewhere") and refuses new ones. Idempotent.
  void Shutdown();

  // Streams currently open.
  int watcher_count() const;

  // MirrorListener: enqueue only (under the mirror's writer lock).
  void OnChanges(absl::Span<const std::shared_ptr<const TokenEvent>> events, int64_t revision,
                 const std::string& epoch) override;
  void OnReset(const std::string& epoch, int64_t revision) override;

 private:
  friend class WatchStream;

  // Called by a stream from OnDone: forgets it.
  void Unregister(WatchStream* stream);
  // Reads the next catch-up page of the stream behind `link` (see WatchStream::CatchUpRead).
  void ReadCatchUpPage(std::shared_ptr<struct StreamLink> link, int64_t after_revision);
  // Enqueues SNAPSHOT chunks and SYNCED of `view` to `stream` and makes it live.
  void SendSnapshot(WatchStream& stream, const MirrorView& view);
  // The timer thread: PROGRESS and the snapshots owed after a RESET.
  void TimerLoop();
  void SendDueSnapshots();
  void SendDueProgress();

  TokenMirror& mirror_;
  TokenStore& store_;
  const WatchHubOptions options_;

  mutable absl::Mutex mu_;
  absl::flat_hash_set<WatchStream*> streams_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int> per_peer_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int> per_principal_ ABSL_GUARDED_BY(mu_);
  // Streams owed a snapshot (after a RESET) by the timer thread.
  absl::flat_hash_set<WatchStream*> snapshot_due_ ABSL_GUARDED_BY(mu_);
  // The mirror's epoch, as of the last stream start, OnChanges or OnReset (the mirror cannot be
  // asked from OnChanges, which runs under its writer lock).
  std::string epoch_ ABSL_GUARDED_BY(mu_);
  // OnChanges' fan-out list (reused), and the two threads that work through it.
  struct Delivery {
    WatchStream* stream;
    const grpc::ByteBuffer* message;
  };
  static constexpr size_t kMinSplitFanOut = 256;  // below this, one thread is faster
  std::vector<Delivery> deliveries_ ABSL_GUARDED_BY(mu_);
  SplitRunner fan_out_;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread timer_;
};

}  // namespace tokenstatus
