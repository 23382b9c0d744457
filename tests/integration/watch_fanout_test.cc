// WatchTokens fan-out: a watcher that stops reading is ended with RESOURCE_EXHAUSTED (and can
// resume without a gap) while a hundred others keep receiving every change and the server's
// memory stays bounded; a thousand concurrent watchers all receive a disable; the server-wide and
// per-connection watcher limits answer RESOURCE_EXHAUSTED.

#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/integration/integration_test_util.h"
#include "tests/integration/watch_test_util.h"
#include "tests/testing/sanitizers.h"

namespace tokenstatus::integration {
namespace {

using grpc::StatusCode;
using testing::ServerProcess;
using testing::SharedRedis;
using testing::UniqueKeyPrefix;
using Replicas = std::vector<std::unique_ptr<ServerProcess>>;

// `count` stubs on `count` connections to `server`.
std::vector<std::unique_ptr<TokenService::Stub>> Stubs(const ServerProcess& server, int count) {
  std::vector<std::unique_ptr<TokenService::Stub>> stubs;
  for (int i = 0; i < count; ++i) {
    stubs.push_back(TokenService::NewStub(NewDedicatedChannel(server.address())));
  }
  return stubs;
}

TEST(WatchFanoutTest, SlowWatcherIsEndedWhileAHundredOthersKeepReceiving) {
  constexpr int kQueueSize = 64;
  constexpr int kOthers = 100;
  constexpr int kChannels = 4;
  constexpr int kTokens = 4;
  constexpr int kChangesPerToken = 150;
  // A sanity bound on the server's growth while 101 streams carry the changes (~3 MiB measured;
  // gRPC's and the allocator's own caches vary). What bounds the slow watcher's memory is its
  // queue, which the cut-off below proves.
  constexpr int64_t kMaxGrowthKiB = 24 * 1024;
  absl::StatusOr<Replicas> replicas = StartReplicas(
      SharedRedis(), UniqueKeyPrefix(), 1, {absl::StrCat("--watch_queue_size=", kQueueSize)});
  ASSERT_TRUE(replicas.ok()) << replicas.status();
  ServerProcess& server = *(*replicas)[0];
  const Api api(server.NewChannel());
  const std::string account = NewAccountId();
  // Large events: a 2,000-character description and a 1,000-character reason in every one.
  const std::string description(2000, 'd');
  const std::string reason(1000, 'r');
  std::vector<Token> tokens;
  for (int i = 0; i < kTokens; ++i) {
    absl::StatusOr<Token> token = NewToken(api, account, description);
    ASSERT_TRUE(token.ok()) << token.status();
    tokens.push_back(*token);
  }
  // The watchers' snapshots hold the creations; their events are the flips.
  ASSERT_TRUE(MirrorReached(server, tokens.back().revision()));

  const std::unique_ptr<TokenService::Stub> narrow =
      TokenService::NewStub(NewNarrowChannel(server.address()));
  auto slow = std::make_unique<Watcher>(*narrow, FromNow(), /*paused=*/true);
  const std::vector<std::unique_ptr<TokenService::Stub>> stubs = Stubs(server, kChannels);
  std::vector<std::unique_ptr<Watcher>> others;
  for (int i = 0; i < kOthers; ++i) {
    others.push_back(std::make_unique<Watcher>(*stubs[i % kChannels], FromNow()));
  }
  for (const auto& watcher : others) ASSERT_TRUE(watcher->WaitForSynced()) << watcher->Summary();
  absl::StatusOr<int64_t> rss_before = ResidentKiB(server.pid());
  ASSERT_TRUE(rss_before.ok()) << rss_before.status();

  ChangeLog log;
  std::vector<std::thread> writers;
  for (int t = 0; t < kTokens; ++t) {
    writers.emplace_back([&, t] {
      const Api writer_api(NewDedicatedChannel(server.address()));
      Token token = tokens[t];
      for (int i = 0; i < kChangesPerToken; ++i) {
        absl::StatusOr<Token> flipped = Flip(writer_api, token, reason);
        ASSERT_TRUE(flipped.ok()) << flipped.status();
        token = *flipped;
        log.Add(token);
      }
    });
  }
  for (std::thread& writer : writers) writer.join();
  const int64_t last = log.LastRevision();
  const std::vector<int64_t> all = log.Revisions();
  ASSERT_EQ(all.size(), static_cast<size_t>(kTokens * kChangesPerToken));

  for (int i = 0; i < kOthers; ++i) {
    SCOPED_TRACE(absl::StrCat("watcher ", i, ": ", others[i]->Summary()));
    ASSERT_TRUE(others[i]->WaitForRevision(last));
    EXPECT_TRUE(RevisionsAre(others[i]->events(), all));
  }
  absl::StatusOr<int64_t> rss_after = ResidentKiB(server.pid());
  ASSERT_TRUE(rss_after.ok()) << rss_after.status();
  if (!testing::kBuiltWithAddressSanitizer) {
    EXPECT_LT(*rss_after - *rss_before, kMaxGrowthKiB)
        << "server RSS " << *rss_before << " KiB before the changes, " << *rss_after << " after";
  }

  // The slow watcher, once it reads again, finds what fitted in its window and its queue, and
  // then the end of its stream.
  slow->Resume();
  std::optional<grpc::Status> end = slow->WaitForEnd();
  ASSERT_TRUE(end.has_value()) << slow->Summary();
  // The message says where to resume: after the last revision the watcher received.
  EXPECT_TRUE(IsRpcError(*end, StatusCode::RESOURCE_EXHAUSTED, "WATCHER_FELL_BEHIND"));
  EXPECT_TRUE(
      absl::StrContains(end->error_message(), absl::StrCat("since_revision=", slow->revision())))
      << Describe(*end);
  std::vector<TokenEvent> events = slow->events();
  ASSERT_LT(events.size(), all.size()) << "the slow watcher was not cut off: " << slow->Summary();
  EXPECT_TRUE(RevisionsAre(
      events, std::vector<int64_t>(all.begin(), all.begin() + static_cast<long>(events.size()))))
      << "what the slow watcher got is a gapless prefix: " << slow->Summary();
  std::cerr << "slow watcher: " << slow->Summary() << "; server RSS " << *rss_before << " KiB → "
            << *rss_after << " KiB over " << all.size() << " changes\n";
  // It resumes from its last revision and gets the rest, without a gap.
  Watcher resumed(*narrow, ResumeAfter(slow->revision(), slow->epoch()));
  ASSERT_TRUE(resumed.WaitForRevision(last)) << resumed.Summary();
  const std::vector<TokenEvent> rest = resumed.events();
  events.insert(events.end(), rest.begin(), rest.end());
  EXPECT_TRUE(RevisionsAre(events, all)) << resumed.Summary();
}

TEST(WatchFanoutTest, AThousandWatchersReceiveADisable) {
  constexpr int kWatchers = 1000;
  constexpr int kChannels = 10;
  absl::StatusOr<Replicas> replicas = StartReplicas(SharedRedis(), UniqueKeyPrefix(), 1);
  ASSERT_TRUE(replicas.ok()) << replicas.status();
  ServerProcess& server = *(*replicas)[0];
  const Api api(server.NewChannel());
  absl::StatusOr<Token> token = NewToken(api, NewAccountId());
  ASSERT_TRUE(token.ok()) << token.status();
  ASSERT_TRUE(MirrorReached(server, token->revision()));

  const std::vector<std::unique_ptr<TokenService::Stub>> stubs = Stubs(server, kChannels);
  std::vector<std::unique_ptr<Watcher>> watchers;
  for (int i = 0; i < kWatchers; ++i) {
    // Progress at the server's default (5 s): only the disable should arrive.
    watchers.push_back(
        std::make_unique<Watcher>(*stubs[i % kChannels], FromNow("", absl::ZeroDuration())));
  }
  for (const auto& watcher : watchers) ASSERT_TRUE(watcher->WaitForSynced()) << watcher->Summary();

  absl::StatusOr<Token> disabled = Flip(api, *token);
  ASSERT_TRUE(disabled.ok()) << disabled.status();
  ASSERT_EQ(disabled->state(), Token::STATE_DISABLED);
  const absl::Time acknowledged = absl::Now();
  for (int i = 0; i < kWatchers; ++i) {
    SCOPED_TRACE(absl::StrCat("watcher ", i, ": ", watchers[i]->Summary()));
    ASSERT_TRUE(watchers[i]->WaitForRevision(disabled->revision()));
    const std::vector<TokenEvent> events = watchers[i]->events();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].type(), TokenEvent::TYPE_DISABLED);
    EXPECT_EQ(events[0].token().id(), token->id());
    EXPECT_EQ(events[0].token().state(), Token::STATE_DISABLED);
    EXPECT_EQ(events[0].token().revision(), disabled->revision());
  }
  std::cerr << "the disable reached all " << kWatchers << " watchers within "
            << absl::FormatDuration(absl::Now() - acknowledged) << " of its acknowledgement\n";
}

