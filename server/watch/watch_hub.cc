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

  WatchStream(WatchHub& hub, std::string peer, std::string principal,
              const WatchTokensRequest& request, absl::Duration progress_interval)
      : hub_(hub),
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

  // The snapshot `chunks` and `synced` message at `revision` (under the mirror's reader lock);
  // makes the stream live. Ignored unless a snapshot is owed.
  void Snapshot(std::vector<grpc::ByteBuffer> chunks, grpc::ByteBuffer synced, int64_t revision) {
    {
      absl::MutexLock lock(&mu_);
      if (mode_ != Mode::kAwaitingSnapshot) return;
      for (grpc::ByteBuffer& chunk : chunks) {
        EnqueueLocked(std::move(chunk), kNoResumePoint, false);
      }
      EnqueueLocked(std::move(synced), revision, false);
      mode_ = Mode::kLive;
    }
    Pump();
  }

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
    in_flight_.Clear();  // an idle stream keeps no message
    std::optional<int64_t> read_after;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
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
  };

  int queue_size() const { return hub_.options_.queue_size; }

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
    if (mode_ == Mode::kClosing) return;
    mode_ = Mode::kClosing;
    queue_.clear();
    held_.clear();
    counted_ = 0;
    finish_ = MakeError(code, reason,
                        absl::StrCat(what, " at revision ", resume_revision_,
                                     "; resume with since_revision=", resume_revision_, where),
                        {{"revision", absl::StrCat(resume_revision_)}});
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

  // Starts the next write, or the Finish once nothing is left to write.
  void Pump() ABSL_LOCKS_EXCLUDED(mu_) {
    bool write = false;
    absl::Status finish;
    {
      absl::MutexLock lock(&mu_);
      if (writing_ || finished_) return;
      if (!queue_.empty()) {
        Item& item = queue_.front();
        in_flight_ = std::move(item.message);
        if (item.revision != kNoResumePoint) resume_revision_ = item.revision;
        counted_ -= item.counted ? 1 : 0;
        queue_.pop_front();
        writing_ = true;
        write = true;
      } else if (finish_.has_value()) {
        finished_ = true;
        finish = *finish_;
      } else {
        return;
      }
    }
    if (write) {
      StartWrite(&in_flight_);
    } else {
      Finish(ToGrpcStatus(finish));
    }
  }

  WatchHub& hub_;
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
  std::optional<absl::Status> finish_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ByteBuffer in_flight_;  // the message being written; only while writing_
};

WatchHub::WatchHub(TokenMirror& mirror, TokenStore& store, WatchHubOptions options)
    : mirror_(mirror), store_(store), options_(options), timer_([this] { TimerLoop(); }) {}

WatchHub::~WatchHub() {
  Shutdown();
  {
    absl::MutexLock lock(&mu_);
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
    stream = new WatchStream(*this, peer, principal, request, *progress_interval);
    streams_.insert(stream);

    const int64_t revision = view.revision();
    const int64_t since = request.since_revision();
    const bool other_history = (!request.epoch().empty() && request.epoch() != view.epoch()) ||
                               since > revision ||
                               (since == revision && since > 0 && !request.since_chain().empty() &&
                                request.since_chain() != view.chain());
    if (other_history) {
      stream->Start(WatchStream::Mode::kLive, revision, view.epoch());
      if (stream->Reset(view.epoch(), revision)) SendSnapshot(*stream, view);
    } else if (since == 0 && request.send_initial_state()) {
      stream->Start(WatchStream::Mode::kAwaitingSnapshot, revision, view.epoch());
      SendSnapshot(*stream, view);
    } else if (since == 0 || since == revision) {
      stream->Start(WatchStream::Mode::kLive, revision, view.epoch());
    } else {
      stream->Start(WatchStream::Mode::kCatchingUp, revision, view.epoch());
      catch_up = true;
    }
  });
  if (!status.ok()) return Refuse(status);
  if (!refused.ok()) return Refuse(refused);
  // Outside the mirror's lock: the store may answer on this thread.
  if (catch_up) ReadCatchUpPage(stream->link(), stream->FirstCatchUpReadAfter());
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
                          snapshot_due_.insert(link->stream);
                        }
                      }
                      if (next.has_value()) ReadCatchUpPage(std::move(link), *next);
                    });
}

void WatchHub::SendSnapshot(WatchStream& stream, const MirrorView& view) {
  std::vector<grpc::ByteBuffer> chunks;
  WatchTokensResponse chunk =
      Message(WatchTokensResponse::KIND_SNAPSHOT, view.revision(), view.epoch(), view.chain());
  const auto flush = [&] {
    chunks.push_back(Serialize(chunk));
    chunk.clear_tokens();
  };
  view.ForEachToken(stream.filter().account_id, [&](const Token& token) {
    stream.filter().Show(token, *chunk.add_tokens());
    if (chunk.tokens_size() >= options_.snapshot_chunk) flush();
  });
  if (chunk.tokens_size() > 0) flush();
  stream.Snapshot(std::move(chunks),
                  Serialize(Message(WatchTokensResponse::KIND_SYNCED, view.revision(), view.epoch(),
                                    view.chain())),
                  view.revision());
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
  for (WatchStream* stream : streams_) {
    if (stream->Reset(epoch, revision)) snapshot_due_.insert(stream);
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
  snapshot_due_.erase(stream);
  Release(per_peer_, stream->peer());
  Release(per_principal_, stream->principal());
}

void WatchHub::TimerLoop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      const auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_ || !snapshot_due_.empty();
      };
      mu_.AwaitWithTimeout(absl::Condition(&wake), options_.tick);
      if (stop_) return;
    }
    SendDueSnapshots();
    SendDueProgress();
  }
}

void WatchHub::SendDueSnapshots() {
  mirror_
      .ReadConsistent([this](const MirrorView& view) {
        absl::MutexLock lock(&mu_);
        for (WatchStream* stream : snapshot_due_) SendSnapshot(*stream, view);
        snapshot_due_.clear();
      })
      .IgnoreError();  // not loaded: nothing is owed yet
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
