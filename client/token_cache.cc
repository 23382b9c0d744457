#include "client/token_cache.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/memory/memory.h"
#include "absl/random/random.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/cache_table.h"
#include "client/token_client.h"
#include "core/backoff.h"
#include "core/log.h"
#include "core/status_util.h"
#include "core/token_secret.h"
#include "core/token_view.h"
#include "core/validation.h"

namespace tokenstatus {
namespace {

using apitoken::v1::Token;
using apitoken::v1::TokenEvent;
using apitoken::v1::VerifyTokenResponse;
using apitoken::v1::WatchTokensRequest;
using apitoken::v1::WatchTokensResponse;

// The server's lower bound of progress_interval, and so of max_staleness.
constexpr absl::Duration kMinProgressInterval = absl::Milliseconds(100);
// The longest server retry hint the cache follows.
constexpr absl::Duration kMaxRetryHint = absl::Minutes(5);

// How long the server asked the client to wait before it tries again (ErrorInfo metadata
// retry_after_ms, e.g. with SNAPSHOT_BUDGET_EXHAUSTED), at most kMaxRetryHint; zero without a
// valid hint.
absl::Duration RetryHint(const absl::Status& status) {
  const google::rpc::ErrorInfo info = ErrorInfoOf(status);
  const auto hint = info.metadata().find(kRetryAfterMsKey);
  int64_t millis = 0;
  if (hint == info.metadata().end() || !absl::SimpleAtoi(hint->second, &millis) || millis <= 0) {
    return absl::ZeroDuration();
  }
  return std::min(absl::Milliseconds(millis), kMaxRetryHint);
}

absl::Status InvalidOption(absl::string_view field, absl::string_view message) {
  return MakeError(absl::StatusCode::kInvalidArgument, reason::kInvalidArgument,
                   absl::StrCat("TokenCacheOptions.", field, ": ", message), {{"field", field}});
}

absl::Status ValidateOptions(const TokenCacheOptions& options) {
  if (!options.account_id.empty()) {
    absl::Status status = ValidateAccountId(options.account_id);
    if (!status.ok()) return status;
  }
  if (options.max_staleness < kMinProgressInterval) {
    return InvalidOption("max_staleness", "must be at least 100ms");
  }
  if (options.initial_backoff <= absl::ZeroDuration()) {
    return InvalidOption("initial_backoff", "must be positive");
  }
  if (options.max_backoff < options.initial_backoff) {
    return InvalidOption("max_backoff", "must be at least initial_backoff");
  }
  return absl::OkStatus();
}

bool Allowed(bool ok, bool fresh, StalePolicy policy) {
  return ok && (fresh || policy == StalePolicy::kServeLastKnown);
}

}  // namespace

absl::StatusOr<std::unique_ptr<TokenCache>> TokenCache::Create(
    std::shared_ptr<grpc::Channel> channel, TokenCacheOptions options) {
  absl::Status status = ValidateOptions(options);
  if (!status.ok()) return status;
  return absl::WrapUnique(
      new TokenCache(NewGrpcWatchSource(std::move(channel)), std::move(options)));
}

absl::StatusOr<std::unique_ptr<TokenCache>> TokenCache::Create(std::unique_ptr<WatchSource> source,
                                                               TokenCacheOptions options) {
  absl::Status status = ValidateOptions(options);
  if (!status.ok()) return status;
  return absl::WrapUnique(new TokenCache(std::move(source), std::move(options)));
}

grpc::ChannelArguments TokenCache::ChannelArguments(const TokenCacheOptions& options) {
  grpc::ChannelArguments args;
  const int initial_ms = static_cast<int>(absl::ToInt64Milliseconds(options.initial_backoff));
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, initial_ms);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(options.max_backoff)));
  return args;
}

TokenCache::TokenCache(std::unique_ptr<WatchSource> source, TokenCacheOptions options)
    : options_(std::move(options)),
      source_(std::move(source)),
      contents_(std::make_unique<CacheContents>()),
      stream_thread_([this] { Run(); }),
      staleness_thread_([this] { WatchStaleness(); }) {}

