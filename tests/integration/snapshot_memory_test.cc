// WatchTokens snapshots within --snapshot_memory_budget: a server with 30,000 tokens and 120
// snapshot streams whose clients never read grows by about the budget, not by 120 serialized
// snapshots (~2.6 MB each); a stream beyond the budget waits its turn, which comes once the
// clients that never read have gone. (The refusal after --snapshot_max_wait: watch_hub_test.)

#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "server/redis/redis_client.h"
#include "server/store/redis_token_store.h"
#include "tests/integration/integration_test_util.h"
#include "tests/integration/watch_test_util.h"
#include "tests/testing/sanitizers.h"

namespace tokenstatus::integration {
namespace {

using grpc::StatusCode;
using testing::ServerProcess;
using testing::SharedRedis;
using testing::UniqueKeyPrefix;

// Creates `count` tokens (TKN-NNNN-NNNN, 100 accounts) under `key_prefix` through the store the
// server uses, pipelined (256 calls in flight): records, indexes and events exactly as the server
// writes them, faster than RPCs.
absl::Status FillStore(const std::string& redis_address, const std::string& key_prefix, int count) {
  RedisClientOptions client_options;
  client_options.address = redis_address;
  absl::StatusOr<std::unique_ptr<RedisClient>> client = RedisClient::Start(client_options);
  if (!client.ok()) return client.status();
  client_options.connections = 1;
  absl::StatusOr<std::unique_ptr<RedisClient>> blocking = RedisClient::Start(client_options);
  if (!blocking.ok()) return blocking.status();
  RedisTokenStoreOptions store_options;
  store_options.key_prefix = key_prefix;
  RedisTokenStore store(**client, **blocking, store_options);

  constexpr int kInFlight = 256;
  absl::Mutex mu;
  int outstanding = 0;  // guarded by mu
  int completed = 0;    // guarded by mu
  absl::Status first_error;
  absl::Notification all_done;
  for (int i = 0; i < count; ++i) {
    {
      absl::MutexLock lock(&mu);
      const auto has_room = [&outstanding] { return outstanding < kInFlight; };
      mu.Await(absl::Condition(&has_room));
      ++outstanding;
    }
    CreateTokenParams params;
    params.token_id = absl::StrFormat("TKN-%04d-%04d", i / 10000, i % 10000);
    params.account_id = absl::StrFormat("ACC-2000-%04d", i % 100);
    params.name = absl::StrCat("snapshot memory test token ", i);
    params.secret_sha256 = absl::StrFormat("%032d", i);
    params.actor = "snapshot-memory-test";
    store.Create(params, absl::Now() + absl::Seconds(30),
                 [&, count](absl::StatusOr<Token> created) {
                   absl::MutexLock lock(&mu);
                   --outstanding;
                   if (!created.ok() && first_error.ok()) first_error = created.status();
                   if (++completed == count) all_done.Notify();
                 });
  }
  if (count > 0) all_done.WaitForNotification();
  absl::MutexLock lock(&mu);
  return first_error;
}

// The server's RSS once it has stopped moving (two samples 300 ms apart within 512 KiB), at
// most after `timeout`.
absl::StatusOr<int64_t> SettledResidentKiB(int pid, absl::Duration timeout) {
  absl::StatusOr<int64_t> previous = ResidentKiB(pid);
  const absl::Time give_up = absl::Now() + timeout;
  while (previous.ok() && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(300));
    absl::StatusOr<int64_t> now = ResidentKiB(pid);
    if (!now.ok()) return now.status();
    if (std::abs(*now - *previous) < 512) return now;
    previous = now;
  }
  return previous;
}

TEST(SnapshotMemoryTest, StreamsThatNeverReadCostTheBudgetNotTheirSnapshots) {
  constexpr int kTokens = 30000;
  constexpr int kStreams = 120;
  constexpr int kConnections = 4;
  constexpr int64_t kBudgetBytes = 8 << 20;
  // What a stream costs beyond its share of the budget: gRPC's call state (~18.5 KiB for an idle
  // watcher, README "Performance") and its HTTP/2 stream; and what the allocator and gRPC cache.
  constexpr int64_t kPerStreamKiB = 64;
  constexpr int64_t kSlackKiB = 8 * 1024;
  constexpr int64_t kMaxGrowthKiB = kBudgetBytes / 1024 + kStreams * kPerStreamKiB + kSlackKiB;

  const std::string prefix = UniqueKeyPrefix();
  const absl::Time fill_start = absl::Now();
  ASSERT_TRUE(FillStore(SharedRedis().address(), prefix, kTokens).ok());
  const absl::Duration fill_time = absl::Now() - fill_start;
  // The budget binds, not the per-principal limit (every stream here is anonymous).
  absl::StatusOr<std::vector<std::unique_ptr<ServerProcess>>> replicas =
      StartReplicas(SharedRedis(), prefix, 1,
                    {absl::StrCat("--snapshot_memory_budget=", kBudgetBytes),
                     "--max_snapshots_per_principal=1000"});
  ASSERT_TRUE(replicas.ok()) << replicas.status();
  ServerProcess& server = *(*replicas)[0];
  const Api api(server.NewChannel());
  absl::StatusOr<std::vector<Token>> some = ListEverything(api, "ACC-2000-0000", kTokens);
  ASSERT_TRUE(some.ok()) << some.status();
  ASSERT_EQ(some->size(), static_cast<size_t>(kTokens / 100));
  std::vector<Token> flipped = *std::move(some);
  absl::StatusOr<int64_t> rss_before = SettledResidentKiB(server.pid(), absl::Seconds(3));
  ASSERT_TRUE(rss_before.ok()) << rss_before.status();

  // Each stream starts at a revision of its own (a change before each): no two share a capture.
  std::vector<std::unique_ptr<TokenService::Stub>> stubs;
  for (int i = 0; i < kConnections; ++i) {
    stubs.push_back(TokenService::NewStub(NewNarrowChannel(server.address())));
  }
  std::vector<std::unique_ptr<Watcher>> never_read;
  for (int i = 0; i < kStreams; ++i) {
    Token& token = flipped[static_cast<size_t>(i) % flipped.size()];
    absl::StatusOr<Token> changed = Flip(api, token);
    ASSERT_TRUE(changed.ok()) << changed.status();
    token = *changed;
    never_read.push_back(std::make_unique<Watcher>(*stubs[i % kConnections],
                                                   FromNow("", absl::ZeroDuration()),
                                                   /*paused=*/true));
  }
  absl::StatusOr<int64_t> rss_after = SettledResidentKiB(server.pid(), absl::Seconds(5));
  ASSERT_TRUE(rss_after.ok()) << rss_after.status();
  const int64_t growth = *rss_after - *rss_before;
  std::cerr << absl::StrFormat(
      "snapshot memory: %d tokens (filled in %s), %d streams that never read over %d "
      "connections, budget %d MiB: server RSS %d -> %d KiB, +%d KiB, %.1f KiB per stream\n",
      kTokens, absl::FormatDuration(fill_time), kStreams, kConnections, kBudgetBytes >> 20,
      *rss_before, *rss_after, growth, static_cast<double>(growth) / kStreams);
  if (!testing::kBuiltWithAddressSanitizer) {
    EXPECT_LT(growth, kMaxGrowthKiB) << "server RSS " << *rss_before << " KiB before the streams, "
                                     << *rss_after << " KiB after";
  }

  // The budget is spent: one more stream (a reader) waits, with nothing sent...
  Watcher late(*stubs[0], FromNow("", absl::ZeroDuration()));
  EXPECT_FALSE(late.WaitForSynced(absl::Seconds(1))) << late.Summary();
  EXPECT_EQ(late.messages().size(), 0u) << late.Summary();
  // ... until the clients that never read go: their shares are back, its turn comes.
  never_read.clear();
  ASSERT_TRUE(late.WaitForSynced()) << late.Summary();
  EXPECT_EQ(late.view().size(), static_cast<size_t>(kTokens)) << late.Summary();
}

}  // namespace
}  // namespace tokenstatus::integration
