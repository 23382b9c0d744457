#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "apitoken/v1/token_service.pb.h"
#include "core/metrics/grpc_server_metrics.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/server_callback.h"
#include "server/mirror/split_runner.h"
#include "server/mirror/token_mirror.h"
#include "server/store/token_store.h"
#include "server/watch/snapshot_budget.h"
#include "server/watch/watch_metrics.h"

namespace tokenstatus {

struct WatchHubOptions {
  // Messages a stream may have queued (live changes and PROGRESS; a snapshot in progress is one
  // entry, which does not count).
  // One more ends the stream with RESOURCE_EXHAUSTED / WATCHER_FELL_BEHIND.
  int queue_size = 1024;
  // Watch streams open at once, server-wide and per connection (ctx->peer()); one more is
  // refused with RESOURCE_EXHAUSTED / TOO_MANY_WATCHERS.
  int max_watchers = 20000;
  int max_watchers_per_connection = 2000;
  // Watch streams open at once per authenticated principal (see Watch); one more is refused
  // with RESOURCE_EXHAUSTED / TOO_MANY_WATCHERS. (A fleet of sidecars may share one principal.)
  int max_watchers_per_principal = 10000;
  // Tokens per KIND_SNAPSHOT message, and its size in bytes (a chunk ends before the token that
  // would take it past snapshot_chunk_bytes; it always holds at least one token). At least
  // 16 KiB: more than the largest token.
  int snapshot_chunk = 500;
  int snapshot_chunk_bytes = 64 * 1024;
  // The memory every snapshot in progress may hold together (see WatchHub, "Snapshots"): the
  // pointers to the captured tokens (16 bytes per token, counted once per capture however many
  // streams share it) and one chunk per stream (snapshot_chunk_bytes). A stream whose snapshot
  // does not fit waits its turn; one snapshot alone always runs, whatever its size.
  int64_t snapshot_memory_budget = int64_t{64} << 20;
  // Snapshots in progress per principal; a principal's further streams wait their turn.
  int max_snapshots_per_principal = 8;
  // The longest a stream waits for its snapshot to start; then it ends with RESOURCE_EXHAUSTED /
  // SNAPSHOT_BUDGET_EXHAUSTED and a retry hint (ErrorInfo metadata retry_after_ms), uniformly
  // random in [snapshot_retry_after, 2 * snapshot_retry_after).
  absl::Duration snapshot_max_wait = absl::Seconds(30);
  absl::Duration snapshot_retry_after = absl::Seconds(5);
  // A stream whose snapshot write has not completed for this long (its client does not read) is
  // cancelled, and its share of the budget goes to the streams waiting.
  absl::Duration snapshot_stall_timeout = absl::Seconds(60);
  // Events per store read of a resume catch-up, and the timeout of each read.
  int catch_up_page = 1000;
  absl::Duration catch_up_timeout = absl::Seconds(5);
  // PROGRESS when a request does not set progress_interval, and the least one may ask for.
  absl::Duration default_progress_interval = absl::Seconds(5);
  absl::Duration min_progress_interval = absl::Milliseconds(100);
  // How often the hub's one timer thread looks for streams due a PROGRESS, snapshots that waited
  // or stalled too long.
  absl::Duration tick = absl::Milliseconds(50);
};

class WatchReactor;
struct SnapshotCapture;

// The fan-out of the mirror's changes to WatchTokens streams (README "WatchTokens").
//
// The hub is the mirror's listener. OnChanges only hands the batch to the hub's fan-out thread
// (a leaf lock and a vector append): the mirror's writer lock, and with it the acknowledgement of
// the change and every read, never waits for streams. The fan-out thread takes the batches in
// order, serializes each once per filter (account or all, with or without secret hashes: one
// KIND_CHANGES message for all the streams that asked for the same) and only enqueues it to the
// matching streams: a stream has a bounded queue and ONE write in flight, its next write started
// from OnWriteDone, so a slow stream never slows the fan-out or the other streams. A stream that
// overflows its queue ends with RESOURCE_EXHAUSTED / WATCHER_FELL_BEHIND naming the revision to
// resume from. The batches waiting for the fan-out are bounded by what the tailer applies
// meanwhile (one entry per applied batch, sharing the mirror's events).
//
// Start of a stream (consistent with the mirror: no change slips between the state read and the
// subscription; the fan-out may still hold batches up to the mirror's revision R, which the
// stream skips, see WatchReactor::covered_):
//   - epoch given and != the mirror's, or since_revision > the mirror's revision R: KIND_RESET,
//     then SNAPSHOT..SYNCED and live changes with send_initial_state, else the stream ends OK;
//   - since_revision == 0: SNAPSHOT chunks + SYNCED with send_initial_state, at the revision the
//     snapshot starts at (R, unless it waits its turn; see "Snapshots"), then live changes
//     after it; without send_initial_state, live after R;
//   - 0 < since_revision < R: the events (since_revision, R] read from the store
//     (TokenStore::ReadEvents, in pages; KIND_RESET as above when the history is trimmed), live
//     changes after R held back meanwhile; then live.
// PROGRESS at the revision the fan-out has delivered goes through the same queue when a stream
// sent nothing for its progress_interval. OnReset (under the mirror's writer lock; waits for a
// fan-out round in progress, drops the batches not yet delivered): every stream gets KIND_RESET,
// then a fresh SNAPSHOT..SYNCED with send_initial_state, else it ends OK. Tokens carry
// secret_sha256 only for a stream that asked for it with include_secret_hash (client caches that
// verify secrets locally).
//
// Snapshots (send_initial_state, and after a KIND_RESET) are produced as the stream drains, never
// serialized whole: when its turn comes, a stream captures, under the mirror's reader lock, the
// mirror's immutable tokens of its account (or all) at the mirror's revision R (pointers, shared
// with every stream that starts at R with the same account), and queues ONE snapshot entry; each
// time its previous write completes it serializes the next chunk from the capture, then SYNCED
// at R, and lets the capture go. Live changes after R queue behind that entry (and count against
// queue_size as always). What the snapshots in progress hold together stays within
// snapshot_memory_budget (SnapshotBudget; at most max_snapshots_per_principal per principal):
// a stream that does not fit waits, first come first served (a principal at its limit lets
// the others pass), having captured nothing and queuing no live change (its snapshot, taken at a
// later revision, covers them: no gap); one that waited snapshot_max_wait is refused with
// RESOURCE_EXHAUSTED / SNAPSHOT_BUDGET_EXHAUSTED and a retry hint. A snapshot whose write makes
// no progress for snapshot_stall_timeout is cancelled.
//
// A capture holds on to tokens the mirror replaces meanwhile (until the snapshot is sent or the
// stream RESET); those are not counted.
//
// Thread-safe. Lock order: the mirror's lock, then the hub's, then a stream's (or a stream
// link's, then the hub's); the budget's, the timer's wake-up lock and the fan-out's pending
// lock are leaves. The hub must
// outlive every stream it served: destroy it after the gRPC server has shut down (and after
// mirror.SetListener(nullptr) or the mirror's destruction).
class WatchHub final : public MirrorListener {
 public:
  // `metrics` (may be null: nothing recorded) must outlive the hub.
  WatchHub(TokenMirror& mirror, TokenStore& store, WatchHubOptions options = {},
           WatchMetrics* metrics = nullptr);
  ~WatchHub() override;  // Shutdown(), then stops the fan-out and timer threads

