#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "apitoken/v1/token_service.pb.h"
#include "client/watch_source.h"
#include "core/list_query.h"
#include "grpcpp/channel.h"
#include "grpcpp/support/channel_arguments.h"

namespace tokenstatus {

struct CacheContents;  // client/cache_table.h
class SnapshotBuilder;

// What a lookup answers while the cache is not fresh (see TokenCacheOptions::max_staleness).
enum class StalePolicy {
  kFailClosed,      // allowed == false for every token while not fresh (the default)
  kServeLastKnown,  // allowed follows the last known state, fresh or not
};

// ({} initializers: designated initializers may omit any field without a GCC warning.)
struct TokenCacheOptions {
  // Only tokens of this account (ACC-NNNN-NNNN); empty = every token.
  std::string account_id{};
  // Ask the server for each token's secret_sha256, which Verify() needs. Without it every
  // Verify() of a well-formed secret answers RESULT_NOT_FOUND.
  bool include_secret_hash = true;
  // The cache is fresh while it has a complete snapshot and has heard from the server (a change,
  // a snapshot chunk or a PROGRESS) within max_staleness. It asks the server for a PROGRESS
  // every max(max_staleness / 4, 100 ms), and it drops a stream that has been silent for
  // max_staleness and reconnects. At least 100 ms.
  absl::Duration max_staleness = absl::Seconds(10);
  StalePolicy stale_policy = StalePolicy::kFailClosed;
  // Delays between streams: after the n-th consecutive stream that ended without a message the
  // next one opens after a uniformly random duration in [d/2, d] with
  // d = min(initial_backoff * 2^(n-1), max_backoff); after a stream that delivered messages,
  // n = 1. While the server is unreachable a stream waits for the channel to connect (gRPC
  // retries connecting with the channel's reconnect backoff: ChannelArguments() sets it from
  // these two values) and is dropped after max_staleness. A stream the server ended with a
  // retry hint (ErrorInfo metadata retry_after_ms, as SNAPSHOT_BUDGET_EXHAUSTED carries) waits
  // at least that long (at most 5 minutes). 0 < initial_backoff <= max_backoff.
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
};

// The answer of TokenCache::Check().
struct CheckResult {
  // The token's state; STATE_UNSPECIFIED if the cache does not know the token (or has not
  // synced yet).
  apitoken::v1::Token::State state = apitoken::v1::Token::STATE_UNSPECIFIED;
  // The revision of the token's last change; 0 if unknown.
  int64_t token_revision = 0;
  // The cache's revision when the lookup began: the state returned is at least this recent.
  int64_t cache_revision = 0;
  // The cache had a complete snapshot and had heard from the server within max_staleness.
  bool fresh = false;
  // The policy's answer: state == ACTIVE and (fresh or the policy is kServeLastKnown).
  bool allowed = false;
};

// The answer of TokenCache::Verify(): VerifyToken's answer, computed locally.
struct VerifyResult {
  // MALFORMED (not "idt:<token id>:<opaque>"), NOT_FOUND (unknown id, or a secret whose SHA-256
  // differs from the token's, compared in constant time), DISABLED, DELETED or VALID.
  apitoken::v1::VerifyTokenResponse::Result result =
      apitoken::v1::VerifyTokenResponse::RESULT_UNSPECIFIED;
  // Set only when the secret matched a token (DISABLED, DELETED, VALID).
  std::string token_id;
  std::string account_id;
  int64_t token_revision = 0;
  // As in CheckResult.
  int64_t cache_revision = 0;
  bool fresh = false;
  // result == RESULT_VALID and (fresh or the policy is kServeLastKnown).
  bool allowed = false;
};

// The answer of TokenCache::Get().
struct GetResult {
  // The token, without secret_sha256; nullopt if the cache does not know it.
  std::optional<apitoken::v1::Token> token;
  // As in CheckResult.
  int64_t cache_revision = 0;
  bool fresh = false;
};

// The answer of TokenCache::List().
struct ListResult {
  // Tokens without secret_sha256; page.revision and page.epoch are the cache's, read together
  // with the tokens (one consistent state).
  TokenPage page;
  bool fresh = false;
};

// Counters of what the cache did since it was created. Read together (one consistent set).
struct TokenCacheStats {
  int64_t streams_opened = 0;    // WatchTokens streams opened (first connect and reconnects)
  int64_t snapshots_loaded = 0;  // complete snapshots swapped in (the first sync and resyncs)
  int64_t resumes = 0;  // reconnects that continued from the cache's revision without a snapshot
  int64_t resets = 0;   // KIND_RESET messages received
  int64_t events_applied = 0;  // change events applied to the cache
  int64_t events_ignored = 0;  // events not newer than the cached token (never applied)
};

// One notification of a change listener (TokenCache::OnChange).
struct CacheChange {
  enum class Kind {
    // `event` was applied; the cache is at `revision`.
    kEvent,
    // A complete snapshot replaced the whole cache (the first sync, or a resync after a
    // KIND_RESET or a lost stream): drop everything derived from the cache. `event` is null.
    kReset,
    // fresh() changed to `fresh` (the cache synced, went stale, or heard again from the server).
    // `event` is null.
    kFreshness,
  };
  Kind kind = Kind::kEvent;
  // kEvent: the applied event; its token carries no secret_sha256. Valid during the call only.
  const apitoken::v1::TokenEvent* event = nullptr;
  // The cache's revision and epoch after the change.
  int64_t revision = 0;
  std::string epoch;
  // The cache's freshness after the change.
  bool fresh = false;
};

// A client-side copy of every token (of one account, or all), kept exact by a WatchTokens
// stream: list+watch. A background thread opens the stream with send_initial_state, loads the
// snapshot, then applies the changes as they come. After a disconnect it reconnects with
// jittered exponential backoff and resumes from its revision, epoch and history mark (no
// snapshot); on KIND_RESET (another epoch, trimmed history, a store restored older or failed
// over with lost changes) it loads the fresh snapshot aside, keeping on
// serving the old one, and swaps it in atomically: no lookup ever sees an empty or half-loaded
// cache.
//
// Every token keeps the newest revision seen: an event whose revision is not above the cached
// token's is ignored, so an older event never overwrites a newer state (a DISABLED or DELETED
// token is left only by a newer event).
//
// Lookups (Check, Verify, Get, List) never block on the network: they read memory under a
// reader lock. Check, Verify and Get use a hash table whose lock's readers write only a
// per-thread counter (client/cache_table.h), so lookups on many threads scale; List uses the
// ordered index under an absl::Mutex reader lock. Before the first snapshot every token is
// unknown.
//
// Thread-safety: every method is thread-safe. Lifetime: the destructor cancels the stream and
// joins the cache's threads; no listener is called after it returns. The cache must outlive
// every use of it, including listeners that capture it.
//
// Logs (core/log.h): token_cache_synced, token_cache_reset, token_cache_stale, and
// token_cache_stream_ended (for a stream that worked, then for failed attempts 2, 4, 8, ...).
class TokenCache {
 public:
  // Identifies a listener registered with OnChange().
  using ListenerId = int64_t;
  using Listener = absl::AnyInvocable<void(const CacheChange&)>;

