#include "server/watch/watch_hub.h"

#include <list>
#include <optional>
#include <utility>

#include "absl/container/node_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/duration.pb.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/server_context.h"
#include "server/common/log.h"
#include "server/common/status_util.h"
#include "server/domain/validation.h"
#include "server/service/grpc_status.h"

namespace tokenstatus {

using apitoken::v1::WatchTokensRequest;
using apitoken::v1::WatchTokensResponse;

namespace {

// Item::revision of a message after which the watcher cannot resume (a snapshot chunk).
constexpr int64_t kNoResumePoint = -1;

// Serializes `response` once; copies of the result share its slices.
grpc::ByteBuffer Serialize(const WatchTokensResponse& response) {
  grpc::ByteBuffer buffer;
  bool own_buffer = false;
  grpc::SerializationTraits<WatchTokensResponse>::Serialize(response, &buffer, &own_buffer);
  return buffer;
}

// A message of `kind` at `revision` of `epoch` (whose history mark there is `chain`), without
// payload.
WatchTokensResponse Message(WatchTokensResponse::Kind kind, int64_t revision,
                            const std::string& epoch, const std::string& chain) {
  WatchTokensResponse response;
  response.set_kind(kind);
  response.set_revision(revision);
  response.set_epoch(epoch);
  response.set_chain(chain);
  return response;
}

// What a stream asked to see: the tokens of one account or of all, with or without their
// secret hashes. Streams with equal filters share each serialized change.
struct WatchFilter {
  std::string account_id;  // empty: every account
  bool include_secret_hash = false;

  bool Matches(const Token& token) const {
    return account_id.empty() || token.account_id() == account_id;
  }
  // Copies `token` into `shown` as this filter shows it.
  void Show(const Token& token, Token& shown) const {
    shown = token;
    if (!include_secret_hash) shown.clear_secret_sha256();
  }
  // Appends `event` to `response` if it matches.
  void AddIfMatches(const TokenEvent& event, WatchTokensResponse& response) const {
    if (!Matches(event.token())) return;
    TokenEvent* shown = response.add_events();
    shown->set_type(event.type());
    Show(event.token(), *shown->mutable_token());
    shown->set_chain(event.chain());
  }

