// TokenCache against real tokenstatus-server processes on a real Redis: changes reach many
// caches (Check, Verify, listeners); a killed server leaves the caches answering until
// max_staleness, then stale; a server restarted on the same address lets them resume without a
// snapshot; a replaced dataset (KIND_RESET) is swapped in with no lookup ever missing a token.

#include "client/token_cache.h"

#include <signal.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "tests/integration/integration_test_util.h"
#include "tests/integration/watch_test_util.h"

namespace tokenstatus::integration {
namespace {

using apitoken::v1::TokenEvent;
using grpc::health::v1::HealthCheckResponse;
using testing::RedisInstance;
using testing::ServerProcess;
using testing::SharedRedis;
using testing::UniqueKeyPrefix;

constexpr absl::Duration kTimeout = absl::Seconds(30);

// Starts a server on `redis` with `prefix` (on `listen_address` if set) and waits until it
// reports SERVING (its mirror has loaded).
absl::StatusOr<std::unique_ptr<ServerProcess>> StartServer(RedisInstance& redis,
                                                           const std::string& prefix,
                                                           const std::string& listen_address = "") {
  absl::StatusOr<std::unique_ptr<ServerProcess>> server = ServerProcess::Start(
      {.redis_address = redis.address(), .key_prefix = prefix, .listen_address = listen_address});
  if (!server.ok()) return server.status();
  HealthWatcher health((*server)->NewChannel());
  if (!health.WaitFor(HealthCheckResponse::SERVING, kTimeout)) {
    return absl::DeadlineExceededError(absl::StrCat("no SERVING: ", health.History()));
  }
  return server;
}

// A token imported through `api` with a known secret.
struct Imported {
  Token token;
  std::string secret;
};
Imported Import(const Api& api, const std::string& account, const std::string& id = "") {
  const std::string token_id = id.empty() ? NewTokenId() : id;
  const std::string secret = NewSecret(token_id);
  Rpc<CreateTokenResponse> created = api.Create(ImportRequest(token_id, secret, account));
  EXPECT_TRUE(created.ok()) << Describe(created.status);
  return {created.response.token(), secret};
}

// What a cache's listener was told. Thread-safe.
class Recorder {
 public:
  explicit Recorder(TokenCache& cache) {
    cache.OnChange([this](const CacheChange& change) {
      absl::MutexLock lock(&mu_);
      if (change.kind == CacheChange::Kind::kEvent) events_.push_back(*change.event);
      if (change.kind == CacheChange::Kind::kReset) ++resets_;
      if (change.kind == CacheChange::Kind::kFreshness) fresh_ = change.fresh;
    });
  }

  // Waits until `count` events have been told.
  bool WaitForEvents(int count, absl::Duration timeout = kTimeout) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, count]() {
      mu_.AssertReaderHeld();
      return static_cast<int>(events_.size()) >= count;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }
  // Waits until the latest freshness told is `fresh`.
  bool WaitForFreshness(bool fresh, absl::Duration timeout = kTimeout) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, fresh]() {
      mu_.AssertReaderHeld();
      return fresh_ == fresh;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
  }
  // Waits until `count` resets (snapshot swaps) have been told.
  bool WaitForResets(int count, absl::Duration timeout = kTimeout) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, count]() {
      mu_.AssertReaderHeld();
      return resets_ >= count;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }

  std::vector<TokenEvent> events() const {
    absl::MutexLock lock(&mu_);
    return events_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<TokenEvent> events_ ABSL_GUARDED_BY(mu_);
  int resets_ ABSL_GUARDED_BY(mu_) = 0;
  bool fresh_ ABSL_GUARDED_BY(mu_) = false;
};

// Every token of `cache` (deleted included), by id, following List's cursor.
std::map<std::string, Token> CachedView(const TokenCache& cache) {
  std::map<std::string, Token> view;
  ListParams params;
  params.show_deleted = true;
  params.page_size = 7;  // several pages
  do {
    const ListResult page = cache.List(params);
    for (const Token& token : page.page.tokens) view[token.id()] = token;
    params.after_id = page.page.next_after_id;
  } while (!params.after_id.empty());
  return view;
}