  // Starts a cache that watches TokenService on `channel` (not null). For prompt reconnects create
  // the channel with ChannelArguments(options) (gRPC's own reconnect backoff otherwise reaches 120
  // s). INVALID_ARGUMENT (INVALID_ACCOUNT_ID, or INVALID_ARGUMENT naming the option) for bad
  // options.
  static absl::StatusOr<std::unique_ptr<TokenCache>> Create(std::shared_ptr<grpc::Channel> channel,
                                                            TokenCacheOptions options = {});
  // The same with any WatchSource (tests feed a fake stream). Same errors.
  static absl::StatusOr<std::unique_ptr<TokenCache>> Create(std::unique_ptr<WatchSource> source,
                                                            TokenCacheOptions options = {});

  // Channel arguments whose reconnect backoff (GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
  // GRPC_ARG_MAX_RECONNECT_BACKOFF_MS) follows options' initial_backoff / max_backoff.
  static grpc::ChannelArguments ChannelArguments(const TokenCacheOptions& options);

  ~TokenCache();
  TokenCache(const TokenCache&) = delete;
  TokenCache& operator=(const TokenCache&) = delete;

  // The state of `token_id` (any string; malformed ids are simply unknown). Lock-shared, never
  // blocks on the network; the hot path.
  CheckResult Check(absl::string_view token_id) const;

  // VerifyToken computed locally: parses `secret`, compares its SHA-256 with the cached hash in
  // constant time. Never logs or keeps the secret.
  VerifyResult Verify(absl::string_view secret) const;

  // The cached token `token_id` without secret_sha256.
  GetResult Get(absl::string_view token_id) const;

  // The tokens matching params' filters (MatchesListFilter: account, state, show_deleted) with
  // id > params.after_id, in id order, at most params.page_size (clamped to 1..kMaxPageSize);
  // page.next_after_id is the last id when more tokens match after it, else empty — the page
  // semantics of TokenStore::List. Walks the ordered index from after_id (an account filter
  // skips the other accounts' tokens one by one): not for the hot path.
  ListResult List(const ListParams& params) const;

