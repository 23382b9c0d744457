#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "apitoken/v1/token_service.pb.h"
#include "core/metrics/grpc_server_metrics.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/server_callback.h"
#include "server/watch/watch_messages.h"

namespace tokenstatus {

class WatchHub;
class WatchReactor;

// The way from an asynchronous catch-up read back to its stream: cleared (under `mu`) before
// the stream is deleted, so a late store callback finds nullptr.
struct StreamLink {
  explicit StreamLink(WatchReactor* stream) : stream(stream) {}
  absl::Mutex mu;
  WatchReactor* stream ABSL_GUARDED_BY(mu);
};

// One WatchTokens stream: a bounded queue of serialized messages and one write in flight.
// Methods named *Locked need mu_; Pump() (never under mu_) starts the next write or the Finish.
class WatchReactor final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  enum class Mode {
    kCatchingUp,        // replaying (since_revision, target] from the store; live ones held
    kAwaitingSnapshot,  // owed a snapshot; live changes dropped (the snapshot covers them)
    kLive,              // live changes go to the queue
    kClosing,           // Finish pending or made; nothing more is queued
  };

  WatchReactor(WatchHub& hub, grpc::CallbackServerContext* context, std::string peer,
               std::string principal, const apitoken::v1::WatchTokensRequest& request,
               absl::Duration progress_interval, metrics::CallMetrics call);

  const std::string& peer() const { return peer_; }
  const std::string& principal() const { return principal_; }
  const WatchFilter& filter() const { return filter_; }
  const std::shared_ptr<StreamLink>& link() const { return link_; }

  // --- Called by the hub (under its lock, and the mirror's where noted). ---

  // Sets how the stream starts (under the mirror's reader lock).
  void Start(Mode mode, int64_t catch_up_target, const std::string& epoch);

  // Live change `message` (resume point `revision`), on the hub's fan-out thread. Ignored when
  // the stream already has `revision` or is owed it otherwise (covered_). Returns the messages
  // then queued on the stream (held ones included), for the metrics.
  int DeliverLive(const grpc::ByteBuffer& message, int64_t revision);

  // KIND_RESET at `revision` of `epoch`, dropping everything queued. Returns true if the stream
  // is now owed a snapshot; otherwise it ends OK after the RESET.
  bool Reset(const std::string& epoch, int64_t revision);

  bool awaiting_snapshot();

  // Queues the snapshot `cursor` (under the mirror's reader lock, at the capture's revision):
  // its chunks are built one at a time as the stream drains, then SYNCED; live changes queue
  // behind it. False (`cursor` dropped) unless a snapshot is owed. Writes nothing yet: Kick()
  // once the locks are released.
  bool StartSnapshot(std::shared_ptr<SnapshotCursor> cursor);

  // Ends a stream whose snapshot waited `waited` in vain (RESOURCE_EXHAUSTED /
  // SNAPSHOT_BUDGET_EXHAUSTED); the client may try again after `retry_after`.
  void RefuseSnapshot(absl::Duration waited, absl::Duration retry_after);

  // True while the stream holds a snapshot it has not finished (in its queue or being built).
  bool has_snapshot();

  // Cancels the call (the client sees CANCELLED) if it holds a snapshot and its write has not
  // completed for `timeout`: a client that does not read. Under the hub's lock (the call is
  // still there). True if cancelled.
  bool CancelIfStalled(absl::Time now, absl::Duration timeout);

  // Starts the next write, if any is due (see Pump). Never under the stream's lock.
  void Kick() { Pump(); }

  // `progress` if the stream is live, has sent nothing for its progress interval and has been
  // given every change up to `revision` (the fan-out has delivered them; see covered_).
  void MaybeProgress(absl::Time now, const grpc::ByteBuffer& progress, int64_t revision);

  // Ends the stream with `code` / `reason`, dropping what is queued; the message, "<what> at
  // revision N; resume with since_revision=N<where>", tells the client where to resume.
  void Close(absl::StatusCode code, absl::string_view reason, absl::string_view what,
             absl::string_view where = "");

  // Where the first catch-up read starts: after since_revision, or one event earlier when the
  // request named the mark of since_revision, so that the store's event there can be checked.
  int64_t FirstCatchUpReadAfter();

