// High availability on Redis replication and Sentinel, with real processes on loopback: a
// primary, replicas, three redis-sentinel processes with short timings, two tokenstatus-server
// replicas configured through the sentinels, writers, watchers and TokenCaches.
//   - The primary is SIGKILLed under steady writes with --min_replicas_acked=1: every
//     acknowledged change is on the promoted replica with its state and revision, writes resume
//     by themselves (the outage is printed), a restarted old primary takes no write, every
//     watcher is gap-free and duplicate-free unless RESET, and every cache ends equal to the store.
//   - Divergence with --min_replicas_acked=0: the promoted replica lacks changes that watchers
//     and caches saw; new changes go past those revisions; every one of them is RESET and ends
//     equal to the store, and the servers' mirrors reload.
//   - A primary restarted in place from its AOF (no failover) loses nothing and resets no one.

#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/token_cache.h"
#include "core/validation.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "server/store/token_record.h"
#include "tests/integration/integration_test_util.h"
#include "tests/integration/watch_test_util.h"
#include "tests/testing/redis_instance.h"
#include "tests/testing/sentinel_instance.h"

namespace tokenstatus::integration {
namespace {

using grpc::StatusCode;
using grpc::health::v1::HealthCheckResponse;
using testing::RedisInstance;
using testing::SentinelInstance;
using testing::ServerProcess;
using testing::UniqueKeyPrefix;

constexpr absl::Duration kSetupTimeout = absl::Seconds(20);
constexpr absl::Duration kFailoverTimeout = absl::Seconds(20);
constexpr absl::Duration kPoll = absl::Milliseconds(50);

// Polls `condition` every kPoll until it holds (true) or `timeout` passes (false). For states
// of Redis and Sentinel, which announce nothing a test could wait on.
template <typename Condition>
bool PollUntil(Condition condition, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(kPoll);
  }
  return true;
}

// A primary, `replicas` replicas and three sentinels (quorum 2) that know each other.
class SentinelCluster {
 public:
  static absl::StatusOr<std::unique_ptr<SentinelCluster>> Start(int replicas) {
    auto cluster = std::unique_ptr<SentinelCluster>(new SentinelCluster());
    absl::StatusOr<std::unique_ptr<RedisInstance>> primary = RedisInstance::Start();
    if (!primary.ok()) return primary.status();
    cluster->redis_.push_back(*std::move(primary));
    const std::string primary_address = cluster->redis_[0]->address();
    for (int i = 0; i < replicas; ++i) {
      absl::StatusOr<std::unique_ptr<RedisInstance>> replica =
          RedisInstance::Start({.replica_of = primary_address});
      if (!replica.ok()) return replica.status();
      cluster->redis_.push_back(*std::move(replica));
    }
    for (int i = 0; i < 3; ++i) {
      absl::StatusOr<std::unique_ptr<SentinelInstance>> sentinel =
          SentinelInstance::Start(primary_address);
      if (!sentinel.ok()) return sentinel.status();
      cluster->sentinels_.push_back(*std::move(sentinel));
    }
    // A failover needs sentinels that know each other (hello messages, every 2 s) and the
    // replicas (the primary's INFO).
    const bool known = PollUntil(
        [&] {
          for (const auto& sentinel : cluster->sentinels_) {
            absl::StatusOr<int> others = sentinel->KnownSentinels();
            absl::StatusOr<int> known_replicas = sentinel->KnownReplicas();
            if (!others.ok() || *others != 2 || !known_replicas.ok() ||
                *known_replicas != replicas) {
              return false;
            }
          }
          return true;
        },
        kSetupTimeout);
    if (!known) return absl::DeadlineExceededError("the sentinels did not discover each other");
    return cluster;
  }

  // The server flags that follow the primary through the sentinels.
  std::vector<std::string> ServerFlags() const {
    std::vector<std::string> addresses;
    for (const auto& sentinel : sentinels_) addresses.push_back(sentinel->address());
    return {absl::StrCat("--redis_sentinels=", absl::StrJoin(addresses, ",")),
            absl::StrCat("--redis_master_name=", sentinels_[0]->options().master_name)};
  }