TEST(WatchFanoutTest, WatcherLimitsAreResourceExhausted) {
  constexpr int kMaxWatchers = 6;
  constexpr int kMaxPerConnection = 4;
  absl::StatusOr<Replicas> replicas =
      StartReplicas(SharedRedis(), UniqueKeyPrefix(), 1,
                    {absl::StrCat("--max_watchers=", kMaxWatchers),
                     absl::StrCat("--max_watchers_per_connection=", kMaxPerConnection)});
  ASSERT_TRUE(replicas.ok()) << replicas.status();
  const std::vector<std::unique_ptr<TokenService::Stub>> stubs = Stubs(*(*replicas)[0], 2);
  std::vector<std::unique_ptr<Watcher>> admitted;
  for (int i = 0; i < kMaxPerConnection; ++i) {
    admitted.push_back(std::make_unique<Watcher>(*stubs[0], FromNow()));
  }
  for (const auto& watcher : admitted) ASSERT_TRUE(watcher->WaitForSynced()) << watcher->Summary();

  Watcher over_connection(*stubs[0], FromNow());
  std::optional<grpc::Status> end = over_connection.WaitForEnd();
  ASSERT_TRUE(end.has_value()) << over_connection.Summary();
  EXPECT_EQ(end->error_code(), StatusCode::RESOURCE_EXHAUSTED) << Describe(*end);

  // Another connection may still open watchers, up to the server-wide limit.
  for (int i = kMaxPerConnection; i < kMaxWatchers; ++i) {
    admitted.push_back(std::make_unique<Watcher>(*stubs[1], FromNow()));
    ASSERT_TRUE(admitted.back()->WaitForSynced()) << admitted.back()->Summary();
  }
  Watcher over_server(*stubs[1], FromNow());
  end = over_server.WaitForEnd();
  ASSERT_TRUE(end.has_value()) << over_server.Summary();
  EXPECT_EQ(end->error_code(), StatusCode::RESOURCE_EXHAUSTED) << Describe(*end);
  for (const auto& watcher : admitted) EXPECT_FALSE(watcher->ended()) << watcher->Summary();
}

}  // namespace
}  // namespace tokenstatus::integration
