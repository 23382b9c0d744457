#include "server/watch/watch_reactor.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/grpc_status.h"
#include "core/log.h"
#include "core/status_util.h"
#include "server/watch/watch_hub.h"

namespace tokenstatus {

using apitoken::v1::WatchTokensRequest;
using apitoken::v1::WatchTokensResponse;

namespace {

// RESOURCE_EXHAUSTED / SNAPSHOT_BUDGET_EXHAUSTED for a stream that waited `waited` for its
// snapshot to start and may resume from `resume_revision` after `retry_after`.
absl::Status SnapshotBudgetExhausted(absl::Duration waited, int64_t resume_revision,
                                     absl::Duration retry_after) {
  return MakeError(
      absl::StatusCode::kResourceExhausted, reason::kSnapshotBudgetExhausted,
      absl::StrCat("no room for this stream's snapshot in the server's snapshot memory budget ",
                   "after waiting ", absl::FormatDuration(waited), " at revision ", resume_revision,
                   "; resume with since_revision=", resume_revision, " in ",
                   absl::FormatDuration(retry_after)),
      {{kRetryAfterMsKey, absl::StrCat(absl::ToInt64Milliseconds(retry_after))},
       {"revision", absl::StrCat(resume_revision)}});
}

}  // namespace

WatchReactor::WatchReactor(WatchHub& hub, grpc::CallbackServerContext* context, std::string peer,
                           std::string principal, const WatchTokensRequest& request,
                           absl::Duration progress_interval, metrics::CallMetrics call)
    : hub_(hub),
      context_(context),
      peer_(std::move(peer)),
      principal_(std::move(principal)),
      call_(std::move(call)),
      filter_{request.account_id(), request.include_secret_hash()},
      send_initial_state_(request.send_initial_state()),
      progress_interval_(progress_interval),
      link_(std::make_shared<StreamLink>(this)),
      resume_revision_(request.since_revision()),
      resume_chain_(request.since_chain()),
      last_enqueue_(absl::Now()) {}

void WatchReactor::Start(Mode mode, int64_t catch_up_target, const std::string& epoch) {
  absl::MutexLock lock(&mu_);
  mode_ = mode;
  catch_up_target_ = catch_up_target;
  covered_ = catch_up_target;
  catch_up_cursor_ = resume_revision_;
  epoch_ = epoch;
}

int WatchReactor::DeliverLive(const grpc::ByteBuffer& message, int64_t revision) {
  int queued = 0;
  {
    absl::MutexLock lock(&mu_);
    if (revision <= covered_) return static_cast<int>(queue_.size() + held_.size());
    if (mode_ == Mode::kLive) {
      covered_ = revision;
      EnqueueLocked(message, revision, /*counted=*/true);
    } else if (mode_ == Mode::kCatchingUp) {
      covered_ = revision;
      if (counted_ + static_cast<int>(held_.size()) >= queue_size()) {
        FellBehindLocked();
      } else {
        held_.push_back({message, revision, true});
      }
    }
    queued = static_cast<int>(queue_.size() + held_.size());
  }
  Pump();
  return queued;
}

bool WatchReactor::Reset(const std::string& epoch, int64_t revision) {
  bool snapshot_due = false;
  {
    absl::MutexLock lock(&mu_);
    snapshot_due = ResetLocked(epoch, revision);
  }
  Pump();
  return snapshot_due;
}

bool WatchReactor::awaiting_snapshot() {
  absl::MutexLock lock(&mu_);
  return mode_ == Mode::kAwaitingSnapshot;
}

bool WatchReactor::StartSnapshot(std::shared_ptr<SnapshotCursor> cursor) {
  absl::MutexLock lock(&mu_);
  if (mode_ != Mode::kAwaitingSnapshot) return false;
  covered_ = cursor->capture->revision;
  queue_.push_back({grpc::ByteBuffer(), kNoResumePoint, false, std::move(cursor)});
  last_enqueue_ = absl::Now();
  mode_ = Mode::kLive;
  return true;
}

void WatchReactor::RefuseSnapshot(absl::Duration waited, absl::Duration retry_after) {
  {
    absl::MutexLock lock(&mu_);
    if (mode_ != Mode::kAwaitingSnapshot) return;
    Log(LogLevel::kWarning, absl::StrCat("event=snapshot_refused peer=", peer_, " principal=",
                                         principal_, " waited=", absl::FormatDuration(waited),
                                         " retry_after=", absl::FormatDuration(retry_after)));
    CloseLocked(SnapshotBudgetExhausted(waited, resume_revision_, retry_after));
  }
  Pump();
}

bool WatchReactor::has_snapshot() {
  absl::MutexLock lock(&mu_);
  return HasSnapshotLocked();
}

bool WatchReactor::CancelIfStalled(absl::Time now, absl::Duration timeout) {
  {
    absl::MutexLock lock(&mu_);
    if (!writing_ || now - write_started_ < timeout || !HasSnapshotLocked()) return false;
    Log(LogLevel::kWarning,
        absl::StrCat("event=snapshot_stalled peer=", peer_, " principal=", principal_,
                     " stalled=", absl::FormatDuration(now - write_started_)));
    CloseLocked(absl::StatusCode::kCancelled, reason::kInternal, "the snapshot was not read");
  }
  // The write never completes if the client does not read: only a cancellation ends it (and
  // frees what the stream holds). gRPC runs the reactions on its own threads.
  context_->TryCancel();
  return true;
}

void WatchReactor::MaybeProgress(absl::Time now, const grpc::ByteBuffer& progress,
                                 int64_t revision) {
  {
    absl::MutexLock lock(&mu_);
    if (mode_ != Mode::kLive || revision < covered_ || now - last_enqueue_ < progress_interval_) {
      return;
    }
    EnqueueLocked(progress, revision, true);
  }
  Pump();
}

void WatchReactor::Close(absl::StatusCode code, absl::string_view reason, absl::string_view what,
                         absl::string_view where) {
  {
    absl::MutexLock lock(&mu_);
    CloseLocked(code, reason, what, where);
  }
  Pump();
}

int64_t WatchReactor::FirstCatchUpReadAfter() {
  absl::MutexLock lock(&mu_);
  return resume_chain_.empty() ? catch_up_cursor_ : catch_up_cursor_ - 1;
}

std::optional<int64_t> WatchReactor::CatchUpPage(
    int64_t after_revision, int max_count, const absl::StatusOr<std::vector<TokenEvent>>& events,
    bool* snapshot_due) {
  std::optional<int64_t> next;
  {
    absl::MutexLock lock(&mu_);
    next = CatchUpPageLocked(after_revision, max_count, events, snapshot_due);
  }
  Pump();
  return next;
}

void WatchReactor::OnWriteDone(bool ok) {
  in_flight_.Clear();                     // an idle stream keeps no message
  std::shared_ptr<SnapshotCursor> built;  // let go outside the lock
  std::optional<int64_t> read_after;
  {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    built = std::move(building_);
    if (!ok) {
      CloseLocked(absl::StatusCode::kCancelled, reason::kInternal, "the stream broke");
    } else if (mode_ == Mode::kCatchingUp && catch_up_paused_ && counted_ < queue_size() / 2) {
      catch_up_paused_ = false;
      read_after = catch_up_cursor_;
    }
  }
  if (read_after.has_value()) hub_.ReadCatchUpPage(link_, *read_after);
  Pump();
}

void WatchReactor::OnCancel() {
  Close(absl::StatusCode::kCancelled, reason::kInternal, "the call was cancelled");
}

void WatchReactor::OnDone() {
  {
    absl::MutexLock lock(&link_->mu);
    link_->stream = nullptr;
  }
  hub_.Unregister(this);
  delete this;
}

int WatchReactor::queue_size() const { return hub_.options_.queue_size; }

bool WatchReactor::HasSnapshotLocked() const {
  if (building_ != nullptr) return true;
  // A snapshot is first in the queue, or follows the KIND_RESET before it.
  int looked = 0;
  for (const Item& item : queue_) {
    if (item.snapshot != nullptr) return true;
    if (++looked == 2) break;
  }
  return false;
}

void WatchReactor::EnqueueLocked(grpc::ByteBuffer message, int64_t revision, bool counted) {
  if (mode_ == Mode::kClosing) return;
  if (counted && counted_ >= queue_size()) {
    FellBehindLocked();
    return;
  }
  queue_.push_back({std::move(message), revision, counted});
  counted_ += counted ? 1 : 0;
  last_enqueue_ = absl::Now();
}

void WatchReactor::FellBehindLocked() {
  if (mode_ == Mode::kClosing) return;
  Log(LogLevel::kWarning, absl::StrCat("event=watcher_fell_behind peer=", peer_, " account=",
                                       filter_.account_id.empty() ? "-" : filter_.account_id,
                                       " revision=", resume_revision_));
  CloseLocked(absl::StatusCode::kResourceExhausted, reason::kWatcherFellBehind,
              "watcher fell behind");
}

void WatchReactor::CloseLocked(absl::StatusCode code, absl::string_view reason,
                               absl::string_view what, absl::string_view where) {
  CloseLocked(MakeError(code, reason,
                        absl::StrCat(what, " at revision ", resume_revision_,
                                     "; resume with since_revision=", resume_revision_, where),
                        {{"revision", absl::StrCat(resume_revision_)}}));
}

void WatchReactor::CloseLocked(absl::Status status) {
  if (mode_ == Mode::kClosing) return;
  mode_ = Mode::kClosing;
  queue_.clear();
  held_.clear();
  counted_ = 0;
  finish_ = std::move(status);
}

bool WatchReactor::ResetLocked(const std::string& epoch, int64_t revision) {
  if (mode_ == Mode::kClosing) return false;
  queue_.clear();
  held_.clear();
  counted_ = 0;
  covered_ = revision;
  EnqueueLocked(
      SerializeMessage(WatchMessageOf(WatchTokensResponse::KIND_RESET, revision, epoch, "")), 0,
      false);
  if (send_initial_state_) {
    mode_ = Mode::kAwaitingSnapshot;
    return true;
  }
  mode_ = Mode::kClosing;  // after the RESET is written
  finish_ = absl::OkStatus();
  return false;
}

std::optional<int64_t> WatchReactor::CatchUpPageLocked(
    int64_t after_revision, int max_count, const absl::StatusOr<std::vector<TokenEvent>>& events,
    bool* snapshot_due) {
  // Until the resume point is checked, the reads start one event early (FirstCatchUpReadAfter).
  const bool check_resume_point = !resume_chain_.empty();
  const int64_t read_after = check_resume_point ? catch_up_cursor_ - 1 : catch_up_cursor_;
  if (mode_ != Mode::kCatchingUp || after_revision != read_after) return std::nullopt;
  if (!events.ok()) {
    CloseLocked(absl::StatusCode::kUnavailable, reason::kStoreUnavailable,
                absl::StrCat("could not read the history: ", events.status().message()));
    return std::nullopt;
  }
  absl::Span<const TokenEvent> page(*events);
  if (check_resume_point) {
    // The client's since_revision must carry its mark in the store's history: else the
    // client's revisions came from a history the store no longer holds (or the event is
    // trimmed and cannot tell).
    if (page.empty() || page.front().token().revision() != catch_up_cursor_ ||
        page.front().chain() != resume_chain_) {
      *snapshot_due = ResetLocked(epoch_, catch_up_target_);
      return std::nullopt;
    }
    resume_chain_.clear();
    page.remove_prefix(1);
    after_revision = catch_up_cursor_;
  }
  // Every revision in (after_revision, target] must be there, without a gap: a missing one
  // was trimmed (or the dataset was replaced).
  int64_t expected = after_revision + 1;
  WatchTokensResponse changes = WatchMessageOf(WatchTokensResponse::KIND_CHANGES, 0, epoch_, "");
  for (const TokenEvent& event : page) {
    const int64_t revision = event.token().revision();
    if (revision > catch_up_target_) break;
    if (revision != expected) break;
    ++expected;
    filter_.AddIfMatches(event, changes);
    changes.set_chain(event.chain());
  }
  catch_up_cursor_ = expected - 1;
  const bool complete = catch_up_cursor_ >= catch_up_target_;
  const bool stuck = !complete && (catch_up_cursor_ == after_revision ||
                                   static_cast<int>(events->size()) < max_count);
  if (stuck) {
    *snapshot_due = ResetLocked(epoch_, catch_up_target_);
    return std::nullopt;
  }
  if (changes.events_size() > 0) {
    changes.set_revision(catch_up_cursor_);
    EnqueueLocked(SerializeMessage(changes), catch_up_cursor_, true);
    if (mode_ == Mode::kClosing) return std::nullopt;
  }
  if (complete) {
    for (Item& item : held_) {
      EnqueueLocked(std::move(item.message), item.revision, true);
    }
    held_.clear();
    if (mode_ == Mode::kCatchingUp) mode_ = Mode::kLive;
    return std::nullopt;
  }
  if (counted_ >= queue_size() / 2) {
    catch_up_paused_ = true;
    return std::nullopt;
  }
  return catch_up_cursor_;
}

void WatchReactor::Pump() {
  bool write = false;
  absl::Status finish;
  std::shared_ptr<SnapshotCursor> build;              // the snapshot to build a chunk of
  std::shared_ptr<SnapshotCursor> finished_snapshot;  // let go outside the lock
  {
    absl::MutexLock lock(&mu_);
    if (writing_ || finished_) return;
    if (!queue_.empty()) {
      Item& item = queue_.front();
      if (item.snapshot != nullptr && item.snapshot->next < item.snapshot->capture->tokens.size()) {
        building_ = build = item.snapshot;
      } else if (item.snapshot != nullptr) {
        // Every chunk has been written: SYNCED at the capture's revision, and the snapshot's
        // share of the budget goes back.
        const SnapshotCapture& capture = *item.snapshot->capture;
        in_flight_ = SerializeMessage(WatchMessageOf(
            WatchTokensResponse::KIND_SYNCED, capture.revision, capture.epoch, capture.chain));
        resume_revision_ = capture.revision;
        finished_snapshot = std::move(item.snapshot);
        queue_.pop_front();
      } else {
        in_flight_ = std::move(item.message);
        if (item.revision != kNoResumePoint) resume_revision_ = item.revision;
        counted_ -= item.counted ? 1 : 0;
        queue_.pop_front();
      }
      writing_ = true;
      write_started_ = absl::Now();
      write = true;
    } else if (finish_.has_value()) {
      finished_ = true;
      finish = *finish_;
    } else {
      return;
    }
  }
  if (!write) {
    if (hub_.metrics_ != nullptr) {
      hub_.metrics_->ended.With({WatchMetrics::EndReasonOf(finish)}).Increment();
    }
    call_.Finish(finish);
    Finish(ToGrpcStatus(finish));
    return;
  }
  if (build != nullptr) {
    in_flight_ = BuildSnapshotChunk(*build->capture, filter_, hub_.options_.snapshot_chunk,
                                    hub_.options_.snapshot_chunk_bytes, &build->next);
    hub_.chunks_built_.fetch_add(1, std::memory_order_relaxed);
  }
  StartWrite(&in_flight_);
}

}  // namespace tokenstatus