  // The Redis at `address`; nullptr if none of the cluster's.
  RedisInstance* Find(const std::string& address) const {
    for (const auto& redis : redis_) {
      if (redis->address() == address) return redis.get();
    }
    return nullptr;
  }
  // The last lines of every Redis's and sentinel's log, for a failed test's output: what
  // Sentinel decided, and when, is in no other place.
  std::string LogTails() const {
    constexpr size_t kLines = 40;
    std::string tails;
    for (const auto& redis : redis_) {
      absl::StrAppend(&tails, "--- redis ", redis->address(), "\n", redis->LogTail(kLines), "\n");
    }
    for (const auto& sentinel : sentinels_) {
      absl::StrAppend(&tails, "--- sentinel ", sentinel->address(), "\n", sentinel->LogTail(kLines),
                      "\n");
    }
    return tails;
  }
  RedisInstance& initial_primary() const { return *redis_[0]; }
  RedisInstance& redis(int i) const { return *redis_[i]; }

  // Waits until every sentinel names a primary other than `old` and that primary says it is
  // one (ROLE master); returns it (nullptr after kFailoverTimeout).
  RedisInstance* AwaitNewPrimary(const RedisInstance& old) const { return AwaitPrimary(&old); }
  // Waits until every sentinel names the same primary and it says it is one; returns it
  // (nullptr after kFailoverTimeout). Sentinel may fail over again at any time (a replica it
  // judged down, a primary slow to answer): a test that needs the primary asks for it anew.
  RedisInstance* CurrentPrimary() const { return AwaitPrimary(nullptr); }

 private:
  SentinelCluster() = default;

  // The primary every sentinel names (not `old`, if given), once it says it is one.
  RedisInstance* AwaitPrimary(const RedisInstance* old) const {
    RedisInstance* primary = nullptr;
    PollUntil(
        [&] {
          primary = nullptr;
          std::string named;
          for (const auto& sentinel : sentinels_) {
            absl::StatusOr<std::string> address = sentinel->PrimaryAddress();
            if (!address.ok() || (old != nullptr && *address == old->address())) return false;
            if (!named.empty() && *address != named) return false;
            named = *address;
          }
          RedisInstance* found = Find(named);
          if (found == nullptr) return false;
          absl::StatusOr<std::vector<std::string>> role = found->Command({"ROLE"});
          if (!role.ok() || role->empty() || role->front() != "master") return false;
          primary = found;
          return true;
        },
        kFailoverTimeout);
    return primary;
  }

  std::vector<std::unique_ptr<RedisInstance>> redis_;  // [0]: the first primary
  std::vector<std::unique_ptr<SentinelInstance>> sentinels_;
};

// Prints the cluster's log tails when the test has failed by the time it goes out of scope.
class LogsOnFailure {
 public:
  explicit LogsOnFailure(const SentinelCluster& cluster) : cluster_(cluster) {}
  ~LogsOnFailure() {
    if (::testing::Test::HasFailure()) std::printf("%s", cluster_.LogTails().c_str());
  }

