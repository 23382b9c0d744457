// WatchTokens when a replica goes away or is not ready: watchers of a replica killed with
// SIGKILL resume on another replica without a gap; SIGTERM ends watch streams with UNAVAILABLE
// (so clients resume elsewhere) and the server exits 0; a replica reports NOT_SERVING until its
// mirror has loaded, and serves reads from it as soon as it reports SERVING.

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "tests/integration/integration_test_util.h"
#include "tests/integration/watch_test_util.h"

namespace tokenstatus::integration {
namespace {

using grpc::StatusCode;
using grpc::health::v1::HealthCheckResponse;
using testing::RedisInstance;
using testing::ServerProcess;
using testing::SharedRedis;
using testing::UniqueKeyPrefix;
using Replicas = std::vector<std::unique_ptr<ServerProcess>>;

constexpr absl::Duration kHealthTimeout = absl::Seconds(30);

// Flips tokens (round robin) through `api` on its own thread until stopped, logging every
// acknowledged change. Thread-safe.
class Flipper {
 public:
  Flipper(const std::string& address, std::vector<Token> tokens)
      : tokens_(std::move(tokens)), thread_([this, address] { Run(address); }) {}
  // Stops and joins.
  ~Flipper() { Stop(); }

  // Waits until `count` more changes than now have been acknowledged (or the writer failed).
  void WaitForMoreChanges(int count) {
    const int target = log_.size() + count;
    absl::MutexLock lock(&mu_);
    auto reached = [&]() { return log_.size() >= target || stopped_; };
    mu_.Await(absl::Condition(&reached));
  }
  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      stopped_ = true;
    }
    if (thread_.joinable()) thread_.join();
  }
  const ChangeLog& log() const { return log_; }

 private:
  void Run(const std::string& address) {
    const Api api(NewDedicatedChannel(address));
    for (size_t i = 0;; ++i) {
      {
        absl::MutexLock lock(&mu_);
        if (stopped_) return;
      }
      Token& token = tokens_[i % tokens_.size()];
      absl::StatusOr<Token> flipped = Flip(api, token);
      absl::MutexLock lock(&mu_);  // wakes WaitForMoreChanges
      if (!flipped.ok()) {
        ADD_FAILURE() << "flip of " << token.id() << ": " << flipped.status();
        stopped_ = true;
        return;
      }
      token = *flipped;
      log_.Add(token);
    }
  }

  std::vector<Token> tokens_;  // the writer thread's only
  ChangeLog log_;
  absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: it uses every member above
};

TEST(WatchFailoverTest, WatchersOfAKilledReplicaResumeOnAnotherWithoutGap) {
  absl::StatusOr<Replicas> replicas = StartReplicas(SharedRedis(), UniqueKeyPrefix(), 2);
  ASSERT_TRUE(replicas.ok()) << replicas.status();
  ServerProcess& doomed = *(*replicas)[0];
  ServerProcess& survivor = *(*replicas)[1];
  const Api api(survivor.NewChannel());
  const std::vector<std::string> accounts = {NewAccountId(), NewAccountId()};
  std::vector<Token> tokens;
  for (int i = 0; i < 6; ++i) {
    absl::StatusOr<Token> token = NewToken(api, accounts[i % 2]);
    ASSERT_TRUE(token.ok()) << token.status();
    tokens.push_back(*token);
  }
  // The watchers' snapshots hold the creations; their events are the flips.
  ASSERT_TRUE(MirrorReached(doomed, tokens.back().revision()));

  const std::unique_ptr<TokenService::Stub> doomed_stub =
      TokenService::NewStub(doomed.NewChannel());
  const std::unique_ptr<TokenService::Stub> survivor_stub =
      TokenService::NewStub(survivor.NewChannel());
  const std::vector<std::string> filters = {"", "", accounts[0], accounts[1]};
  std::vector<std::unique_ptr<Watcher>> before;
  for (const std::string& filter : filters) {
    before.push_back(std::make_unique<Watcher>(*doomed_stub, FromNow(filter)));
  }
  for (const auto& watcher : before) ASSERT_TRUE(watcher->WaitForSynced()) << watcher->Summary();

  // Changes keep coming through the survivor while the other replica dies.
  Flipper flipper(survivor.address(), tokens);
  flipper.WaitForMoreChanges(100);
  doomed.Kill();
  std::vector<std::unique_ptr<Watcher>> after;
  for (size_t i = 0; i < filters.size(); ++i) {
    std::optional<grpc::Status> end = before[i]->WaitForEnd();
    ASSERT_TRUE(end.has_value()) << before[i]->Summary();
    EXPECT_EQ(end->error_code(), StatusCode::UNAVAILABLE) << Describe(*end);
    after.push_back(std::make_unique<Watcher>(
        *survivor_stub, ResumeAfter(before[i]->revision(), before[i]->epoch(), filters[i])));
  }
  flipper.WaitForMoreChanges(100);
  flipper.Stop();
  const int64_t last = flipper.log().LastRevision();

  for (size_t i = 0; i < filters.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("watcher ", i, ", account filter \"", filters[i], "\"; before: ",
                              before[i]->Summary(), "; after: ", after[i]->Summary()));
    ASSERT_TRUE(after[i]->WaitForRevision(last));
    EXPECT_EQ(after[i]->CountOf(WatchTokensResponse::KIND_RESET), 0);
    EXPECT_EQ(after[i]->CountOf(WatchTokensResponse::KIND_SNAPSHOT), 0);
    std::vector<TokenEvent> events = before[i]->events();
    const std::vector<TokenEvent> resumed = after[i]->events();
    events.insert(events.end(), resumed.begin(), resumed.end());
    EXPECT_TRUE(RevisionsAre(events, flipper.log().Revisions(filters[i])));
  }
}