TokenCache::~TokenCache() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (stream_ != nullptr) stream_->Cancel();
  }
  stream_thread_.join();
  staleness_thread_.join();
}

CheckResult TokenCache::Check(absl::string_view token_id) const {
  CheckResult result;
  result.cache_revision = revision_.load(std::memory_order_acquire);
  result.fresh = fresh_.load(std::memory_order_relaxed);
  const std::optional<TokenKey> key = TokenKeyOf(token_id);
  if (!key.has_value()) return result;  // the cache holds valid ids only
  contents_->table.Find(*key, [&result](const CachedEntry* entry) {
    if (entry == nullptr) return;
    result.state = entry->state;
    result.token_revision = entry->revision;
  });
  result.allowed =
      Allowed(result.state == Token::STATE_ACTIVE, result.fresh, options_.stale_policy);
  return result;
}

VerifyResult TokenCache::Verify(absl::string_view secret) const {
  VerifyResult result;
  result.cache_revision = revision_.load(std::memory_order_acquire);
  result.fresh = fresh_.load(std::memory_order_relaxed);
  const std::optional<std::string> token_id = ParseSecret(secret);
  if (!token_id.has_value()) {
    result.result = VerifyTokenResponse::RESULT_MALFORMED;
    return result;
  }
  const std::optional<TokenKey> key = TokenKeyOf(*token_id);
  if (!key.has_value()) {  // ParseSecret accepts valid ids only
    result.result = VerifyTokenResponse::RESULT_MALFORMED;
    return result;
  }
  const std::string hash = Sha256(secret);
  contents_->table.Find(*key, [&result, &hash](const CachedEntry* entry) {
    if (entry == nullptr || !ConstantTimeEquals(hash, entry->SecretSha256())) {
      result.result = VerifyTokenResponse::RESULT_NOT_FOUND;
      return;
    }
    result.result = VerifyResultOf(entry->state);
    result.token_id = entry->token->id();
    result.account_id = entry->token->account_id();
    result.token_revision = entry->revision;
  });
  result.allowed = Allowed(result.result == VerifyTokenResponse::RESULT_VALID, result.fresh,
                           options_.stale_policy);
  return result;
}

GetResult TokenCache::Get(absl::string_view token_id) const {
  GetResult result;
  result.cache_revision = revision_.load(std::memory_order_acquire);
  result.fresh = fresh_.load(std::memory_order_relaxed);
  const std::optional<TokenKey> key = TokenKeyOf(token_id);
  if (!key.has_value()) return result;
  result.token = contents_->table.Find(*key, [](const CachedEntry* entry) -> std::optional<Token> {
    if (entry == nullptr) return std::nullopt;
    return WithoutSecretHash(*entry->token);
  });
  return result;
}

ListResult TokenCache::List(const ListParams& params) const {
  ListResult result;
  result.fresh = fresh_.load(std::memory_order_relaxed);
  const size_t page_size = static_cast<size_t>(std::clamp(params.page_size, 1, kMaxPageSize));
  std::vector<std::shared_ptr<const Token>> matches;
  {
    absl::ReaderMutexLock lock(&contents_->index_mu);
    result.page.revision = contents_->index_revision;
    result.page.epoch = contents_->index_epoch;
    for (auto it = contents_->index.upper_bound(params.after_id); it != contents_->index.end();
         ++it) {
      if (!MatchesListFilter(*it->second, params)) continue;
      if (matches.size() == page_size) {
        result.page.next_after_id = matches.back()->id();
        break;
      }
      matches.push_back(it->second);
    }
  }
  result.page.tokens.reserve(matches.size());
  for (const std::shared_ptr<const Token>& token : matches) {
    result.page.tokens.push_back(WithoutSecretHash(*token));
  }
  return result;
}

absl::Time TokenCache::last_heard() const {
  const int64_t nanos = last_heard_ns_.load(std::memory_order_relaxed);
  return nanos == 0 ? absl::InfinitePast() : absl::FromUnixNanos(nanos);
}