TEST(TokenCacheIntegrationTest, ChangesReachTenCachesInOrder) {
  constexpr int kCaches = 10;
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      StartServer(SharedRedis(), UniqueKeyPrefix());
  ASSERT_TRUE(server.ok()) << server.status();
  const Api api((*server)->NewChannel());
  const std::string account = NewAccountId();
  const Imported a = Import(api, account);
  const Imported b = Import(api, account);
  const Imported c = Import(api, account);

  std::vector<std::unique_ptr<TokenCache>> caches;
  std::vector<std::unique_ptr<Recorder>> recorders;
  for (int i = 0; i < kCaches; ++i) {
    caches.push_back(NewCache((*server)->address()));
    ASSERT_NE(caches.back(), nullptr);
    recorders.push_back(std::make_unique<Recorder>(*caches.back()));
  }
  for (auto& cache : caches) {
    ASSERT_TRUE(cache->WaitForRevision(c.token.revision(), kTimeout));
    const CheckResult check = cache->Check(a.token.id());
    EXPECT_EQ(check.state, Token::STATE_ACTIVE);
    EXPECT_TRUE(check.fresh);
    EXPECT_TRUE(check.allowed);
    const VerifyResult verified = cache->Verify(a.secret);
    EXPECT_EQ(verified.result, VerifyTokenResponse::RESULT_VALID)
        << "the server must fill secret_sha256 for include_secret_hash";
    EXPECT_EQ(verified.token_id, a.token.id());
    EXPECT_EQ(verified.account_id, account);
    EXPECT_TRUE(verified.allowed);
    EXPECT_EQ(cache->Verify(NewSecret(a.token.id())).result, VerifyTokenResponse::RESULT_NOT_FOUND);
  }

  Rpc<DisableTokenResponse> disabled = api.Disable(a.token.id());
  ASSERT_TRUE(disabled.ok()) << Describe(disabled.status);
  const int64_t disabled_at = disabled.response.token().revision();
  for (auto& cache : caches) {
    ASSERT_TRUE(cache->WaitForRevision(disabled_at, kTimeout));
    const CheckResult check = cache->Check(a.token.id());
    EXPECT_EQ(check.state, Token::STATE_DISABLED);
    EXPECT_EQ(check.token_revision, disabled_at);
    EXPECT_FALSE(check.allowed);
    const VerifyResult verified = cache->Verify(a.secret);
    EXPECT_EQ(verified.result, VerifyTokenResponse::RESULT_DISABLED);
    EXPECT_FALSE(verified.allowed);
  }

  Rpc<EnableTokenResponse> enabled = api.Enable(a.token.id());
  ASSERT_TRUE(enabled.ok()) << Describe(enabled.status);
  Rpc<DeleteTokenResponse> deleted = api.Delete(b.token.id());
  ASSERT_TRUE(deleted.ok()) << Describe(deleted.status);
  const std::vector<int64_t> expected = {disabled_at, enabled.response.token().revision(),
                                         deleted.response.token().revision()};
  absl::StatusOr<std::vector<Token>> listed = ListEverything(api, account, expected.back());
  ASSERT_TRUE(listed.ok()) << listed.status();
  for (int i = 0; i < kCaches; ++i) {
    SCOPED_TRACE(absl::StrCat("cache ", i));
    ASSERT_TRUE(recorders[i]->WaitForEvents(3));
    const std::vector<TokenEvent> events = recorders[i]->events();
    // Once each, in order, nothing else (the creations came with the snapshot).
    EXPECT_TRUE(RevisionsAre(events, expected));
    EXPECT_EQ(events[0].type(), TokenEvent::TYPE_DISABLED);
    EXPECT_EQ(events[1].type(), TokenEvent::TYPE_ENABLED);
    EXPECT_EQ(events[2].type(), TokenEvent::TYPE_DELETED);
    EXPECT_TRUE(NoSecretHashes(events));
    EXPECT_EQ(caches[i]->Check(a.token.id()).state, Token::STATE_ACTIVE);
    EXPECT_EQ(caches[i]->Verify(b.secret).result, VerifyTokenResponse::RESULT_DELETED);
    // The cache's List equals the server's, field for field, without hashes.
    EXPECT_TRUE(ViewEquals(CachedView(*caches[i]), *listed));
    const TokenCacheStats stats = caches[i]->stats();
    EXPECT_EQ(stats.snapshots_loaded, 1);
    EXPECT_EQ(stats.events_applied, 3);
    EXPECT_EQ(stats.resets, 0);
  }
}