 private:
  const SentinelCluster& cluster_;
};

// Starts `count` servers following `cluster` with `extra_flags`; returns once each is SERVING.
absl::StatusOr<std::vector<std::unique_ptr<ServerProcess>>> StartServers(
    const SentinelCluster& cluster, const std::string& prefix, int count,
    const std::vector<std::string>& extra_flags) {
  std::vector<std::string> flags = cluster.ServerFlags();
  flags.insert(flags.end(), extra_flags.begin(), extra_flags.end());
  std::vector<std::unique_ptr<ServerProcess>> servers;
  for (int i = 0; i < count; ++i) {
    absl::StatusOr<std::unique_ptr<ServerProcess>> server =
        ServerProcess::Start({.key_prefix = prefix, .extra_flags = flags});
    if (!server.ok()) return server.status();
    HealthWatcher health((*server)->NewChannel());
    if (!health.WaitFor(HealthCheckResponse::SERVING, kSetupTimeout)) {
      return absl::DeadlineExceededError(absl::StrCat("no SERVING: ", health.History()));
    }
    servers.push_back(*std::move(server));
  }
  return servers;
}

// One acknowledged change.
struct Ack {
  std::string id;
  int64_t revision = 0;
  Token::State state = Token::STATE_UNSPECIFIED;
  absl::Time sent;  // when the change was sent
  absl::Time at;    // when the acknowledgement arrived
};

// Writer threads, each flipping its own tokens (ACTIVE <-> DISABLED) through one of the servers
// until stopped, recording every acknowledged change. An UNAVAILABLE answer (the store is
// failing over, or a change was not confirmed) is expected: the writer re-reads the token and
// goes on after a short backoff. Any other answer is recorded as unexpected. Thread-safe.
class Writers {
 public:
  Writers(const std::vector<std::string>& addresses, std::vector<std::vector<Token>> tokens) {
    for (size_t i = 0; i < tokens.size(); ++i) {
      threads_.emplace_back([this, address = addresses[i % addresses.size()],
                             mine = std::move(tokens[i])]() mutable { Run(address, mine); });
    }
  }
  ~Writers() { Stop(); }

  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      stopped_ = true;
    }
    for (std::thread& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }
  // Waits until `count` changes sent after `after` were acknowledged (true), or `timeout`
  // passed.
  bool WaitForAcksAfter(absl::Time after, int count, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return std::count_if(acks_.begin(), acks_.end(),
                           [after](const Ack& ack) { return ack.sent > after; }) >= count;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }
  std::vector<Ack> acks() const {
    absl::MutexLock lock(&mu_);
    return acks_;
  }
  std::vector<std::string> unexpected() const {
    absl::MutexLock lock(&mu_);
    return unexpected_;
  }
  int unavailable() const {
    absl::MutexLock lock(&mu_);
    return unavailable_;
  }

 private:
  void Run(const std::string& address, std::vector<Token>& tokens) {
    const Api api(NewDedicatedChannel(address), absl::Seconds(3));
    for (size_t i = 0;; ++i) {
      {
        absl::MutexLock lock(&mu_);
        if (stopped_) return;
      }
      Token& token = tokens[i % tokens.size()];
      const absl::Time sent = absl::Now();
      grpc::Status status;
      Token changed;
      if (token.state() == Token::STATE_ACTIVE) {
        Rpc<DisableTokenResponse> disabled = api.Disable(token.id());
        status = disabled.status;
        changed = disabled.response.token();
      } else {
        Rpc<EnableTokenResponse> enabled = api.Enable(token.id());
        status = enabled.status;
        changed = enabled.response.token();
      }
      if (status.ok()) {
        token = changed;
        absl::MutexLock lock(&mu_);
        acks_.push_back({token.id(), token.revision(), token.state(), sent, absl::Now()});
        continue;
      }
      const bool ambiguous = status.error_code() == StatusCode::UNAVAILABLE;
      // After an ambiguous change the token may be in either state: a flip may then be refused.
      const bool refused = status.error_code() == StatusCode::FAILED_PRECONDITION;
      {
        absl::MutexLock lock(&mu_);
        if (ambiguous) {
          ++unavailable_;
        } else if (!refused) {
          unexpected_.push_back(Describe(status));
        }
      }
      if (ambiguous) absl::SleepFor(absl::Milliseconds(20));  // backoff, as a client would
      Rpc<GetTokenResponse> current = api.Get(token.id());
      if (current.ok()) token = current.response.token();
    }
  }

  mutable absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Ack> acks_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> unexpected_ ABSL_GUARDED_BY(mu_);
  int unavailable_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::thread> threads_;  // last: they use every member above
};