size_t TokenCache::size() const {
  absl::ReaderMutexLock lock(&contents_->index_mu);
  return contents_->index.size();
}

int64_t TokenCache::revision() const { return revision_.load(std::memory_order_acquire); }

std::string TokenCache::epoch() const {
  absl::ReaderMutexLock lock(&mu_);
  return epoch_;
}

bool TokenCache::synced() const {
  absl::ReaderMutexLock lock(&mu_);
  return synced_;
}

bool TokenCache::fresh() const { return fresh_.load(std::memory_order_relaxed); }

TokenCacheStats TokenCache::stats() const {
  absl::ReaderMutexLock lock(&mu_);
  return stats_;
}

bool TokenCache::WaitForRevision(int64_t revision, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto reached = [this, revision]() {
    mu_.AssertReaderHeld();
    return synced_ && revision_.load() >= revision;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
}

TokenCache::ListenerId TokenCache::OnChange(Listener listener) {
  absl::MutexLock lock(&listeners_mu_);
  const ListenerId id = next_listener_id_++;
  listeners_.emplace(id, std::move(listener));
  return id;
}

void TokenCache::RemoveListener(ListenerId id) {
  absl::MutexLock lock(&listeners_mu_);
  listeners_.erase(id);
}

WatchTokensRequest TokenCache::NextRequest() const {
  WatchTokensRequest request;
  request.set_send_initial_state(true);
  request.set_account_id(options_.account_id);
  request.set_include_secret_hash(options_.include_secret_hash);
  const absl::Duration progress = std::max(options_.max_staleness / 4, kMinProgressInterval);
  const int64_t nanos = absl::ToInt64Nanoseconds(progress);
  request.mutable_progress_interval()->set_seconds(nanos / 1'000'000'000);
  request.mutable_progress_interval()->set_nanos(static_cast<int32_t>(nanos % 1'000'000'000));
  absl::ReaderMutexLock lock(&mu_);
  if (synced_ && !resync_pending_) {
    request.set_since_revision(revision_.load());
    request.set_epoch(epoch_);
    request.set_since_chain(chain_);
  }
  return request;
}

void TokenCache::Run() {
  const Backoff backoff{.initial = options_.initial_backoff, .max = options_.max_backoff};
  absl::BitGen random;
  int failures = 0;  // consecutive streams that ended without a message
  while (true) {
    const WatchTokensRequest request = NextRequest();
    std::unique_ptr<WatchStream> stream = source_->Open(request);
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) stream->Cancel();
      stream_ = stream.get();
      stream_opened_ns_ = absl::GetCurrentTimeNanos();
      ++stats_.streams_opened;
    }
    const bool heard = Follow(*stream, request.since_revision() > 0);
    bool stopping;
    {
      absl::MutexLock lock(&mu_);
      stream_ = nullptr;
      stopping = stopping_;
    }
    const absl::Status status = stream->Finish();
    stream.reset();
    pending_.reset();  // a snapshot cut short: the next stream sends a whole one
    if (stopping) return;
    failures = heard ? 1 : failures + 1;
    const absl::Duration delay = std::max(backoff.Delay(failures, random), RetryHint(status));
    // The end of a stream that worked, then failed attempts 2, 4, 8, ... (not every retry).
    if ((failures & (failures - 1)) == 0) {
      Log(LogLevel::kWarning,
          absl::StrCat("event=token_cache_stream_ended code=",
                       absl::StatusCodeToString(status.code()), " reason=", ErrorReason(status),
                       " message=\"", absl::CHexEscape(status.message()), "\" attempt=", failures,
                       " revision=", revision(), " retry_in=", absl::FormatDuration(delay)));
    }
    absl::MutexLock lock(&mu_);
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), delay)) return;
  }
}