TEST(TokenCacheIntegrationTest, KilledServerGoesStaleThenRestartedServerIsResumed) {
  const std::string prefix = UniqueKeyPrefix();
  absl::StatusOr<std::unique_ptr<ServerProcess>> server = StartServer(SharedRedis(), prefix);
  ASSERT_TRUE(server.ok()) << server.status();
  absl::StatusOr<std::unique_ptr<ServerProcess>> replica = StartServer(SharedRedis(), prefix);
  ASSERT_TRUE(replica.ok()) << replica.status();
  const std::string address = (*server)->address();
  const Api api((*server)->NewChannel());
  const Api replica_api((*replica)->NewChannel());
  const Imported token = Import(api, NewAccountId());

  TokenCacheOptions options;
  options.max_staleness = absl::Seconds(1);
  options.initial_backoff = absl::Milliseconds(50);
  options.max_backoff = absl::Milliseconds(200);
  std::vector<std::unique_ptr<TokenCache>> caches;
  std::vector<std::unique_ptr<Recorder>> recorders;
  for (int i = 0; i < 3; ++i) {
    caches.push_back(NewCache(address, options));
    ASSERT_NE(caches.back(), nullptr);
    recorders.push_back(std::make_unique<Recorder>(*caches.back()));
    ASSERT_TRUE(caches.back()->WaitForRevision(token.token.revision(), kTimeout));
  }
  std::vector<TokenCacheStats> before;
  for (auto& cache : caches) before.push_back(cache->stats());

  (*server)->Kill();
  for (size_t i = 0; i < caches.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("cache ", i));
    // The last known state, then, max_staleness after the last message, stale and refused (fail
    // closed). (The exact timing is unit-tested with a fake stream.)
    EXPECT_EQ(caches[i]->Check(token.token.id()).state, Token::STATE_ACTIVE);
    ASSERT_TRUE(recorders[i]->WaitForFreshness(false));
    const CheckResult check = caches[i]->Check(token.token.id());
    EXPECT_EQ(check.state, Token::STATE_ACTIVE);
    EXPECT_FALSE(check.fresh);
    EXPECT_FALSE(check.allowed);
    EXPECT_FALSE(caches[i]->Verify(token.secret).allowed);
  }

  // A change while the caches are disconnected, made through the other replica.
  Rpc<DisableTokenResponse> disabled = replica_api.Disable(token.token.id());
  ASSERT_TRUE(disabled.ok()) << Describe(disabled.status);
  const int64_t disabled_at = disabled.response.token().revision();

  absl::StatusOr<std::unique_ptr<ServerProcess>> restarted =
      StartServer(SharedRedis(), prefix, address);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  for (size_t i = 0; i < caches.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("cache ", i));
    ASSERT_TRUE(caches[i]->WaitForRevision(disabled_at, kTimeout));
    ASSERT_TRUE(recorders[i]->WaitForFreshness(true));
    const CheckResult check = caches[i]->Check(token.token.id());
    EXPECT_EQ(check.state, Token::STATE_DISABLED);
    EXPECT_TRUE(check.fresh);
    // Resumed from its revision: the change came as an event, with no new snapshot.
    const TokenCacheStats stats = caches[i]->stats();
    EXPECT_EQ(stats.snapshots_loaded, before[i].snapshots_loaded);
    EXPECT_GT(stats.resumes, before[i].resumes);
    EXPECT_EQ(stats.resets, 0);
    EXPECT_GT(stats.streams_opened, before[i].streams_opened);
    const std::vector<TokenEvent> events = recorders[i]->events();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].token().revision(), disabled_at);
  }
}