TEST(WatchFailoverTest, SigtermEndsWatchStreamsWithUnavailable) {
  absl::StatusOr<Replicas> replicas =
      StartReplicas(SharedRedis(), UniqueKeyPrefix(), 1, {"--shutdown_grace=1s"});
  ASSERT_TRUE(replicas.ok()) << replicas.status();
  ServerProcess& server = *(*replicas)[0];
  const Api api(server.NewChannel());
  const std::string account = NewAccountId();
  absl::StatusOr<Token> token = NewToken(api, account);
  ASSERT_TRUE(token.ok()) << token.status();
  const std::unique_ptr<TokenService::Stub> stub = TokenService::NewStub(server.NewChannel());
  std::vector<std::unique_ptr<Watcher>> watchers;
  for (const std::string& filter : {std::string(), account, NewAccountId()}) {
    watchers.push_back(std::make_unique<Watcher>(*stub, FromNow(filter)));
  }
  for (const auto& watcher : watchers) ASSERT_TRUE(watcher->WaitForSynced()) << watcher->Summary();

  absl::StatusOr<int> exit_code = server.Terminate();
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  EXPECT_EQ(*exit_code, 0);
  for (const auto& watcher : watchers) {
    std::optional<grpc::Status> end = watcher->WaitForEnd();
    ASSERT_TRUE(end.has_value()) << watcher->Summary();
    EXPECT_EQ(end->error_code(), StatusCode::UNAVAILABLE) << Describe(*end);
  }
}

TEST(WatchFailoverTest, NotServingUntilTheMirrorHasLoaded) {
  absl::StatusOr<std::unique_ptr<RedisInstance>> redis = RedisInstance::Start();
  ASSERT_TRUE(redis.ok()) << redis.status();
  const std::string prefix = UniqueKeyPrefix();
  absl::StatusOr<Replicas> first = StartReplicas(**redis, prefix, 1);
  ASSERT_TRUE(first.ok()) << first.status();
  const Api first_api((*first)[0]->NewChannel());
  const std::string account = NewAccountId();
  std::vector<Token> tokens;
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<Token> token = NewToken(first_api, account);
    ASSERT_TRUE(token.ok()) << token.status();
    tokens.push_back(*token);
  }
  absl::StatusOr<Token> disabled = Flip(first_api, tokens[0]);
  ASSERT_TRUE(disabled.ok()) << disabled.status();
  tokens[0] = *disabled;

  // A replica that starts while Redis is down cannot load its mirror: NOT_SERVING, and reads
  // are UNAVAILABLE rather than answers from an empty mirror.
  (*redis)->Kill();
  absl::StatusOr<std::unique_ptr<ServerProcess>> second =
      ServerProcess::Start({.redis_address = (*redis)->address(), .key_prefix = prefix});
  ASSERT_TRUE(second.ok()) << second.status();
  ServerProcess& late = **second;
  const Api late_api(late.NewChannel(), absl::Seconds(4));
  HealthWatcher health(late.NewChannel());
  ASSERT_TRUE(health.WaitFor(HealthCheckResponse::NOT_SERVING, kHealthTimeout)) << health.History();
  Rpc<GetTokenResponse> unready = late_api.Get(tokens[0].id());
  EXPECT_EQ(unready.status.error_code(), StatusCode::UNAVAILABLE) << Describe(unready.status);

  // Once Redis is back, the replica loads and then reports SERVING: from then on, a read without
  // min_revision already sees everything that was there before it started.
  ASSERT_TRUE((*redis)->Restart().ok());
  ASSERT_TRUE(health.WaitFor(HealthCheckResponse::SERVING, kHealthTimeout)) << health.History();
  for (const Token& token : tokens) {
    Rpc<GetTokenResponse> got = late_api.Get(token.id());
    ASSERT_TRUE(got.ok()) << token.id() << ": " << Describe(got.status);
    EXPECT_EQ(got.response.token().state(), token.state()) << token.id();
    EXPECT_EQ(got.response.token().revision(), token.revision()) << token.id();
  }
}

}  // namespace
}  // namespace tokenstatus::integration