  // The cache's revision (0 before the first snapshot) and epoch (empty before it).
  int64_t revision() const;
  std::string epoch() const;
  // Whether the cache has loaded a complete snapshot (it stays true across reconnects).
  bool synced() const;
  // Whether lookups are fresh now (see TokenCacheOptions::max_staleness).
  bool fresh() const;
  // When the cache last heard from the server (a change, a snapshot chunk or a PROGRESS);
  // InfinitePast before the first message. Lock-free.
  absl::Time last_heard() const;
  // The tokens the cache holds (deleted ones included). Takes the index's lock, which the
  // stream thread holds while it applies a change.
  size_t size() const;
  TokenCacheStats stats() const;

  // Waits until the cache has synced and its revision is >= `revision` (true), or `timeout`
  // passed (false). A resync to another epoch may lower the revision; the wait then continues.
  bool WaitForRevision(int64_t revision, absl::Duration timeout) const;

  // Registers `listener`, called after each applied event (in revision order, once per event),
  // after each snapshot swap (kReset) and on each freshness change (kFreshness). Calls are
  // serialized (never two at once) and made on the cache's threads with no cache lock held, so a
  // listener may call the lookups and accessors above; it must not call OnChange(),
  // RemoveListener() or the destructor (deadlock), and it should return quickly: the next change
  // waits for it. Returns the id to remove it with.
  ListenerId OnChange(Listener listener);
  // Unregisters a listener; once this returns it is not running and is never called again.
  // Unknown ids are ignored.
  void RemoveListener(ListenerId id);

 private:
  TokenCache(std::unique_ptr<WatchSource> source, TokenCacheOptions options);

  // The cache's stream thread: open, read, apply, back off, until stopped.
  void Run();
  // Reads `stream` to its end, applying every message. Returns whether some message arrived.
  bool Follow(WatchStream& stream, bool resuming);
  // Applies one message of the stream. `resuming`: the stream resumes from the cache's revision
  // and this is its first message.
  void Handle(apitoken::v1::WatchTokensResponse& message, bool resuming);
  void ApplyChanges(apitoken::v1::WatchTokensResponse& message);
  void SwapInSnapshot(const apitoken::v1::WatchTokensResponse& synced);
  // Takes the revision, epoch and history mark of a CHANGES or PROGRESS message.
  void Advance(const apitoken::v1::WatchTokensResponse& message);
  // After a message (last_heard_ns_ already set): the cache is fresh if it has synced.
  void MarkFresh();
  // The staleness thread: when the stream has been silent for max_staleness, marks the cache
  // stale and cancels the stream (then waits for the next one).
  void WatchStaleness();
  // Calls every listener with `change` (serialized by listeners_mu_).
  void Notify(const CacheChange& change);
  // Notifies kFreshness if fresh_ differs from the last freshness notified.
  void NotifyFreshness();
  // The request of the next stream.
  apitoken::v1::WatchTokensRequest NextRequest() const;
  // A CacheChange of `kind` with the cache's current revision, epoch and freshness.
  CacheChange ChangeOf(CacheChange::Kind kind) const;

  const TokenCacheOptions options_;
  const std::unique_ptr<WatchSource> source_;

  // The tokens (client/cache_table.h, internal). Written only by the stream thread.
  const std::unique_ptr<CacheContents> contents_;

  // Read lock-free by lookups.
  std::atomic<int64_t> revision_{0};
  std::atomic<bool> fresh_{false};
  std::atomic<int64_t> last_heard_ns_{0};  // absl::GetCurrentTimeNanos() of the last message

  // Changes of revision_ and fresh_ to true are made under mu_ too, so Await() sees them.
  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool synced_ ABSL_GUARDED_BY(mu_) = false;
  // A KIND_RESET arrived and its snapshot is not complete yet: reconnect without resuming.
  bool resync_pending_ ABSL_GUARDED_BY(mu_) = false;
  std::string epoch_ ABSL_GUARDED_BY(mu_);
  // The history mark at revision_ (WatchTokensResponse.chain): a resume names it, so that the
  // server RESETs a cache whose revisions came from a history the store no longer holds.
  std::string chain_ ABSL_GUARDED_BY(mu_);
  WatchStream* stream_ ABSL_GUARDED_BY(mu_) = nullptr;  // the open stream, for Cancel()
  int64_t stream_opened_ns_ ABSL_GUARDED_BY(mu_) = 0;   // when the latest stream was opened
  TokenCacheStats stats_ ABSL_GUARDED_BY(mu_);

  // The snapshot being received (stream thread only).
  std::unique_ptr<SnapshotBuilder> pending_;

  absl::Mutex listeners_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::map<ListenerId, Listener> listeners_ ABSL_GUARDED_BY(listeners_mu_);
  ListenerId next_listener_id_ ABSL_GUARDED_BY(listeners_mu_) = 1;
  bool notified_fresh_ ABSL_GUARDED_BY(listeners_mu_) = false;

  // Declared last: they start in the constructor and use every member above.
  std::thread stream_thread_;
  std::thread staleness_thread_;
};

}  // namespace tokenstatus