  // One catch-up page read after `after_revision`. Returns the revision to read the next page
  // after, or nullopt (done, paused, stale, or failed); *snapshot_due tells the hub the stream
  // was RESET and is owed a snapshot.
  std::optional<int64_t> CatchUpPage(int64_t after_revision, int max_count,
                                     const absl::StatusOr<std::vector<TokenEvent>>& events,
                                     bool* snapshot_due);

  // --- gRPC reactions. ---

  void OnWriteDone(bool ok) override;

  void OnCancel() override;

  void OnDone() override;

 private:
  struct Item {
    grpc::ByteBuffer message;
    int64_t revision;  // where the watcher may resume once it got the message, or kNoResumePoint
    bool counted;      // counts against the queue bound (not snapshot parts)
    // A snapshot in progress instead of `message`: its chunks, then SYNCED, are built one at a
    // time as the stream drains (one entry however many chunks; not counted).
    std::shared_ptr<SnapshotCursor> snapshot = nullptr;
  };

  int queue_size() const;

  bool HasSnapshotLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void EnqueueLocked(grpc::ByteBuffer message, int64_t revision, bool counted)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void FellBehindLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void CloseLocked(absl::StatusCode code, absl::string_view reason, absl::string_view what,
                   absl::string_view where = "") ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Ends the stream with `status`, dropping what is queued (a snapshot's share of the budget
  // with it).
  void CloseLocked(absl::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  bool ResetLocked(const std::string& epoch, int64_t revision) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::optional<int64_t> CatchUpPageLocked(int64_t after_revision, int max_count,
                                           const absl::StatusOr<std::vector<TokenEvent>>& events,
                                           bool* snapshot_due) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Starts the next write, or the Finish once nothing is left to write. A snapshot's next chunk
  // is built here, outside the lock: writing_ makes this the stream's one writer, so the
  // cursor's `next` is its alone until OnWriteDone (a Close or Reset meanwhile only drops the
  // cursor from the queue; the chunk then goes out before what they queue).
  void Pump() ABSL_LOCKS_EXCLUDED(mu_);

  WatchHub& hub_;
  grpc::CallbackServerContext* const context_;
  const std::string peer_;
  const std::string principal_;
  metrics::CallMetrics call_;  // finished once, with the status the stream ends with
  const WatchFilter filter_;
  const bool send_initial_state_;
  const absl::Duration progress_interval_;
  const std::shared_ptr<StreamLink> link_;

  absl::Mutex mu_;
  Mode mode_ ABSL_GUARDED_BY(mu_) = Mode::kAwaitingSnapshot;
  std::string epoch_ ABSL_GUARDED_BY(mu_);
  std::list<Item> queue_ ABSL_GUARDED_BY(mu_);  // allocates nothing while empty (idle)
  int counted_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<Item> held_ ABSL_GUARDED_BY(mu_);  // live changes during the catch-up
  int64_t catch_up_target_ ABSL_GUARDED_BY(mu_) = 0;
  // The newest revision the stream has queued or is owed by its catch-up or snapshot. The hub's
  // fan-out runs behind the mirror, so a stream that started at the mirror's revision R may
  // still be offered changes up to R: those are skipped (a batch never straddles R).
  int64_t covered_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t catch_up_cursor_ ABSL_GUARDED_BY(mu_) = 0;
  bool catch_up_paused_ ABSL_GUARDED_BY(mu_) = false;
  int64_t resume_revision_ ABSL_GUARDED_BY(mu_);  // of the last message handed to gRPC
  // The request's since_chain until the catch-up has checked it against the store; then empty.
  std::string resume_chain_ ABSL_GUARDED_BY(mu_);
  absl::Time last_enqueue_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time write_started_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> finish_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  // The message being written: set by the one writer (Pump with writing_ set), cleared in
  // OnWriteDone.
  grpc::ByteBuffer in_flight_;
  // The snapshot whose chunk is being written: it keeps its share of the budget until the write
  // completes, even if a Close or Reset dropped it from the queue meanwhile.
  std::shared_ptr<SnapshotCursor> building_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tokenstatus