  bool operator==(const WatchFilter&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const WatchFilter& filter) {
    return H::combine(std::move(h), filter.account_id, filter.include_secret_hash);
  }
};

// The effective progress interval of `request`, or INVALID_ARGUMENT.
absl::StatusOr<absl::Duration> ProgressIntervalOf(const WatchTokensRequest& request,
                                                  const WatchHubOptions& options) {
  const absl::Duration interval = absl::Seconds(request.progress_interval().seconds()) +
                                  absl::Nanoseconds(request.progress_interval().nanos());
  if (interval == absl::ZeroDuration()) return options.default_progress_interval;
  if (interval < options.min_progress_interval) {
    return MakeError(absl::StatusCode::kInvalidArgument, reason::kInvalidArgument,
                     absl::StrCat("progress_interval must be 0 (the default) or at least ",
                                  absl::FormatDuration(options.min_progress_interval)),
                     {{"field", "progress_interval"}});
  }
  return interval;
}

// The streams counted under `key` in `counts`.
int CountOf(const absl::flat_hash_map<std::string, int>& counts, const std::string& key) {
  auto it = counts.find(key);
  return it == counts.end() ? 0 : it->second;
}

// Counts one stream less under `key` in `counts`.
void Release(absl::flat_hash_map<std::string, int>& counts, const std::string& key) {
  auto it = counts.find(key);
  if (it != counts.end() && --it->second <= 0) counts.erase(it);
}

absl::Status TooManyWatchers(absl::string_view whose, int limit) {
  return MakeError(absl::StatusCode::kResourceExhausted, reason::kTooManyWatchers,
                   absl::StrCat(whose, " already has its maximum of ", limit, " watch streams"));
}

// A stream refused before it started: finishes at once.
class RefusedStream final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  explicit RefusedStream(const absl::Status& status) { Finish(ToGrpcStatus(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

// The way from an asynchronous catch-up read back to its stream: cleared (under `mu`) before
// the stream is deleted, so a late store callback finds nullptr.
struct StreamLink {
  explicit StreamLink(WatchStream* stream) : stream(stream) {}
  absl::Mutex mu;
  WatchStream* stream ABSL_GUARDED_BY(mu);
};

// The tokens of one account (or all) at one revision of the mirror, captured for snapshots:
// pointers to the mirror's immutable tokens, shared by every stream that starts its snapshot at
// that revision with that account. Immutable.
struct SnapshotCapture {
  SnapshotCapture(SnapshotBudget::Hold hold, int64_t revision, std::string epoch, std::string chain,
                  std::vector<std::shared_ptr<const Token>> tokens)
      : hold(std::move(hold)),
        revision(revision),
        epoch(std::move(epoch)),
        chain(std::move(chain)),
        tokens(std::move(tokens)) {}

  // What a capture of `count` tokens is charged against the budget.
  static int64_t BytesFor(size_t count) {
    return static_cast<int64_t>(sizeof(SnapshotCapture) +
                                count * sizeof(std::shared_ptr<const Token>));
  }

  // Declared first, destroyed last: the budget gets the bytes back once they are freed.
  SnapshotBudget::Hold hold;
  const int64_t revision;
  const std::string epoch;
  const std::string chain;  // the history mark at `revision`
  const std::vector<std::shared_ptr<const Token>> tokens;
};

namespace {

// One stream's snapshot in progress: its capture and how far the stream has got. Lives in the
// stream's queue; `next` is advanced only by the stream's one writer (see WatchStream::Pump).
struct SnapshotCursor {
  // What one stream's snapshot is charged against the budget beyond its capture: the one chunk
  // it holds at a time.
  static int64_t BytesFor(const WatchHubOptions& options) {
    return static_cast<int64_t>(sizeof(SnapshotCursor)) + options.snapshot_chunk_bytes;
  }

  std::shared_ptr<const SnapshotCapture> capture;
  size_t next = 0;            // the first token not yet sent
  SnapshotBudget::Hold hold;  // this stream's snapshot slot and chunk
};

// The KIND_SNAPSHOT chunk of `capture` from tokens[*next] on, as `filter` shows them: at most
// options.snapshot_chunk tokens and, past the first, options.snapshot_chunk_bytes. Advances
// *next past them.
grpc::ByteBuffer BuildChunk(const SnapshotCapture& capture, const WatchFilter& filter,
                            const WatchHubOptions& options, size_t* next) {
  WatchTokensResponse chunk =
      Message(WatchTokensResponse::KIND_SNAPSHOT, capture.revision, capture.epoch, capture.chain);
  size_t bytes = chunk.ByteSizeLong();
  const size_t max_bytes = static_cast<size_t>(options.snapshot_chunk_bytes);
  // A token takes its size plus a tag and a length (at most 1 + 5 bytes).
  constexpr size_t kFieldOverhead = 6;
  while (*next < capture.tokens.size() && chunk.tokens_size() < options.snapshot_chunk) {
    Token* shown = chunk.add_tokens();
    filter.Show(*capture.tokens[*next], *shown);
    const size_t size = shown->ByteSizeLong() + kFieldOverhead;
    if (chunk.tokens_size() > 1 && bytes + size > max_bytes) {
      chunk.mutable_tokens()->RemoveLast();
      break;
    }
    bytes += size;
    ++*next;
  }
  return Serialize(chunk);
}

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

// One WatchTokens stream: a bounded queue of serialized messages and one write in flight.
// Methods named *Locked need mu_; Pump() (never under mu_) starts the next write or the Finish.
class WatchStream final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  enum class Mode {
    kCatchingUp,        // replaying (since_revision, target] from the store; live ones held
    kAwaitingSnapshot,  // owed a snapshot; live changes dropped (the snapshot covers them)
    kLive,              // live changes go to the queue
    kClosing,           // Finish pending or made; nothing more is queued
  };

  WatchStream(WatchHub& hub, grpc::CallbackServerContext* context, std::string peer,
              std::string principal, const WatchTokensRequest& request,
              absl::Duration progress_interval)
      : hub_(hub),
        context_(context),
        peer_(std::move(peer)),
        principal_(std::move(principal)),
        filter_{request.account_id(), request.include_secret_hash()},
        send_initial_state_(request.send_initial_state()),
        progress_interval_(progress_interval),
        link_(std::make_shared<StreamLink>(this)),
        resume_revision_(request.since_revision()),
        resume_chain_(request.since_chain()),
        last_enqueue_(absl::Now()) {}

  const std::string& peer() const { return peer_; }
  const std::string& principal() const { return principal_; }
  const WatchFilter& filter() const { return filter_; }
  const std::shared_ptr<StreamLink>& link() const { return link_; }

  // --- Called by the hub (under its lock, and the mirror's where noted). ---

  // Sets how the stream starts (under the mirror's reader lock).
  void Start(Mode mode, int64_t catch_up_target, const std::string& epoch) {
    absl::MutexLock lock(&mu_);
    mode_ = mode;
    catch_up_target_ = catch_up_target;
    catch_up_cursor_ = resume_revision_;
    epoch_ = epoch;
  }

  // Live change `message` (resume point `revision`), under the mirror's writer lock.
  void DeliverLive(const grpc::ByteBuffer& message, int64_t revision) {
    {
      absl::MutexLock lock(&mu_);
      if (mode_ == Mode::kLive) {
        EnqueueLocked(message, revision, /*counted=*/true);
      } else if (mode_ == Mode::kCatchingUp) {
        if (counted_ + static_cast<int>(held_.size()) >= queue_size()) {
          FellBehindLocked();
        } else {
          held_.push_back({message, revision, true});
        }
      }
    }
    Pump();
  }

  // KIND_RESET at `revision` of `epoch`, dropping everything queued. Returns true if the stream
  // is now owed a snapshot; otherwise it ends OK after the RESET.
  bool Reset(const std::string& epoch, int64_t revision) {
    bool snapshot_due = false;
    {
      absl::MutexLock lock(&mu_);
      snapshot_due = ResetLocked(epoch, revision);
    }
    Pump();
    return snapshot_due;
  }

  bool awaiting_snapshot() {
    absl::MutexLock lock(&mu_);
    return mode_ == Mode::kAwaitingSnapshot;
  }

  // Queues the snapshot `cursor` (under the mirror's reader lock, at the capture's revision):
  // its chunks are built one at a time as the stream drains, then SYNCED; live changes queue
  // behind it. False (`cursor` dropped) unless a snapshot is owed. Writes nothing yet: Kick()
  // once the locks are released.
  bool StartSnapshot(std::shared_ptr<SnapshotCursor> cursor) {
    absl::MutexLock lock(&mu_);
    if (mode_ != Mode::kAwaitingSnapshot) return false;
    queue_.push_back({grpc::ByteBuffer(), kNoResumePoint, false, std::move(cursor)});
    last_enqueue_ = absl::Now();
    mode_ = Mode::kLive;
    return true;
  }

  // Ends a stream whose snapshot waited `waited` in vain (RESOURCE_EXHAUSTED /
  // SNAPSHOT_BUDGET_EXHAUSTED); the client may try again after `retry_after`.
  void RefuseSnapshot(absl::Duration waited, absl::Duration retry_after) {
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

  // True while the stream holds a snapshot it has not finished (in its queue or being built).
  bool has_snapshot() {
    absl::MutexLock lock(&mu_);
    return HasSnapshotLocked();
  }

  // Cancels the call (the client sees CANCELLED) if it holds a snapshot and its write has not
  // completed for `timeout`: a client that does not read. Under the hub's lock (the call is
  // still there). True if cancelled.
  bool CancelIfStalled(absl::Time now, absl::Duration timeout) {
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

  // Starts the next write, if any is due (see Pump). Never under the stream's lock.
  void Kick() { Pump(); }

  // `progress` if the stream is live and has sent nothing for its progress interval (under the
  // mirror's reader lock, so it is queued behind every change up to `revision`).
  void MaybeProgress(absl::Time now, const grpc::ByteBuffer& progress, int64_t revision) {
    {
      absl::MutexLock lock(&mu_);
      if (mode_ != Mode::kLive || now - last_enqueue_ < progress_interval_) return;
      EnqueueLocked(progress, revision, true);
    }
    Pump();
  }

  // Ends the stream with `code` / `reason`, dropping what is queued; the message, "<what> at
  // revision N; resume with since_revision=N<where>", tells the client where to resume.
  void Close(absl::StatusCode code, absl::string_view reason, absl::string_view what,
             absl::string_view where = "") {
    {
      absl::MutexLock lock(&mu_);
      CloseLocked(code, reason, what, where);
    }
    Pump();
  }

  // Where the first catch-up read starts: after since_revision, or one event earlier when the
  // request named the mark of since_revision, so that the store's event there can be checked.
  int64_t FirstCatchUpReadAfter() {
    absl::MutexLock lock(&mu_);
    return resume_chain_.empty() ? catch_up_cursor_ : catch_up_cursor_ - 1;
  }

  // One catch-up page read after `after_revision`. Returns the revision to read the next page
  // after, or nullopt (done, paused, stale, or failed); *snapshot_due tells the hub the stream
  // was RESET and is owed a snapshot.
  std::optional<int64_t> CatchUpPage(int64_t after_revision, int max_count,
                                     const absl::StatusOr<std::vector<TokenEvent>>& events,
                                     bool* snapshot_due) {
    std::optional<int64_t> next;
    {
      absl::MutexLock lock(&mu_);
      next = CatchUpPageLocked(after_revision, max_count, events, snapshot_due);
    }
    Pump();
    return next;
  }

  // --- gRPC reactions. ---

  void OnWriteDone(bool ok) override {
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

  void OnCancel() override {
    Close(absl::StatusCode::kCancelled, reason::kInternal, "the call was cancelled");
  }

  void OnDone() override {
    {
      absl::MutexLock lock(&link_->mu);
      link_->stream = nullptr;
    }
    hub_.Unregister(this);
    delete this;
  }

 private:
  struct Item {
    grpc::ByteBuffer message;
    int64_t revision;  // where the watcher may resume once it got the message, or kNoResumePoint
    bool counted;      // counts against the queue bound (not snapshot parts)
    // A snapshot in progress instead of `message`: its chunks, then SYNCED, are built one at a
    // time as the stream drains (one entry however many chunks; not counted).
    std::shared_ptr<SnapshotCursor> snapshot = nullptr;
  };

  int queue_size() const { return hub_.options_.queue_size; }

  bool HasSnapshotLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (building_ != nullptr) return true;
    // A snapshot is first in the queue, or follows the KIND_RESET before it.
    int looked = 0;
    for (const Item& item : queue_) {
      if (item.snapshot != nullptr) return true;
      if (++looked == 2) break;
    }
    return false;
  }

  void EnqueueLocked(grpc::ByteBuffer message, int64_t revision, bool counted)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (mode_ == Mode::kClosing) return;
    if (counted && counted_ >= queue_size()) {
      FellBehindLocked();
      return;
    }
    queue_.push_back({std::move(message), revision, counted});
    counted_ += counted ? 1 : 0;
    last_enqueue_ = absl::Now();
  }

  void FellBehindLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (mode_ == Mode::kClosing) return;
    Log(LogLevel::kWarning, absl::StrCat("event=watcher_fell_behind peer=", peer_, " account=",
                                         filter_.account_id.empty() ? "-" : filter_.account_id,
                                         " revision=", resume_revision_));
    CloseLocked(absl::StatusCode::kResourceExhausted, reason::kWatcherFellBehind,
                "watcher fell behind");
  }

  void CloseLocked(absl::StatusCode code, absl::string_view reason, absl::string_view what,
                   absl::string_view where = "") ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    CloseLocked(MakeError(code, reason,
                          absl::StrCat(what, " at revision ", resume_revision_,
                                       "; resume with since_revision=", resume_revision_, where),
                          {{"revision", absl::StrCat(resume_revision_)}}));
  }

  // Ends the stream with `status`, dropping what is queued (a snapshot's share of the budget
  // with it).
  void CloseLocked(absl::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (mode_ == Mode::kClosing) return;
    mode_ = Mode::kClosing;
    queue_.clear();
    held_.clear();
    counted_ = 0;
    finish_ = std::move(status);
  }

  bool ResetLocked(const std::string& epoch, int64_t revision) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (mode_ == Mode::kClosing) return false;
    queue_.clear();
    held_.clear();
    counted_ = 0;
    EnqueueLocked(Serialize(Message(WatchTokensResponse::KIND_RESET, revision, epoch, "")), 0,
                  false);
    if (send_initial_state_) {
      mode_ = Mode::kAwaitingSnapshot;
      return true;
    }
    mode_ = Mode::kClosing;  // after the RESET is written
    finish_ = absl::OkStatus();
    return false;
  }

  std::optional<int64_t> CatchUpPageLocked(int64_t after_revision, int max_count,
                                           const absl::StatusOr<std::vector<TokenEvent>>& events,
                                           bool* snapshot_due) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
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
    WatchTokensResponse changes = Message(WatchTokensResponse::KIND_CHANGES, 0, epoch_, "");
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
      EnqueueLocked(Serialize(changes), catch_up_cursor_, true);
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

  // Starts the next write, or the Finish once nothing is left to write. A snapshot's next chunk
  // is built here, outside the lock: writing_ makes this the stream's one writer, so the
  // cursor's `next` is its alone until OnWriteDone (a Close or Reset meanwhile only drops the
  // cursor from the queue; the chunk then goes out before what they queue).
  void Pump() ABSL_LOCKS_EXCLUDED(mu_) {
    bool write = false;
    absl::Status finish;
    std::shared_ptr<SnapshotCursor> build;              // the snapshot to build a chunk of
    std::shared_ptr<SnapshotCursor> finished_snapshot;  // let go outside the lock
    {
      absl::MutexLock lock(&mu_);
      if (writing_ || finished_) return;
      if (!queue_.empty()) {
        Item& item = queue_.front();
        if (item.snapshot != nullptr &&
            item.snapshot->next < item.snapshot->capture->tokens.size()) {
          building_ = build = item.snapshot;
        } else if (item.snapshot != nullptr) {
          // Every chunk has been written: SYNCED at the capture's revision, and the snapshot's
          // share of the budget goes back.
          const SnapshotCapture& capture = *item.snapshot->capture;
          in_flight_ = Serialize(Message(WatchTokensResponse::KIND_SYNCED, capture.revision,
                                         capture.epoch, capture.chain));
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
      Finish(ToGrpcStatus(finish));
      return;
    }
    if (build != nullptr) {
      in_flight_ = BuildChunk(*build->capture, filter_, hub_.options_, &build->next);
      hub_.chunks_built_.fetch_add(1, std::memory_order_relaxed);
    }
    StartWrite(&in_flight_);
  }

  WatchHub& hub_;
  grpc::CallbackServerContext* const context_;
  const std::string peer_;
  const std::string principal_;
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

namespace {

// Starts the next write of each stream behind `links` that is still there (after the locks that
// admitted their snapshots are released).
void KickAll(const std::vector<std::shared_ptr<StreamLink>>& links) {
  for (const std::shared_ptr<StreamLink>& link : links) {
    absl::MutexLock lock(&link->mu);
    if (link->stream != nullptr) link->stream->Kick();
  }
}

}  // namespace

WatchHub::WatchHub(TokenMirror& mirror, TokenStore& store, WatchHubOptions options)
    : mirror_(mirror),
      store_(store),
      options_(options),
      snapshot_budget_(options.snapshot_memory_budget, options.max_snapshots_per_principal,
                       [this] { Wake(); }),
      timer_([this] { TimerLoop(); }) {}

WatchHub::~WatchHub() {
  Shutdown();
  {
    absl::MutexLock lock(&wake_mu_);
    stop_ = true;
  }
  timer_.join();
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* WatchHub::Refuse(const absl::Status& status) {
  return new RefusedStream(status);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* WatchHub::Watch(grpc::CallbackServerContext* context,
                                                            const WatchTokensRequest& request,
                                                            const std::string& principal) {
  absl::Status status = ValidateRevision(request.since_revision(), "since_revision");
  if (status.ok() && !request.account_id().empty()) {
    status = ValidateAccountId(request.account_id());
  }
  absl::StatusOr<absl::Duration> progress_interval = ProgressIntervalOf(request, options_);
  if (status.ok()) status = progress_interval.status();
  if (!status.ok()) return Refuse(status);

  const std::string peer = context->peer();
  WatchStream* stream = nullptr;
  bool catch_up = false;
  std::vector<std::shared_ptr<StreamLink>> snapshots_started;
  absl::Status refused;
  status = mirror_.ReadConsistent([&](const MirrorView& view) {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) {
      refused = MakeError(absl::StatusCode::kUnavailable, reason::kServerShuttingDown,
                          "server shutting down; watch elsewhere");
      return;
    }
    if (static_cast<int>(streams_.size()) >= options_.max_watchers) {
      refused = MakeError(absl::StatusCode::kResourceExhausted, reason::kTooManyWatchers,
                          absl::StrCat("this server already serves its maximum of ",
                                       options_.max_watchers, " watch streams"));
      return;
    }
    if (CountOf(per_peer_, peer) >= options_.max_watchers_per_connection) {
      refused = TooManyWatchers("this connection", options_.max_watchers_per_connection);
      return;
    }
    if (CountOf(per_principal_, principal) >= options_.max_watchers_per_principal) {
      refused = TooManyWatchers(absl::StrCat("principal ", principal),
                                options_.max_watchers_per_principal);
      return;
    }
    ++per_peer_[peer];
    ++per_principal_[principal];
    epoch_ = view.epoch();
    stream = new WatchStream(*this, context, peer, principal, request, *progress_interval);
    streams_.insert(stream);

    const int64_t revision = view.revision();
    const int64_t since = request.since_revision();
    const bool other_history = (!request.epoch().empty() && request.epoch() != view.epoch()) ||
                               since > revision ||
                               (since == revision && since > 0 && !request.since_chain().empty() &&
                                request.since_chain() != view.chain());
    if (other_history) {
      stream->Start(WatchStream::Mode::kLive, revision, view.epoch());
      if (stream->Reset(view.epoch(), revision)) {
        AwaitSnapshotLocked(*stream);
        StartWaitingSnapshotsLocked(view, snapshots_started);
      }
    } else if (since == 0 && request.send_initial_state()) {
      stream->Start(WatchStream::Mode::kAwaitingSnapshot, revision, view.epoch());
      AwaitSnapshotLocked(*stream);
      StartWaitingSnapshotsLocked(view, snapshots_started);
    } else if (since == 0 || since == revision) {
      stream->Start(WatchStream::Mode::kLive, revision, view.epoch());
    } else {
      stream->Start(WatchStream::Mode::kCatchingUp, revision, view.epoch());
      catch_up = true;
    }
  });
  if (!status.ok()) return Refuse(status);
  if (!refused.ok()) return Refuse(refused);
  // Outside the mirror's lock: the store may answer on this thread, and the first snapshot
  // chunks are built without holding up the mirror.
  if (catch_up) ReadCatchUpPage(stream->link(), stream->FirstCatchUpReadAfter());
  KickAll(snapshots_started);
  return stream;
}

void WatchHub::ReadCatchUpPage(std::shared_ptr<StreamLink> link, int64_t after_revision) {
  const int max_count = options_.catch_up_page;
  store_.ReadEvents(after_revision, max_count, absl::Now() + options_.catch_up_timeout,
                    [this, link = std::move(link), after_revision,
                     max_count](absl::StatusOr<std::vector<TokenEvent>> events) mutable {
                      std::optional<int64_t> next;
                      bool snapshot_due = false;
                      {
                        absl::MutexLock link_lock(&link->mu);
                        if (link->stream == nullptr) return;
                        next = link->stream->CatchUpPage(after_revision, max_count, events,
                                                         &snapshot_due);
                        if (snapshot_due) {
                          absl::MutexLock lock(&mu_);
                          AwaitSnapshotLocked(*link->stream);
                        }
                      }
                      if (next.has_value()) ReadCatchUpPage(std::move(link), *next);
                    });
}

void WatchHub::AwaitSnapshotLocked(WatchStream& stream) {
  if (snapshot_waiter_index_.contains(&stream)) return;
  const uint64_t seq = next_snapshot_waiter_++;
  snapshot_waiters_.emplace(seq, SnapshotWaiter{&stream, absl::Now()});
  snapshot_waiter_index_.emplace(&stream, seq);
  ++snapshot_waiters_per_principal_[stream.principal()];
  Wake();  // the timer thread starts it if the caller does not
}

void WatchHub::EraseWaiterLocked(WatchStream* stream) {
  auto it = snapshot_waiter_index_.find(stream);
  if (it != snapshot_waiter_index_.end()) EraseWaiterLocked(snapshot_waiters_.find(it->second));
}

absl::btree_map<uint64_t, WatchHub::SnapshotWaiter>::iterator WatchHub::EraseWaiterLocked(
    absl::btree_map<uint64_t, SnapshotWaiter>::iterator it) {
  WatchStream* stream = it->second.stream;
  snapshot_waiter_index_.erase(stream);
  Release(snapshot_waiters_per_principal_, stream->principal());
  return snapshot_waiters_.erase(it);
}

void WatchHub::StartWaitingSnapshotsLocked(const MirrorView& view,
                                           std::vector<std::shared_ptr<StreamLink>>& started) {
  // Waited too long (the oldest first): refused, with a jittered hint of when to try again.
  const absl::Time now = absl::Now();
  while (!snapshot_waiters_.empty()) {
    const SnapshotWaiter waiter = snapshot_waiters_.begin()->second;
    if (now - waiter.since < options_.snapshot_max_wait) break;
    EraseWaiterLocked(snapshot_waiters_.begin());
    const absl::Duration retry_after =
        options_.snapshot_retry_after * (1.0 + absl::Uniform(bitgen_, 0.0, 1.0));
    waiter.stream->RefuseSnapshot(now - waiter.since, retry_after);
  }
  // The others in order while they fit; a principal at its limit lets those behind it pass.
  // `unexamined` counts the waiters not yet tried and not of such a principal: once none is
  // left, the rest need not be looked at.
  int unexamined = static_cast<int>(snapshot_waiters_.size());
  absl::flat_hash_set<absl::string_view> at_limit;
  for (auto it = snapshot_waiters_.begin(); it != snapshot_waiters_.end() && unexamined > 0;) {
    WatchStream* stream = it->second.stream;
    if (at_limit.contains(stream->principal())) {
      ++it;
      continue;
    }
    --unexamined;
    switch (TryStartSnapshotLocked(*stream, view)) {
      case SnapshotStart::kStarted:
        started.push_back(stream->link());
        [[fallthrough]];
      case SnapshotStart::kGone:
        it = EraseWaiterLocked(it);
        break;
      case SnapshotStart::kPrincipalAtLimit:
        // Every earlier waiter of this principal has started or gone: the ones left of it are
        // this one and those behind it.
        unexamined -= CountOf(snapshot_waiters_per_principal_, stream->principal()) - 1;
        at_limit.insert(stream->principal());
        ++it;
        break;
      case SnapshotStart::kOverBudget:
        return;  // first come, first served: no smaller snapshot overtakes this one
    }
  }
}

WatchHub::SnapshotStart WatchHub::TryStartSnapshotLocked(WatchStream& stream,
                                                         const MirrorView& view) {
  if (!stream.awaiting_snapshot()) return SnapshotStart::kGone;
  const std::string& account = stream.filter().account_id;
  std::shared_ptr<const SnapshotCapture> capture;
  if (auto it = captures_.find(account); it != captures_.end()) {
    capture = it->second.lock();
    if (capture != nullptr &&
        (capture->revision != view.revision() || capture->epoch != view.epoch())) {
      capture = nullptr;
    }
  }
  const int64_t capture_bytes =
      capture == nullptr ? SnapshotCapture::BytesFor(view.CountTokens(account)) : 0;
  auto cursor = std::make_shared<SnapshotCursor>();
  SnapshotBudget::Hold capture_hold;
  switch (snapshot_budget_.TryReserve(stream.principal(), SnapshotCursor::BytesFor(options_),
                                      capture_bytes, &cursor->hold, &capture_hold)) {
    case SnapshotBudget::Outcome::kGranted:
      break;
    case SnapshotBudget::Outcome::kPrincipalAtLimit:
      return SnapshotStart::kPrincipalAtLimit;
    case SnapshotBudget::Outcome::kOverBudget:
      return SnapshotStart::kOverBudget;
  }
  if (capture == nullptr) {
    // Forget captures that have gone before this one is remembered (the map stays as small as
    // the set of accounts with snapshots in progress).
    if (captures_.size() >= 64) {
      absl::erase_if(captures_, [](const auto& entry) { return entry.second.expired(); });
    }
    capture = std::make_shared<const SnapshotCapture>(std::move(capture_hold), view.revision(),
                                                      view.epoch(), view.chain(),
                                                      view.CaptureTokens(account));
    captures_[account] = capture;
  }
  cursor->capture = std::move(capture);
  if (!stream.StartSnapshot(std::move(cursor))) return SnapshotStart::kGone;
  snapshotting_.insert(&stream);
  return SnapshotStart::kStarted;
}

void WatchHub::CancelStalledSnapshotsLocked(absl::Time now) {
  absl::erase_if(snapshotting_, [&](WatchStream* stream) {
    return !stream->has_snapshot() || stream->CancelIfStalled(now, options_.snapshot_stall_timeout);
  });
}

void WatchHub::Wake() {
  absl::MutexLock lock(&wake_mu_);
  wake_ = true;
}

WatchHub::SnapshotStats WatchHub::snapshot_stats() const {
  SnapshotStats stats;
  stats.reserved_bytes = snapshot_budget_.reserved_bytes();
  stats.in_progress = snapshot_budget_.slots();
  stats.chunks_built = chunks_built_.load(std::memory_order_relaxed);
  absl::MutexLock lock(&mu_);
  stats.waiting = static_cast<int>(snapshot_waiters_.size());
  return stats;
}

void WatchHub::OnChanges(absl::Span<const std::shared_ptr<const TokenEvent>> events,
                         int64_t revision, const std::string& mirror_epoch) {
  absl::MutexLock lock(&mu_);
  epoch_ = mirror_epoch;
  const std::string& epoch = epoch_;
  // Serialized once per filter, when the first stream with that filter needs it (none when no
  // event matches). node_hash_map: the deliveries point into it.
  // Most streams share one filter (every token, no hashes): a stream whose filter equals the
  // previous stream's reuses its message without a lookup.
  absl::node_hash_map<WatchFilter, std::optional<grpc::ByteBuffer>> by_filter;
  const WatchFilter* previous_filter = nullptr;
  const std::optional<grpc::ByteBuffer>* previous_message = nullptr;
  deliveries_.clear();
  for (WatchStream* stream : streams_) {
    if (previous_filter == nullptr || !(stream->filter() == *previous_filter)) {
      auto [it, inserted] = by_filter.try_emplace(stream->filter());
      if (inserted) {
        WatchTokensResponse changes =
            Message(WatchTokensResponse::KIND_CHANGES, revision, epoch, events.back()->chain());
        for (const auto& event : events) stream->filter().AddIfMatches(*event, changes);
        if (changes.events_size() > 0) it->second = Serialize(changes);
      }
      previous_filter = &it->first;
      previous_message = &it->second;
    }
    if (previous_message->has_value()) deliveries_.push_back({stream, &**previous_message});
  }
  // Starting a write costs a few microseconds of gRPC per stream: with thousands of streams one
  // core cannot keep up with a change every few milliseconds, so two share the work. Streams
  // cannot go away meanwhile: Unregister needs mu_.
  fan_out_.Run(deliveries_.size(), kMinSplitFanOut, [this, revision](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      deliveries_[i].stream->DeliverLive(*deliveries_[i].message, revision);
    }
  });
}

void WatchHub::OnReset(const std::string& epoch, int64_t revision) {
  absl::MutexLock lock(&mu_);
  epoch_ = epoch;
  captures_.clear();
  for (WatchStream* stream : streams_) {
    if (stream->Reset(epoch, revision)) AwaitSnapshotLocked(*stream);
  }
}

void WatchHub::Shutdown() {
  absl::MutexLock lock(&mu_);
  shutting_down_ = true;
  for (WatchStream* stream : streams_) {
    stream->Close(absl::StatusCode::kUnavailable, reason::kServerShuttingDown,
                  "server shutting down", " elsewhere");
  }
}

int WatchHub::watcher_count() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(streams_.size());
}

void WatchHub::Unregister(WatchStream* stream) {
  absl::MutexLock lock(&mu_);
  streams_.erase(stream);
  EraseWaiterLocked(stream);
  snapshotting_.erase(stream);
  Release(per_peer_, stream->peer());
  Release(per_principal_, stream->principal());
}

void WatchHub::TimerLoop() {
  absl::Time next_tick = absl::Now() + options_.tick;
  while (true) {
    {
      absl::MutexLock lock(&wake_mu_);
      const auto woken = [this]()
                             ABSL_EXCLUSIVE_LOCKS_REQUIRED(wake_mu_) { return stop_ || wake_; };
      wake_mu_.AwaitWithDeadline(absl::Condition(&woken), next_tick);
      if (stop_) return;
      wake_ = false;
    }
    // Woken (a snapshot ended, or a stream waits for one): start what fits at once. PROGRESS
    // and the stall check only once per tick.
    SendDueSnapshots();
    const absl::Time now = absl::Now();
    if (now < next_tick) continue;
    next_tick = now + options_.tick;
    SendDueProgress();
    absl::MutexLock lock(&mu_);
    CancelStalledSnapshotsLocked(now);
  }
}

void WatchHub::SendDueSnapshots() {
  {
    absl::MutexLock lock(&mu_);
    if (snapshot_waiters_.empty()) return;
  }
  std::vector<std::shared_ptr<StreamLink>> started;
  mirror_
      .ReadConsistent([this, &started](const MirrorView& view) {
        absl::MutexLock lock(&mu_);
        StartWaitingSnapshotsLocked(view, started);
      })
      .IgnoreError();  // not loaded: nothing is owed yet
  KickAll(started);
}

void WatchHub::SendDueProgress() {
  const absl::Time now = absl::Now();
  mirror_
      .ReadConsistent([this, now](const MirrorView& view) {
        const grpc::ByteBuffer progress = Serialize(Message(
            WatchTokensResponse::KIND_PROGRESS, view.revision(), view.epoch(), view.chain()));
        absl::MutexLock lock(&mu_);
        for (WatchStream* stream : streams_) {
          stream->MaybeProgress(now, progress, view.revision());
        }
      })
      .IgnoreError();  // not loaded: no stream is live
}

}  // namespace tokenstatus
