#include "server/watch/watch_hub.h"

#include <list>
#include <optional>
#include <utility>

#include "absl/container/node_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/commit_time.h"
#include "core/grpc_status.h"
#include "core/log.h"
#include "core/refused_stream.h"
#include "core/status_util.h"
#include "core/validation.h"
#include "google/protobuf/duration.pb.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/server_context.h"
#include "server/mirror/thread_priority.h"
#include "server/watch/watch_reactor.h"

namespace tokenstatus {

using apitoken::v1::WatchTokensRequest;
using apitoken::v1::WatchTokensResponse;

namespace {

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

}  // namespace

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

WatchHub::WatchHub(TokenMirror& mirror, TokenStore& store, WatchHubOptions options,
                   WatchMetrics* metrics)
    : mirror_(mirror),
      store_(store),
      options_(options),
      metrics_(metrics),
      snapshot_budget_(options.snapshot_memory_budget, options.max_snapshots_per_principal,
                       [this] { Wake(); }),
      fan_out_thread_([this] { FanOutLoop(); }),
      timer_([this] { TimerLoop(); }) {}

WatchHub::~WatchHub() {
  Shutdown();
  {
    absl::MutexLock lock(&pending_mu_);
    stop_fan_out_ = true;
  }
  fan_out_thread_.join();
  {
    absl::MutexLock lock(&wake_mu_);
    stop_ = true;
  }
  timer_.join();
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* WatchHub::Watch(grpc::CallbackServerContext* context,
                                                            const WatchTokensRequest& request,
                                                            const std::string& principal,
                                                            metrics::CallMetrics call) {
  absl::Status status = ValidateRevision(request.since_revision(), "since_revision");
  if (status.ok() && !request.account_id().empty()) {
    status = ValidateAccountId(request.account_id());
  }
  absl::StatusOr<absl::Duration> progress_interval = ProgressIntervalOf(request, options_);
  if (status.ok()) status = progress_interval.status();
  if (!status.ok()) {
    call.Finish(status);
    return RefusedStream(status);
  }

  const std::string peer = context->peer();
  WatchReactor* stream = nullptr;
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
    NoteDeliveredLocked(view);
    stream = new WatchReactor(*this, context, peer, principal, request, *progress_interval,
                              std::move(call));
    streams_.insert(stream);
    if (metrics_ != nullptr) metrics_->watchers.Add(1);

    const int64_t revision = view.revision();
    const int64_t since = request.since_revision();
    const bool other_history = (!request.epoch().empty() && request.epoch() != view.epoch()) ||
                               since > revision ||
                               (since == revision && since > 0 && !request.since_chain().empty() &&
                                request.since_chain() != view.chain());
    if (other_history) {
      stream->Start(WatchReactor::Mode::kLive, revision, view.epoch());
      if (stream->Reset(view.epoch(), revision)) {
        AwaitSnapshotLocked(*stream);
        StartWaitingSnapshotsLocked(view, snapshots_started);
      }
    } else if (since == 0 && request.send_initial_state()) {
      stream->Start(WatchReactor::Mode::kAwaitingSnapshot, revision, view.epoch());
      AwaitSnapshotLocked(*stream);
      StartWaitingSnapshotsLocked(view, snapshots_started);
    } else if (since == 0 || since == revision) {
      stream->Start(WatchReactor::Mode::kLive, revision, view.epoch());
    } else {
      stream->Start(WatchReactor::Mode::kCatchingUp, revision, view.epoch());
      catch_up = true;
    }
  });
  if (!status.ok()) {
    call.Finish(status);
    return RefusedStream(status);
  }
  if (!refused.ok()) {
    if (metrics_ != nullptr) metrics_->ended.With({WatchMetrics::EndReasonOf(refused)}).Increment();
    call.Finish(refused);
    return RefusedStream(refused);
  }
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

void WatchHub::AwaitSnapshotLocked(WatchReactor& stream) {
  if (snapshot_waiter_index_.contains(&stream)) return;
  const uint64_t seq = next_snapshot_waiter_++;
  snapshot_waiters_.emplace(seq, SnapshotWaiter{&stream, absl::Now()});
  snapshot_waiter_index_.emplace(&stream, seq);
  ++snapshot_waiters_per_principal_[stream.principal()];
  Wake();  // the timer thread starts it if the caller does not
}

void WatchHub::EraseWaiterLocked(WatchReactor* stream) {
  auto it = snapshot_waiter_index_.find(stream);
  if (it != snapshot_waiter_index_.end()) EraseWaiterLocked(snapshot_waiters_.find(it->second));
}

absl::btree_map<uint64_t, WatchHub::SnapshotWaiter>::iterator WatchHub::EraseWaiterLocked(
    absl::btree_map<uint64_t, SnapshotWaiter>::iterator it) {
  WatchReactor* stream = it->second.stream;
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
    WatchReactor* stream = it->second.stream;
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

WatchHub::SnapshotStart WatchHub::TryStartSnapshotLocked(WatchReactor& stream,
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
  switch (snapshot_budget_.TryReserve(stream.principal(),
                                      SnapshotCursor::BytesFor(options_.snapshot_chunk_bytes),
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
  absl::erase_if(snapshotting_, [&](WatchReactor* stream) {
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
                         int64_t revision, const std::string& epoch) {
  absl::MutexLock lock(&pending_mu_);
  pending_.push_back({{events.begin(), events.end()}, revision, epoch});
}

void WatchHub::FanOutLoop() {
  LowerThisThreadPriority(kFanOutNice);
  while (true) {
    {
      absl::MutexLock lock(&pending_mu_);
      const auto due = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(pending_mu_) {
        return stop_fan_out_ || !pending_.empty();
      };
      pending_mu_.Await(absl::Condition(&due));
      if (stop_fan_out_) return;
    }
    // Taken under mu_, so that OnReset (which needs mu_) finds every batch either delivered or
    // still pending, never half-way.
    absl::MutexLock lock(&mu_);
    std::vector<PendingChanges> batches;
    {
      absl::MutexLock pending_lock(&pending_mu_);
      batches.swap(pending_);
    }
    for (const PendingChanges& batch : batches) FanOutLocked(batch);
  }
}

void WatchHub::NoteDeliveredLocked(const MirrorView& view) {
  absl::MutexLock lock(&pending_mu_);
  if (pending_.empty()) delivered_ = {view.revision(), view.epoch(), view.chain()};
}

void WatchHub::FanOutLocked(const PendingChanges& batch) {
  const auto& events = batch.events;
  const int64_t revision = batch.revision;
  const std::string& epoch = batch.epoch;
  // Serialized once per filter, when the first stream with that filter needs it (none when no
  // event matches). node_hash_map: the deliveries point into it.
  // Most streams share one filter (every token, no hashes): a stream whose filter equals the
  // previous stream's reuses its message without a lookup.
  struct Message {
    std::optional<grpc::ByteBuffer> bytes;
    int events = 0;
  };
  absl::node_hash_map<WatchFilter, Message> by_filter;
  const WatchFilter* previous_filter = nullptr;
  const Message* previous_message = nullptr;
  int64_t events_queued = 0;
  deliveries_.clear();
  for (WatchReactor* stream : streams_) {
    if (previous_filter == nullptr || !(stream->filter() == *previous_filter)) {
      auto [it, inserted] = by_filter.try_emplace(stream->filter());
      if (inserted) {
        WatchTokensResponse changes = WatchMessageOf(WatchTokensResponse::KIND_CHANGES, revision,
                                                     epoch, events.back()->chain());
        for (const auto& event : events) stream->filter().AddIfMatches(*event, changes);
        if (changes.events_size() > 0) {
          it->second = {SerializeMessage(changes), changes.events_size()};
        }
      }
      previous_filter = &it->first;
      previous_message = &it->second;
    }
    if (previous_message->bytes.has_value()) {
      deliveries_.push_back({stream, &*previous_message->bytes});
      events_queued += previous_message->events;
    }
  }
  // Starting a write costs a few microseconds of gRPC per stream: with thousands of streams one
  // core cannot keep up with a change every few milliseconds, so two share the work. Streams
  // cannot go away meanwhile: Unregister needs mu_.
  std::atomic<int> longest_queue = 0;
  fan_out_.Run(deliveries_.size(), kMinSplitFanOut,
               [this, revision, &longest_queue](size_t begin, size_t end) {
                 int longest = 0;
                 for (size_t i = begin; i < end; ++i) {
                   longest = std::max(longest, deliveries_[i].stream->DeliverLive(
                                                   *deliveries_[i].message, revision));
                 }
                 for (int seen = longest_queue.load();
                      longest > seen && !longest_queue.compare_exchange_weak(seen, longest);) {
                 }
               });
  delivered_ = {revision, epoch, events.back()->chain()};
  if (metrics_ != nullptr && !deliveries_.empty()) {
    metrics_->events_sent.Increment(static_cast<double>(events_queued));
    metrics_->queue_messages.Set(longest_queue.load());
    metrics_->fanout_seconds.ObserveSeconds(absl::Now() - CommitTimeOf(events.back()->token()));
  }
}

void WatchHub::OnReset(const std::string& epoch, int64_t revision, const std::string& chain) {
  absl::MutexLock lock(&mu_);
  {
    // Changes of the state just replaced: the RESET below supersedes them.
    absl::MutexLock pending_lock(&pending_mu_);
    pending_.clear();
  }
  delivered_ = {revision, epoch, chain};
  captures_.clear();
  for (WatchReactor* stream : streams_) {
    if (stream->Reset(epoch, revision)) AwaitSnapshotLocked(*stream);
  }
}

void WatchHub::Shutdown() {
  absl::MutexLock lock(&mu_);
  shutting_down_ = true;
  for (WatchReactor* stream : streams_) {
    stream->Close(absl::StatusCode::kUnavailable, reason::kServerShuttingDown,
                  "server shutting down", " elsewhere");
  }
}

int WatchHub::watcher_count() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(streams_.size());
}

void WatchHub::Unregister(WatchReactor* stream) {
  absl::MutexLock lock(&mu_);
  if (streams_.erase(stream) > 0 && metrics_ != nullptr) metrics_->watchers.Add(-1);
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
        NoteDeliveredLocked(view);
        StartWaitingSnapshotsLocked(view, started);
      })
      .IgnoreError();  // not loaded: nothing is owed yet
  KickAll(started);
}

void WatchHub::SendDueProgress() {
  // From what the fan-out delivered, not from the mirror: PROGRESS must not overtake a change
  // still waiting for the fan-out, and the mirror's lock is not held while waiting for mu_.
  const absl::Time now = absl::Now();
  absl::MutexLock lock(&mu_);
  if (delivered_.revision < 0 || streams_.empty()) return;
  const grpc::ByteBuffer progress = SerializeMessage(WatchMessageOf(
      WatchTokensResponse::KIND_PROGRESS, delivered_.revision, delivered_.epoch, delivered_.chain));
  for (WatchReactor* stream : streams_) {
    stream->MaybeProgress(now, progress, delivered_.revision);
  }
}

}  // namespace tokenstatus