bool TokenCache::Follow(WatchStream& stream, bool resuming) {
  WatchTokensResponse message;
  bool heard = false;
  while (stream.Read(&message)) {
    last_heard_ns_.store(absl::GetCurrentTimeNanos());
    Handle(message, resuming && !heard);
    heard = true;
    MarkFresh();
  }
  return heard;
}

void TokenCache::Handle(WatchTokensResponse& message, bool resuming) {
  switch (message.kind()) {
    case WatchTokensResponse::KIND_SNAPSHOT:
      if (pending_ == nullptr) pending_ = std::make_unique<SnapshotBuilder>();
      for (Token& token : *message.mutable_tokens()) pending_->Add(std::move(token));
      return;
    case WatchTokensResponse::KIND_SYNCED:
      SwapInSnapshot(message);
      return;
    case WatchTokensResponse::KIND_RESET: {
      Log(LogLevel::kWarning, absl::StrCat("event=token_cache_reset revision=", revision(),
                                           " epoch=", message.epoch()));
      pending_ = std::make_unique<SnapshotBuilder>();
      absl::MutexLock lock(&mu_);
      ++stats_.resets;
      resync_pending_ = true;
      return;
    }
    case WatchTokensResponse::KIND_CHANGES:
    case WatchTokensResponse::KIND_PROGRESS:
      if (resuming) {
        absl::MutexLock lock(&mu_);
        ++stats_.resumes;
      }
      if (message.kind() == WatchTokensResponse::KIND_CHANGES) ApplyChanges(message);
      Advance(message);
      return;
    default:
      return;  // a kind this client does not know: nothing to apply
  }
}

void TokenCache::ApplyChanges(WatchTokensResponse& message) {
  for (TokenEvent& event : *message.mutable_events()) {
    const std::optional<TokenKey> key = TokenKeyOf(event.token().id());
    auto token = std::make_shared<const Token>(event.token());
    // The table first, then the index drops the token it replaces (see CacheTable).
    if (!key.has_value() || !contents_->table.ApplyIfNewer(*key, *token)) {
      absl::MutexLock lock(&mu_);
      ++stats_.events_ignored;
      continue;
    }
    const int64_t revision = token->revision();
    {
      absl::MutexLock lock(&contents_->index_mu);
      contents_->index.insert_or_assign(token->id(), std::move(token));
      contents_->index_revision = std::max(contents_->index_revision, revision);
    }
    {
      absl::MutexLock lock(&mu_);
      if (revision > revision_.load()) revision_.store(revision, std::memory_order_release);
      ++stats_.events_applied;
    }
    event.mutable_token()->clear_secret_sha256();
    CacheChange change = ChangeOf(CacheChange::Kind::kEvent);
    change.event = &event;
    Notify(change);
  }
}

void TokenCache::Advance(const WatchTokensResponse& message) {
  {
    absl::MutexLock lock(&contents_->index_mu);
    contents_->index_revision = std::max(contents_->index_revision, message.revision());
    if (!message.epoch().empty()) contents_->index_epoch = message.epoch();
  }
  absl::MutexLock lock(&mu_);
  if (message.revision() >= revision_.load()) {
    revision_.store(message.revision(), std::memory_order_release);
    chain_ = message.chain();
  }
  if (!message.epoch().empty()) epoch_ = message.epoch();
}

void TokenCache::SwapInSnapshot(const WatchTokensResponse& synced) {
  if (pending_ == nullptr) pending_ = std::make_unique<SnapshotBuilder>();
  const size_t tokens = pending_->size();
  contents_->table.Swap(*pending_);
  {
    absl::MutexLock lock(&contents_->index_mu);
    contents_->index.swap(pending_->index_);
    contents_->index_revision = synced.revision();
    contents_->index_epoch = synced.epoch();
  }
  {
    absl::MutexLock lock(&mu_);
    revision_.store(synced.revision(), std::memory_order_release);
    epoch_ = synced.epoch();
    chain_ = synced.chain();
    synced_ = true;
    fresh_.store(true);  // SYNCED itself was just heard
    resync_pending_ = false;
    ++stats_.snapshots_loaded;
  }
  pending_.reset();  // frees the previous state, outside every lock
  Log(LogLevel::kInfo, absl::StrCat("event=token_cache_synced tokens=", tokens,
                                    " revision=", synced.revision(), " epoch=", synced.epoch()));
  Notify(ChangeOf(CacheChange::Kind::kReset));
  NotifyFreshness();
}