// A cache whose server is gone waits (wait-for-ready) and can still be destroyed at once.
TEST(TokenCacheIntegrationTest, CacheOfAnUnreachableServerIsDestroyedPromptly) {
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      StartServer(SharedRedis(), UniqueKeyPrefix());
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address = (*server)->address();
  (*server)->Kill();
  std::unique_ptr<TokenCache> cache = NewCache(address);
  ASSERT_NE(cache, nullptr);
  EXPECT_FALSE(cache->WaitForRevision(0, absl::Milliseconds(300)));
  EXPECT_EQ(cache->Check(NewTokenId()).state, Token::STATE_UNSPECIFIED);
  EXPECT_FALSE(cache->fresh());
  const absl::Time start = absl::Now();
  cache.reset();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST(TokenCacheIntegrationTest, ReplacedDatasetIsSwappedInWithoutAnEmptyView) {
  // Its own Redis: the test flushes it.
  absl::StatusOr<std::unique_ptr<RedisInstance>> redis = RedisInstance::Start();
  ASSERT_TRUE(redis.ok()) << redis.status();
  const std::string prefix = UniqueKeyPrefix();
  absl::StatusOr<std::unique_ptr<ServerProcess>> server = StartServer(**redis, prefix);
  ASSERT_TRUE(server.ok()) << server.status();
  absl::StatusOr<std::unique_ptr<ServerProcess>> writer = StartServer(**redis, prefix);
  ASSERT_TRUE(writer.ok()) << writer.status();
  const Api api((*server)->NewChannel());
  const Api writer_api((*writer)->NewChannel());
  const std::string account = NewAccountId();
  const std::string kept_id = NewTokenId();
  const Imported kept = Import(api, account, kept_id);  // in both datasets
  const Imported old_only = Import(api, account);
  for (int i = 0; i < 20; ++i) Import(api, account);

  std::vector<std::unique_ptr<TokenCache>> caches;
  std::vector<std::unique_ptr<Recorder>> recorders;
  for (int i = 0; i < 3; ++i) {
    caches.push_back(NewCache((*server)->address()));
    ASSERT_NE(caches.back(), nullptr);
    recorders.push_back(std::make_unique<Recorder>(*caches.back()));
    ASSERT_TRUE(caches.back()->WaitForRevision(1, kTimeout));
    ASSERT_TRUE(recorders.back()->WaitForResets(1));
  }
  const std::string old_epoch = caches[0]->epoch();

  // Readers check continuously that the kept token is always known to every cache.
  std::atomic<bool> stop{false};
  std::atomic<int64_t> lookups{0};
  std::atomic<int64_t> misses{0};
  std::vector<std::thread> readers;
  for (auto& cache : caches) {
    readers.emplace_back([&, cache = cache.get()] {
      while (!stop.load()) {
        if (cache->Check(kept_id).state == Token::STATE_UNSPECIFIED) misses.fetch_add(1);
        lookups.fetch_add(1);
      }
    });
  }

  // The served dataset is replaced at once: the caches' server is paused (its mirror cannot
  // see the empty store in between), Redis is flushed, the new dataset is written through the
  // other replica, then the server resumes, reloads its mirror and sends KIND_RESET.
  ASSERT_EQ(::kill((*server)->pid(), SIGSTOP), 0);
  ASSERT_TRUE((*redis)->Command({"FLUSHALL"}).ok());
  const Imported kept_again = Import(writer_api, account, kept_id);  // another secret
  Rpc<DisableTokenResponse> disabled = writer_api.Disable(kept_id);
  ASSERT_TRUE(disabled.ok()) << Describe(disabled.status);
  const Imported new_only = Import(writer_api, account);
  ASSERT_EQ(::kill((*server)->pid(), SIGCONT), 0);

  for (size_t i = 0; i < caches.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("cache ", i));
    ASSERT_TRUE(recorders[i]->WaitForResets(2));
    ASSERT_TRUE(caches[i]->WaitForRevision(new_only.token.revision(), kTimeout));
    EXPECT_NE(caches[i]->epoch(), old_epoch);
    const CheckResult check = caches[i]->Check(kept_id);
    EXPECT_EQ(check.state, Token::STATE_DISABLED);
    EXPECT_EQ(check.token_revision, disabled.response.token().revision());
    EXPECT_EQ(caches[i]->Check(old_only.token.id()).state, Token::STATE_UNSPECIFIED);
    EXPECT_EQ(caches[i]->Check(new_only.token.id()).state, Token::STATE_ACTIVE);
    EXPECT_EQ(caches[i]->Verify(kept.secret).result, VerifyTokenResponse::RESULT_NOT_FOUND);
    EXPECT_EQ(caches[i]->Verify(kept_again.secret).result, VerifyTokenResponse::RESULT_DISABLED);
    const TokenCacheStats stats = caches[i]->stats();
    EXPECT_GE(stats.resets, 1);
    EXPECT_EQ(stats.snapshots_loaded, 2);
  }
  stop.store(true);
  for (std::thread& reader : readers) reader.join();
  EXPECT_EQ(misses.load(), 0) << "of " << lookups.load() << " lookups";
  EXPECT_GT(lookups.load(), 0);
}

}  // namespace
}  // namespace tokenstatus::integration