// The changes in the event stream of `redis` under `prefix`, by revision: {token id, state}.
absl::StatusOr<std::map<int64_t, std::pair<std::string, Token::State>>> StoredChanges(
    RedisInstance& redis, const std::string& prefix) {
  absl::StatusOr<testing::RedisReply> entries =
      redis.CommandReply({"XRANGE", absl::StrCat(prefix, ":events"), "-", "+"});
  if (!entries.ok()) return entries.status();
  std::map<int64_t, std::pair<std::string, Token::State>> changes;
  for (const testing::RedisReply& entry : entries->elements) {
    if (entry.elements.size() != 2) return absl::InternalError("malformed stream entry");
    std::vector<absl::string_view> fields;
    for (const testing::RedisReply& field : entry.elements[1].elements) fields.push_back(field.str);
    absl::StatusOr<TokenEvent> event = TokenEventFromFields(fields);
    if (!event.ok()) return event.status();
    changes[event->token().revision()] = {event->token().id(), event->token().state()};
  }
  return changes;
}

// Succeeds if every acknowledged change of `acks` is in `stored` with its token and state.
::testing::AssertionResult EveryAckStored(
    const std::vector<Ack>& acks,
    const std::map<int64_t, std::pair<std::string, Token::State>>& stored) {
  int missing = 0;
  std::string first;
  for (const Ack& ack : acks) {
    auto it = stored.find(ack.revision);
    if (it != stored.end() && it->second.first == ack.id && it->second.second == ack.state) {
      continue;
    }
    if (missing++ == 0) {
      first = absl::StrCat(ack.id, " at revision ", ack.revision, " (",
                           it == stored.end() ? "no such revision" : "another change", ")");
    }
  }
  if (missing == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << missing << " of " << acks.size() << " acknowledged changes are lost, first: " << first;
}

// Succeeds if a watcher that was never RESET saw every revision after its SYNCED one exactly
// once, in order; a RESET watcher only has to end equal to the store (checked elsewhere).
::testing::AssertionResult GapFreeOrReset(const Watcher& watcher) {
  if (watcher.CountOf(WatchTokensResponse::KIND_RESET) > 0) return ::testing::AssertionSuccess();
  int64_t expected = -1;
  for (const WatchTokensResponse& message : watcher.messages()) {
    if (message.kind() == WatchTokensResponse::KIND_SYNCED) expected = message.revision() + 1;
    if (message.kind() != WatchTokensResponse::KIND_CHANGES) continue;
    for (const TokenEvent& event : message.events()) {
      if (event.token().revision() != expected) {
        return ::testing::AssertionFailure()
               << "revision " << event.token().revision() << " where " << expected
               << " was due, without a RESET: " << watcher.Summary();
      }
      ++expected;
    }
  }
  return ::testing::AssertionSuccess();
}

// Succeeds if `cache` holds exactly `listed`, each token at the same revision and state.
::testing::AssertionResult CacheEquals(const TokenCache& cache, const std::vector<Token>& listed) {
  ListParams params;
  params.page_size = kMaxPageSize;
  params.show_deleted = true;
  const size_t cached = cache.List(params).page.tokens.size();
  if (cached != listed.size()) {
    return ::testing::AssertionFailure()
           << "the cache holds " << cached << " tokens, the store " << listed.size();
  }
  for (const Token& token : listed) {
    GetResult got = cache.Get(token.id());
    if (!got.token.has_value() || got.token->revision() != token.revision() ||
        got.token->state() != token.state()) {
      return ::testing::AssertionFailure()
             << token.id() << ": the cache has "
             << (got.token.has_value() ? absl::StrCat("revision ", got.token->revision())
                                       : std::string("nothing"))
             << ", the store revision " << token.revision();
    }
  }
  return ::testing::AssertionSuccess();
}

// The store's revision counter on `redis`.
int64_t StoreRevision(RedisInstance& redis, const std::string& prefix) {
  absl::StatusOr<std::vector<std::string>> rev =
      redis.Command({"GET", absl::StrCat(prefix, ":rev")});
  int64_t revision = 0;
  if (!rev.ok() || rev->empty() || !absl::SimpleAtoi(rev->front(), &revision)) return -1;
  return revision;
}

// Everything a test watches the store through: per server, one unfiltered watcher and one cache.
struct Observers {
  std::vector<std::unique_ptr<TokenService::Stub>> stubs;
  std::vector<std::unique_ptr<Watcher>> watchers;
  std::vector<std::unique_ptr<TokenCache>> caches;

  explicit Observers(const std::vector<std::unique_ptr<ServerProcess>>& servers) {
    for (const auto& server : servers) {
      stubs.push_back(TokenService::NewStub(server->NewChannel()));
      watchers.push_back(std::make_unique<Watcher>(*stubs.back(), FromNow()));
      caches.push_back(NewCache(server->address()));
    }
  }
  ::testing::AssertionResult Synced(int64_t revision) const {
    for (const auto& watcher : watchers) {
      if (!watcher->WaitForRevision(revision)) {
        return ::testing::AssertionFailure() << "watcher: " << watcher->Summary();
      }
    }
    for (const auto& cache : caches) {
      if (cache == nullptr || !cache->WaitForRevision(revision, kWatchTimeout)) {
        return ::testing::AssertionFailure() << "a cache did not reach revision " << revision;
      }
    }
    return ::testing::AssertionSuccess();
  }
  // Every watcher and cache reaches `revision` and then equals `listed`.
  void ExpectEqualTo(const std::vector<Token>& listed, int64_t revision) const {
    ASSERT_TRUE(Synced(revision));
    for (const auto& watcher : watchers) {
      EXPECT_FALSE(watcher->ended()) << watcher->Summary();
      EXPECT_TRUE(ViewEquals(watcher->view(), listed)) << watcher->Summary();
    }
    for (const auto& cache : caches) EXPECT_TRUE(CacheEquals(*cache, listed));
  }
};

// `count` tokens of a new account, created through `api`.
std::vector<Token> CreateTokens(const Api& api, int count) {
  const std::string account = NewAccountId();
  std::vector<Token> tokens;
  for (int i = 0; i < count; ++i) {
    absl::StatusOr<Token> token = NewToken(api, account);
    EXPECT_TRUE(token.ok()) << token.status();
    if (token.ok()) tokens.push_back(*token);
  }
  return tokens;
}

TEST(SentinelFailoverTest, KilledPrimaryLosesNoAcknowledgedChangeAndWritesResume) {
  absl::StatusOr<std::unique_ptr<SentinelCluster>> cluster = SentinelCluster::Start(2);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  const LogsOnFailure logs(**cluster);
  const std::string prefix = UniqueKeyPrefix();
  absl::StatusOr<std::vector<std::unique_ptr<ServerProcess>>> servers =
      StartServers(**cluster, prefix, 2, {"--min_replicas_acked=1"});
  ASSERT_TRUE(servers.ok()) << servers.status();
  const Api api((*servers)[0]->NewChannel());
  std::vector<std::vector<Token>> tokens;
  for (int writer = 0; writer < 4; ++writer) tokens.push_back(CreateTokens(api, 3));
  ASSERT_FALSE(HasFailure());
  Observers observers(*servers);
  for (const auto& watcher : observers.watchers) ASSERT_TRUE(watcher->WaitForSynced());

  const std::vector<std::string> addresses = {(*servers)[0]->address(), (*servers)[1]->address()};
  Writers writers(addresses, tokens);
  ASSERT_TRUE(writers.WaitForAcksAfter(absl::InfinitePast(), 100, kFailoverTimeout));

  RedisInstance& old_primary = (*cluster)->initial_primary();
  const absl::Time killed = absl::Now();
  old_primary.Kill();
  // Writes resume by themselves once Sentinel has promoted a replica.
  ASSERT_TRUE(writers.WaitForAcksAfter(killed, 1, kFailoverTimeout));
  std::vector<Ack> acks = writers.acks();
  absl::Time resumed = absl::InfiniteFuture();
  for (const Ack& ack : acks) {
    if (ack.sent > killed) resumed = std::min(resumed, ack.at);
  }
  const absl::Duration outage = resumed - killed;
  std::printf(
      "FAILOVER_OUTAGE_SECONDS=%.2f (primary SIGKILLed -> first change sent after it "
      "acknowledged)\n",
      absl::ToDoubleSeconds(outage));
  EXPECT_LT(outage, absl::Seconds(10));
  RedisInstance* promoted = (*cluster)->AwaitNewPrimary(old_primary);
  ASSERT_NE(promoted, nullptr);

  // The old primary comes back on its own data, as a supervisor would restart it: a primary
  // again until Sentinel demotes it (seconds later). The servers' connections are cut meanwhile,
  // so they reconnect while it takes writes: following Sentinel, they never write to it (what
  // they wrote there would be missing from the primary below). Sentinel may also fail over
  // again meanwhile (it did, on a loaded machine: the other replica lagged, then was promoted);
  // every acknowledged change must survive that too, so the cut goes to whichever primary
  // Sentinel names, and the history is read from the last one.
  ASSERT_TRUE(writers.WaitForAcksAfter(resumed, 50, kFailoverTimeout));
  ASSERT_TRUE(old_primary.Restart().ok());
  ASSERT_TRUE(PollUntil(
      [&] {
        RedisInstance* primary = (*cluster)->CurrentPrimary();
        return primary != nullptr && primary->Command({"CLIENT", "KILL", "TYPE", "normal"}).ok();
      },
      kFailoverTimeout));
  ASSERT_TRUE(writers.WaitForAcksAfter(absl::Now(), 50, kFailoverTimeout));
  writers.Stop();
  EXPECT_TRUE(writers.unexpected().empty())
      << writers.unexpected().size() << " unexpected answers, first: " << writers.unexpected()[0];

  // Every acknowledged change is in the primary's history with its token and state.
  RedisInstance* primary = (*cluster)->CurrentPrimary();
  ASSERT_NE(primary, nullptr);
  acks = writers.acks();
  absl::StatusOr<std::map<int64_t, std::pair<std::string, Token::State>>> stored =
      StoredChanges(*primary, prefix);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_TRUE(EveryAckStored(acks, *stored));
  std::printf("acknowledged=%zu unavailable_answers=%d primary=%s (first promoted: %s)\n",
              acks.size(), writers.unavailable(), primary->address().c_str(),
              promoted->address().c_str());

  const int64_t head = StoreRevision(*primary, prefix);
  ASSERT_GT(head, 0);
  absl::StatusOr<std::vector<Token>> listed = ListEverything(api, "", head);
  ASSERT_TRUE(listed.ok()) << listed.status();
  observers.ExpectEqualTo(*listed, head);
  for (const auto& watcher : observers.watchers) EXPECT_TRUE(GapFreeOrReset(*watcher));
}

TEST(SentinelFailoverTest, PromotedReplicaThatLacksSeenChangesResetsEveryoneWhoSawThem) {
  absl::StatusOr<std::unique_ptr<SentinelCluster>> cluster = SentinelCluster::Start(1);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  const LogsOnFailure logs(**cluster);
  const std::string prefix = UniqueKeyPrefix();
  absl::StatusOr<std::vector<std::unique_ptr<ServerProcess>>> servers =
      StartServers(**cluster, prefix, 2, {"--min_replicas_acked=0"});
  ASSERT_TRUE(servers.ok()) << servers.status();
  const Api api((*servers)[0]->NewChannel());
  std::vector<Token> tokens = CreateTokens(api, 6);
  ASSERT_FALSE(HasFailure());
  Observers observers(*servers);
  RedisInstance& old_primary = (*cluster)->initial_primary();
  RedisInstance& replica = (*cluster)->redis(1);
  const int64_t kept = StoreRevision(old_primary, prefix);
  ASSERT_TRUE(observers.Synced(kept));
  ASSERT_TRUE(PollUntil([&] { return StoreRevision(replica, prefix) == kept; }, kSetupTimeout));

  // The replica misses the next changes (stopped, and dropped by the primary as after
  // repl-timeout: bytes already in its socket would reach it after SIGCONT); watchers and
  // caches see them.
  replica.Signal(SIGSTOP);
  ASSERT_TRUE(old_primary.Command({"CLIENT", "KILL", "TYPE", "replica"}).ok());
  for (Token& token : tokens) {
    absl::StatusOr<Token> flipped = Flip(api, token);
    ASSERT_TRUE(flipped.ok()) << flipped.status();
    token = *flipped;
  }
  const int64_t lost = tokens.back().revision();
  ASSERT_TRUE(observers.Synced(lost));

  old_primary.Kill();
  replica.Signal(SIGCONT);
  RedisInstance* promoted = (*cluster)->AwaitNewPrimary(old_primary);
  ASSERT_EQ(promoted, &replica);
  EXPECT_EQ(StoreRevision(replica, prefix), kept);

  // New changes go past the lost revision numbers.
  int64_t head = 0;
  for (int round = 0; round < 2; ++round) {
    for (Token& token : tokens) {
      Rpc<GetTokenResponse> current = api.Get(token.id());
      ASSERT_TRUE(PollUntil(
          [&] {
            current = api.Get(token.id());
            if (!current.ok()) return false;
            absl::StatusOr<Token> flipped = Flip(api, current.response.token());
            if (!flipped.ok()) return false;
            head = flipped->revision();
            return true;
          },
          kFailoverTimeout))
          << Describe(current.status);
    }
  }
  ASSERT_GT(head, lost);

  absl::StatusOr<std::vector<Token>> listed = ListEverything(api, "", head);
  ASSERT_TRUE(listed.ok()) << listed.status();
  observers.ExpectEqualTo(*listed, head);
  for (const auto& watcher : observers.watchers) {
    EXPECT_GE(watcher->CountOf(WatchTokensResponse::KIND_RESET), 1) << watcher->Summary();
  }
  for (const auto& cache : observers.caches) EXPECT_GE(cache->stats().resets, 1);
  for (const auto& server : *servers) {
    EXPECT_TRUE(server->WaitForLogLine("event=mirror_reload", kWatchTimeout));
  }
}

TEST(SentinelFailoverTest, PrimaryRestartedInPlaceFromItsAofLosesNothingAndResetsNoOne) {
  absl::StatusOr<std::unique_ptr<SentinelCluster>> cluster = SentinelCluster::Start(0);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  const LogsOnFailure logs(**cluster);
  const std::string prefix = UniqueKeyPrefix();
  absl::StatusOr<std::vector<std::unique_ptr<ServerProcess>>> servers =
      StartServers(**cluster, prefix, 2, {});
  ASSERT_TRUE(servers.ok()) << servers.status();
  const Api api((*servers)[0]->NewChannel());
  std::vector<std::vector<Token>> tokens;
  for (int writer = 0; writer < 2; ++writer) tokens.push_back(CreateTokens(api, 3));
  ASSERT_FALSE(HasFailure());
  Observers observers(*servers);
  for (const auto& watcher : observers.watchers) ASSERT_TRUE(watcher->WaitForSynced());

  Writers writers({(*servers)[0]->address(), (*servers)[1]->address()}, tokens);
  ASSERT_TRUE(writers.WaitForAcksAfter(absl::InfinitePast(), 50, kFailoverTimeout));
  RedisInstance& primary = (*cluster)->initial_primary();
  primary.Kill();
  ASSERT_TRUE(primary.Restart().ok());
  const absl::Time restarted = absl::Now();
  ASSERT_TRUE(writers.WaitForAcksAfter(restarted, 50, kFailoverTimeout));
  writers.Stop();
  EXPECT_TRUE(writers.unexpected().empty())
      << writers.unexpected().size() << " unexpected answers, first: " << writers.unexpected()[0];

  absl::StatusOr<std::map<int64_t, std::pair<std::string, Token::State>>> stored =
      StoredChanges(primary, prefix);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_TRUE(EveryAckStored(writers.acks(), *stored));
  const int64_t head = StoreRevision(primary, prefix);
  absl::StatusOr<std::vector<Token>> listed = ListEverything(api, "", head);
  ASSERT_TRUE(listed.ok()) << listed.status();
  observers.ExpectEqualTo(*listed, head);
  for (const auto& watcher : observers.watchers) {
    EXPECT_EQ(watcher->CountOf(WatchTokensResponse::KIND_RESET), 0) << watcher->Summary();
    EXPECT_TRUE(GapFreeOrReset(*watcher));
  }
  for (const auto& cache : observers.caches) EXPECT_EQ(cache->stats().resets, 0);
}

}  // namespace
}  // namespace tokenstatus::integration