void TokenCache::MarkFresh() {
  // Follow's seq_cst store of last_heard_ns_, then this load, against WatchStaleness's store of
  // false then load of the time: one of the two sees the other's write, so a message never
  // leaves the cache marked stale.
  if (fresh_.load()) return;
  {
    absl::MutexLock lock(&mu_);
    if (!synced_) return;
    fresh_.store(true);
  }
  NotifyFreshness();
}

void TokenCache::WatchStaleness() {
  int64_t cancelled = 0;  // the number (streams_opened) of the last stream cancelled here
  mu_.Lock();
  while (!stopping_) {
    const absl::Time now = absl::Now();
    const absl::Time last_heard = absl::FromUnixNanos(last_heard_ns_.load());
    // Fresh until max_staleness after the last message.
    const absl::Time stale_at =
        fresh_.load() ? last_heard + options_.max_staleness : absl::InfiniteFuture();
    // A stream is silent from its last message, or from its opening if none came on it yet.
    const bool cancellable = stream_ != nullptr && cancelled != stats_.streams_opened;
    const absl::Time drop_at =
        cancellable
            ? std::max(last_heard, absl::FromUnixNanos(stream_opened_ns_)) + options_.max_staleness
            : absl::InfiniteFuture();
    if (now >= stale_at) {
      fresh_.store(false);
      // seq_cst against Follow/MarkFresh: if a message arrived meanwhile, it is seen here or
      // MarkFresh() sees fresh_ false and sets it again.
      if (now < absl::FromUnixNanos(last_heard_ns_.load()) + options_.max_staleness) {
        fresh_.store(true);
        continue;
      }
      Log(LogLevel::kWarning, absl::StrCat("event=token_cache_stale revision=", revision_.load(),
                                           " silent_for=", absl::FormatDuration(now - last_heard)));
      mu_.Unlock();
      NotifyFreshness();
      mu_.Lock();
      continue;
    }
    if (now >= drop_at) {
      // The server is gone, or the connection is dead without either side knowing. Drop the
      // stream; the stream thread reconnects and resumes.
      stream_->Cancel();
      cancelled = stats_.streams_opened;
      continue;
    }
    // Wake at the next deadline, or when freshness returns or another stream opens (both
    // change under mu_). Later messages only move the deadlines later: recomputed on waking.
    const bool was_fresh = fresh_.load();
    const int64_t opened = stats_.streams_opened;
    auto changed = [this, was_fresh, opened]() {
      mu_.AssertReaderHeld();
      return stopping_ || fresh_.load() != was_fresh || stats_.streams_opened != opened;
    };
    mu_.AwaitWithDeadline(absl::Condition(&changed), std::min(stale_at, drop_at));
  }
  mu_.Unlock();
}

CacheChange TokenCache::ChangeOf(CacheChange::Kind kind) const {
  CacheChange change;
  change.kind = kind;
  change.revision = revision_.load();
  change.fresh = fresh_.load();
  absl::ReaderMutexLock lock(&mu_);
  change.epoch = epoch_;
  return change;
}

void TokenCache::Notify(const CacheChange& change) {
  absl::MutexLock lock(&listeners_mu_);
  for (auto& [id, listener] : listeners_) listener(change);
}

void TokenCache::NotifyFreshness() {
  absl::MutexLock lock(&listeners_mu_);
  const bool fresh = fresh_.load();
  if (fresh == notified_fresh_) return;
  notified_fresh_ = fresh;
  CacheChange change = ChangeOf(CacheChange::Kind::kFreshness);
  change.fresh = fresh;
  for (auto& [id, listener] : listeners_) listener(change);
}

}  // namespace tokenstatus
