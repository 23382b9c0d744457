#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "server/redis/redis_client.h"
#include "server/store/token_store.h"

namespace tokenstatus {

struct RedisTokenStoreOptions {
  std::string key_prefix = "{apitoken}";  // must contain a {hash tag}; tests use unique ones
  int64_t event_retention = 1000000;      // XADD MAXLEN ~
  absl::Duration call_timeout = absl::Seconds(1);  // upper bound of every Redis call
  // After each change, WAIT until this many replicas have it (0: do not wait), for at most
  // replica_ack_timeout (and never past the caller's deadline).
  int min_replicas_acked = 0;
  absl::Duration replica_ack_timeout = absl::Seconds(1);
};

// The TokenStore on Redis, with the layout of README "Redis layout" (every key starts with
// `key_prefix`; field encoding in server/store/token_record.h):
//   <p>:t:<id>           hash, the token record;
//   <p>:rev              the global revision counter;
//   <p>:events           stream, one entry `<revision>-0` per change (type + the whole token);
//   <p>:meta             hash, `epoch` (random, made by the first change of an empty dataset);
//   <p>:idx:all, <p>:idx:live (ACTIVE+DISABLED), <p>:idx:state:<STATE>, <p>:idx:acct:<account>
//                        sorted sets of ids (score 0), paged with ZRANGE BYLEX;
//   <p>:h:<id>           sorted set, the token's history index: the revisions of its newest
//                        kMaxHistoryPerToken changes (member and score the revision), written by
//                        the change itself, so ReadHistory reads one token's events from the
//                        stream without scanning it. Data written before this index existed has
//                        none: the history of changes made before the upgrade is empty (of a
//                        token last changed before it, ReadHistory returns no events).
// Create and Apply are one Lua script each (server/store/redis_scripts.h), Get, List,
// ReadHistory and ReadHead are read-only scripts, so every answer is one consistent state (Scan
// alone is not: see TokenStore::Scan). Each
// Redis call is bounded by min(caller deadline, now + call_timeout); WaitEvents's XREAD BLOCK
// blocks for at most min(block, time left to its deadline) and is then bounded by call_timeout
// more. With min_replicas_acked = N > 0, a change that the script made is acknowledged only
// once `WAIT N <ms>` on the same connection (RedisClient::FollowUp) reports at least N
// replicas; else Create/Apply fail with UNAVAILABLE / REPLICATION_UNCONFIRMED (the change is on
// the primary and may or may not survive a failover). Callbacks run on the I/O thread of the
// client that made the call. Thread-safe.
class RedisTokenStore : public TokenStore {
 public:
  // `client` serves every call but WaitEvents; `blocking_client` (a RedisClient of its own,
  // with connections = 1) serves only WaitEvents, whose XREAD BLOCK holds up everything
  // pipelined behind it. Both must outlive the store.
  RedisTokenStore(RedisClient& client, RedisClient& blocking_client,
                  RedisTokenStoreOptions options);

  void Create(CreateTokenParams params, absl::Time deadline, StoreCallback<Token> done) override;
  void Apply(TransitionParams params, absl::Time deadline,
             StoreCallback<AppliedTransition> done) override;
  void Get(std::string token_id, absl::Time deadline, StoreCallback<TokenAtRevision> done) override;
  void List(ListParams params, absl::Time deadline, StoreCallback<TokenPage> done) override;
  // ScanIdsScript, then one pipelined HGETALL per id (no script holds Redis for the page).
  void Scan(ScanParams params, absl::Time deadline, StoreCallback<TokenPage> done) override;
  void SplitIds(int parts, absl::Time deadline,
                StoreCallback<std::vector<std::string>> done) override;
  void ReadEvents(int64_t after_revision, int max_count, absl::Time deadline,
                  StoreCallback<std::vector<TokenEvent>> done) override;
  void ReadHistory(std::string token_id, int64_t before_revision, int limit, absl::Time deadline,
                   StoreCallback<TokenHistoryPage> done) override;
  void ReadHead(absl::Time deadline, StoreCallback<StoreHead> done) override;
  // Pipelines XREAD COUNT n BLOCK ms STREAMS <p>:events <after>-0 and the head script on
  // `blocking_client`.
  void WaitEvents(int64_t after_revision, int max_count, absl::Duration block, absl::Time deadline,
                  StoreCallback<EventBatch> done) override;

 private:
  std::string Key(absl::string_view suffix) const;
  // The keys and leading arguments every change script takes (redis_scripts.h).
  std::vector<std::string> ChangeKeys(absl::string_view token_id) const;
  // INTERNAL if no random epoch candidate can be made.
  absl::StatusOr<std::vector<std::string>> ChangeArgs(absl::string_view actor) const;
  absl::Time CallDeadline(absl::Time deadline) const;
  void ReadHeadOn(RedisClient& client, absl::Time deadline, StoreCallback<StoreHead> done) const;
  // Inside the callback of a change script: `done(result)` at once if the change failed or no
  // replica confirmation is asked for; else after WAIT (see the class comment), with `result`
  // or UNAVAILABLE / REPLICATION_UNCONFIRMED for the change at `revision`.
  template <typename T>
  void ConfirmReplicated(absl::StatusOr<T> result, int64_t revision, absl::Time deadline,
                         StoreCallback<T> done) const;

  RedisClient& client_;
  RedisClient& blocking_client_;
  const RedisTokenStoreOptions options_;
};

}  // namespace tokenstatus