  // Serves one WatchTokens call with the parsed `request` for `principal` (authenticated and
  // authorized by the caller); the returned reactor is gRPC's to drive. Errors end the stream
  // at once: INVALID_ARGUMENT (since_revision < 0, a malformed account_id, progress_interval
  // negative or below the minimum), RESOURCE_EXHAUSTED / TOO_MANY_WATCHERS (server, connection
  // or principal at its limit), UNAVAILABLE / MIRROR_NOT_READY before the mirror has loaded,
  // UNAVAILABLE / SERVER_SHUTTING_DOWN after Shutdown(). A stream whose snapshot could not start
  // within snapshot_max_wait ends with RESOURCE_EXHAUSTED / SNAPSHOT_BUDGET_EXHAUSTED, its
  // ErrorInfo metadata retry_after_ms saying when to try again. `call` is finished with how the
  // stream ends.
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Watch(grpc::CallbackServerContext* context,
                                                    const apitoken::v1::WatchTokensRequest& request,
                                                    const std::string& principal,
                                                    metrics::CallMetrics call = {});

  // Ends every stream with UNAVAILABLE / SERVER_SHUTTING_DOWN ("resume with since_revision=N
  // elsewhere") and refuses new ones. Idempotent.
  void Shutdown();

  // Streams currently open.
  int watcher_count() const;

  // What the snapshots take now.
  struct SnapshotStats {
    int64_t reserved_bytes = 0;  // of snapshot_memory_budget
    int in_progress = 0;         // streams sending a snapshot
    int waiting = 0;             // streams waiting for their snapshot to start
    int64_t chunks_built = 0;    // KIND_SNAPSHOT messages serialized since the hub started
  };
  SnapshotStats snapshot_stats() const;

  // MirrorListener (under the mirror's writer lock). OnChanges hands the batch to the fan-out
  // thread and returns; OnReset resets every stream at once.
  void OnChanges(absl::Span<const std::shared_ptr<const TokenEvent>> events, int64_t revision,
                 const std::string& epoch) override;
  void OnReset(const std::string& epoch, int64_t revision, const std::string& chain) override;

 private:
  friend class WatchReactor;

  // What TryStartSnapshotLocked did.
  enum class SnapshotStart { kStarted, kGone, kPrincipalAtLimit, kOverBudget };
  // A stream waiting for its snapshot to start.
  struct SnapshotWaiter {
    WatchReactor* stream;
    absl::Time since;
  };

  // A batch of the mirror's changes waiting for the fan-out.
  struct PendingChanges {
    std::vector<std::shared_ptr<const TokenEvent>> events;
    int64_t revision;
    std::string epoch;
  };
  // The state every stream has been offered every change up to (revision -1: not known yet).
  struct Delivered {
    int64_t revision = -1;
    std::string epoch;
    std::string chain;
  };

  // The fan-out thread: delivers the pending batches, in order, under mu_.
  void FanOutLoop();
  // Enqueues `batch` to every stream whose filter it matches.
  void FanOutLocked(const PendingChanges& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // With `view` read under the mirror's lock: if no batch waits for the fan-out, every stream has
  // been offered every change up to the view's revision.
  void NoteDeliveredLocked(const MirrorView& view) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Called by a stream from OnDone: forgets it.
  void Unregister(WatchReactor* stream);
  // Reads the next catch-up page of the stream behind `link` (see WatchReactor::CatchUpRead).
  void ReadCatchUpPage(std::shared_ptr<struct StreamLink> link, int64_t after_revision);
  // `stream` (owed a snapshot) joins the end of the line of snapshots waiting to start, unless it
  // is in it already.
  void AwaitSnapshotLocked(WatchReactor& stream) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Refuses the streams that waited too long, then starts the snapshots of the waiting streams
  // that fit the budget, in order, at `view`'s revision; `started` gets their links, to Kick()
  // once the locks are released.
  void StartWaitingSnapshotsLocked(const MirrorView& view,
                                   std::vector<std::shared_ptr<struct StreamLink>>& started)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  SnapshotStart TryStartSnapshotLocked(WatchReactor& stream, const MirrorView& view)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes `stream` (or the waiter at `it`) out of the line of snapshots waiting to start.
  void EraseWaiterLocked(WatchReactor* stream) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::btree_map<uint64_t, SnapshotWaiter>::iterator EraseWaiterLocked(
      absl::btree_map<uint64_t, SnapshotWaiter>::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Cancels the snapshots whose write made no progress for snapshot_stall_timeout.
  void CancelStalledSnapshotsLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Wakes the timer thread (from any thread, under any lock).
  void Wake();
  // The timer thread: PROGRESS, the snapshots waiting to start (at once when woken), stalls.
  void TimerLoop();
  void SendDueSnapshots();
  void SendDueProgress();

  TokenMirror& mirror_;
  TokenStore& store_;
  const WatchHubOptions options_;
  WatchMetrics* const metrics_;

  // The timer thread's wake-up (a leaf lock).
  absl::Mutex wake_mu_;
  bool wake_ ABSL_GUARDED_BY(wake_mu_) = false;
  bool stop_ ABSL_GUARDED_BY(wake_mu_) = false;

  mutable absl::Mutex mu_;
  absl::flat_hash_set<WatchReactor*> streams_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int> per_peer_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int> per_principal_ ABSL_GUARDED_BY(mu_);
  // What the snapshots in progress hold (declared before anything that may hold part of it).
  SnapshotBudget snapshot_budget_;
  std::atomic<int64_t> chunks_built_{0};
  // Streams owed a snapshot that has not started: in arrival order (by sequence number), and
  // how many per principal.
  absl::btree_map<uint64_t, SnapshotWaiter> snapshot_waiters_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<WatchReactor*, uint64_t> snapshot_waiter_index_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int> snapshot_waiters_per_principal_ ABSL_GUARDED_BY(mu_);
  uint64_t next_snapshot_waiter_ ABSL_GUARDED_BY(mu_) = 0;
  // Streams whose snapshot started (some may have finished it since), for the stall check.
  absl::flat_hash_set<WatchReactor*> snapshotting_ ABSL_GUARDED_BY(mu_);
  // The captures of the mirror's current revision by account ("" for all), for the streams
  // that start a snapshot at the same revision to share. Cleared by OnReset.
  absl::flat_hash_map<std::string, std::weak_ptr<const SnapshotCapture>> captures_
      ABSL_GUARDED_BY(mu_);
  absl::BitGen bitgen_ ABSL_GUARDED_BY(mu_);  // jitter of the retry hints
  Delivered delivered_ ABSL_GUARDED_BY(mu_);
  // The fan-out's list (reused), and the two threads that work through it.
  struct Delivery {
    WatchReactor* stream;
    const grpc::ByteBuffer* message;
  };
  static constexpr size_t kMinSplitFanOut = 256;  // below this, one thread is faster
  // How much lower the fan-out threads' priority is than the rest of the server's: when the
  // cores are busy, the threads that answer calls (and the tailer, which acknowledges changes)
  // go first.
  static constexpr int kFanOutNice = 2;
  std::vector<Delivery> deliveries_ ABSL_GUARDED_BY(mu_);
  SplitRunner fan_out_{kFanOutNice};
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  // The batches OnChanges handed over, oldest first (a leaf lock: OnChanges holds the mirror's).
  absl::Mutex pending_mu_;
  std::vector<PendingChanges> pending_ ABSL_GUARDED_BY(pending_mu_);
  bool stop_fan_out_ ABSL_GUARDED_BY(pending_mu_) = false;
  std::thread fan_out_thread_;
  std::thread timer_;
};

}  // namespace tokenstatus
