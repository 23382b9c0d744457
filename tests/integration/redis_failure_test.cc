// redis-server SIGKILLed under a running tokenstatus-server: calls fail fast with UNAVAILABLE,
// health goes NOT_SERVING (at once with --redis_outage_grace=0s; after the grace otherwise, reads
// being served from the mirror meanwhile), and after a Redis restart the same server process
// serves again with every acknowledged change intact (AOF, appendfsync always).

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/integration/integration_test_util.h"
#include "tests/testing/subprocess.h"

namespace tokenstatus::integration {
namespace {

using grpc::StatusCode;
using grpc::health::v1::HealthCheckResponse;

constexpr absl::Duration kHealthTimeout = absl::Seconds(30);
// The deadline of calls made while Redis is down; the server's Redis timeout (1 s by default)
// is well inside it.
constexpr absl::Duration kDownDeadline = absl::Seconds(4);

// Whether `status` is the server's answer while its store is unreachable.
bool IsStoreUnavailable(const grpc::Status& status) {
  return IsRpcError(status, StatusCode::UNAVAILABLE, "STORE_UNAVAILABLE");
}

// A private redis-server and a server on it with --redis_outage_grace=`grace`.
struct RedisAndServer {
  std::unique_ptr<testing::RedisInstance> redis;
  std::unique_ptr<testing::ServerProcess> server;
};
RedisAndServer StartRedisAndServer(absl::Duration grace) {
  RedisAndServer started;
  absl::StatusOr<std::unique_ptr<testing::RedisInstance>> redis = testing::RedisInstance::Start();
  EXPECT_TRUE(redis.ok()) << redis.status();
  if (!redis.ok()) return started;
  started.redis = *std::move(redis);
  absl::StatusOr<std::unique_ptr<testing::ServerProcess>> server = testing::ServerProcess::Start(
      {.redis_address = started.redis->address(),
       .key_prefix = testing::UniqueKeyPrefix(),
       .extra_flags = {absl::StrCat("--redis_outage_grace=", absl::FormatDuration(grace))}});
  EXPECT_TRUE(server.ok()) << server.status();
  if (server.ok()) started.server = *std::move(server);
  return started;
}

TEST(RedisFailureTest, KilledRedisIsUnavailableThenRecoversWithEveryAcknowledgedChange) {
  RedisAndServer started = StartRedisAndServer(absl::ZeroDuration());
  ASSERT_NE(started.server, nullptr);
  testing::RedisInstance& redis = *started.redis;
  testing::ServerProcess& server = *started.server;
  const Api api(server.NewChannel());
  const Api down_api(server.NewChannel(), kDownDeadline);
  HealthWatcher health(server.NewChannel());
  ASSERT_TRUE(health.WaitFor(HealthCheckResponse::SERVING, kHealthTimeout)) << health.History();

  // Changes acknowledged before the crash.
  const std::string account = NewAccountId();
  std::map<std::string, Token> acknowledged;  // by id: the token as acknowledged
  for (const std::string& id : NewTokenIds(10)) {
    Rpc<CreateTokenResponse> created = api.Create(ImportRequest(id, NewSecret(id), account));
    ASSERT_TRUE(created.ok()) << Describe(created.status);
    acknowledged[id] = created.response.token();
  }
  for (auto& [id, token] : acknowledged) {
    if (id.back() % 2 != 0) continue;
    Rpc<DisableTokenResponse> disabled = api.Disable(id);
    ASSERT_TRUE(disabled.ok()) << Describe(disabled.status);
    token = disabled.response.token();
  }
  Rpc<ListTokensResponse> before = api.List(ListTokensRequest());
  ASSERT_TRUE(before.ok()) << Describe(before.status);

  // A writer keeps creating tokens until the crash stops it; what it got acknowledged must
  // survive, and the call in flight at the crash must fail with UNAVAILABLE in time.
  absl::Mutex mu;
  std::map<std::string, Token> written;  // guarded by mu: acknowledged by the writer
  std::vector<std::string> unexpected;   // guarded by mu: answers other than OK / UNAVAILABLE
  std::thread writer([&] {
    const std::vector<std::string> ids = NewTokenIds(100000);
    for (const std::string& id : ids) {
      absl::Time start = absl::Now();
      Rpc<CreateTokenResponse> created = down_api.Create(ImportRequest(id, NewSecret(id), account));
      absl::MutexLock lock(&mu);
      if (created.ok()) {
        written[id] = created.response.token();
        continue;
      }
      if (!IsStoreUnavailable(created.status) || absl::Now() - start >= kDownDeadline) {
        unexpected.push_back(Describe(created.status));
      }
      return;
    }
  });
  {
    absl::MutexLock lock(&mu);
    auto some_written = [&]() { return written.size() >= 20; };
    mu.Await(absl::Condition(&some_written));
  }

  redis.Kill();

  // Calls fail with UNAVAILABLE, inside their deadline, not with DEADLINE_EXCEEDED.
  for (int i = 0; i < 3; ++i) {
    const std::string& id = acknowledged.begin()->first;
    absl::Time start = absl::Now();
    Rpc<DisableTokenResponse> disable = down_api.Disable(id);
    EXPECT_TRUE(IsStoreUnavailable(disable.status));
    EXPECT_LT(absl::Now() - start, kDownDeadline);
    const std::string new_id = NewTokenId();
    start = absl::Now();
    Rpc<CreateTokenResponse> create =
        down_api.Create(ImportRequest(new_id, NewSecret(new_id), account));
    EXPECT_TRUE(IsStoreUnavailable(create.status));
    EXPECT_LT(absl::Now() - start, kDownDeadline);
  }
  EXPECT_TRUE(health.WaitFor(HealthCheckResponse::NOT_SERVING, kHealthTimeout)) << health.History();

  writer.join();
  EXPECT_TRUE(unexpected.empty()) << unexpected.size()
                                  << " unexpected answers, first: " << unexpected.front();
  ASSERT_GE(written.size(), 20u);
  acknowledged.insert(written.begin(), written.end());

  const absl::Status restarted = redis.Restart();
  ASSERT_TRUE(restarted.ok()) << restarted;
  ASSERT_TRUE(health.WaitFor(HealthCheckResponse::SERVING, kHealthTimeout)) << health.History();

  // The same process serves again, from the same dataset (same epoch), with every change. A
  // change acknowledged just before the kill may have reached Redis but not yet this replica's
  // mirror (the acknowledgement waits for the mirror at most change_visible_wait): read with
  // min_revision, as a client that wants its own writes does.
  int64_t last_revision = 0;
  for (const auto& [id, token] : acknowledged) {
    GetTokenRequest request;
    request.set_token_id(id);
    request.set_min_revision(token.revision());
    Rpc<GetTokenResponse> got = api.Get(request);
    ASSERT_TRUE(got.ok()) << id << ": " << Describe(got.status);
    EXPECT_EQ(got.response.token().state(), token.state()) << id;
    EXPECT_EQ(got.response.token().revision(), token.revision()) << id;
    last_revision = std::max(last_revision, token.revision());
  }
  Rpc<ListTokensResponse> after = api.List(ListTokensRequest());
  ASSERT_TRUE(after.ok()) << Describe(after.status);
  EXPECT_EQ(after.response.epoch(), before.response.epoch());
  EXPECT_GE(after.response.revision(), last_revision);

  // Changes work again (the Lua scripts are reloaded after the restart emptied the cache).
  const std::string& id = acknowledged.begin()->first;
  Rpc<GetTokenResponse> current = api.Get(id);
  ASSERT_TRUE(current.ok());
  if (current.response.token().state() == Token::STATE_ACTIVE) {
    Rpc<DisableTokenResponse> disabled = api.Disable(id);
    ASSERT_TRUE(disabled.ok()) << Describe(disabled.status);
    EXPECT_GT(disabled.response.token().revision(), last_revision);
  } else {
    Rpc<EnableTokenResponse> enabled = api.Enable(id);
    ASSERT_TRUE(enabled.ok()) << Describe(enabled.status);
    EXPECT_GT(enabled.response.token().revision(), last_revision);
  }
  const std::string new_id = NewTokenId();
  Rpc<CreateTokenResponse> created = api.Create(ImportRequest(new_id, NewSecret(new_id), account));
  EXPECT_TRUE(created.ok()) << Describe(created.status);
}

TEST(RedisFailureTest, HealthStaysServingFromTheMirrorForTheOutageGraceThenNotServing) {
  constexpr absl::Duration kGrace = absl::Seconds(2);
  RedisAndServer started = StartRedisAndServer(kGrace);
  ASSERT_NE(started.server, nullptr);
  testing::RedisInstance& redis = *started.redis;
  testing::ServerProcess& server = *started.server;
  const Api api(server.NewChannel(), kDownDeadline);
  HealthWatcher health(server.NewChannel());
  ASSERT_TRUE(health.WaitFor(HealthCheckResponse::SERVING, kHealthTimeout)) << health.History();
  const std::string id = NewTokenId();
  Rpc<CreateTokenResponse> created = api.Create(ImportRequest(id, NewSecret(id), NewAccountId()));
  ASSERT_TRUE(created.ok()) << Describe(created.status);

  redis.Kill();
  const absl::Time killed = absl::Now();
  ASSERT_TRUE(server.WaitForLogLine("event=redis_down", kHealthTimeout));
  // Within the grace: reads from the mirror, changes fail fast, health unchanged.
  Rpc<GetTokenResponse> read = api.Get(id);
  ASSERT_TRUE(read.ok()) << Describe(read.status);
  EXPECT_EQ(read.response.token().revision(), created.response.token().revision());
  EXPECT_TRUE(IsStoreUnavailable(api.Disable(id).status));
  // Then NOT_SERVING: a replica cut off for longer may miss disables made elsewhere.
  ASSERT_TRUE(health.WaitFor(HealthCheckResponse::NOT_SERVING, kHealthTimeout)) << health.History();
  const absl::Duration serving_after_kill = absl::Now() - killed;
  EXPECT_GE(serving_after_kill, kGrace - absl::Milliseconds(100)) << health.History();
  EXPECT_LT(serving_after_kill, kGrace + absl::Seconds(3)) << health.History();

  ASSERT_TRUE(redis.Restart().ok());
  EXPECT_TRUE(health.WaitFor(HealthCheckResponse::SERVING, kHealthTimeout)) << health.History();
}

TEST(ServerLifecycleTest, SigtermExitsZero) {
  absl::StatusOr<std::unique_ptr<testing::ServerProcess>> server =
      testing::ServerProcess::Start({.redis_address = testing::SharedRedis().address(),
                                     .key_prefix = testing::UniqueKeyPrefix()});
  ASSERT_TRUE(server.ok()) << server.status();
  const Api api((*server)->NewChannel());
  const std::string id = NewTokenId();
  ASSERT_TRUE(api.Create(ImportRequest(id, NewSecret(id), NewAccountId())).ok());
  absl::StatusOr<int> exit_code = (*server)->Terminate();
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  EXPECT_EQ(*exit_code, 0);
}

TEST(ServerLifecycleTest, ASecondServerOnATakenPortFailsInsteadOfSharingIt) {
  absl::StatusOr<std::unique_ptr<testing::ServerProcess>> first =
      testing::ServerProcess::Start({.redis_address = testing::SharedRedis().address(),
                                     .key_prefix = testing::UniqueKeyPrefix()});
  ASSERT_TRUE(first.ok()) << first.status();
  // The later --listen wins over the harness's own --listen=127.0.0.1:0.
  absl::StatusOr<std::unique_ptr<testing::ServerProcess>> second =
      testing::ServerProcess::Start({.redis_address = testing::SharedRedis().address(),
                                     .key_prefix = testing::UniqueKeyPrefix(),
                                     .extra_flags = {"--listen=" + (*first)->address()}});
  ASSERT_FALSE(second.ok()) << "a second server started on " << (*first)->address();
  EXPECT_NE(second.status().message().find("event=listen_failed"), std::string::npos)
      << second.status();
}

TEST(ServerLifecycleTest, UnknownFlagFailsToStartWithItsLog) {
  absl::StatusOr<std::unique_ptr<testing::ServerProcess>> server = testing::ServerProcess::Start(
      {.redis_address = testing::SharedRedis().address(), .extra_flags = {"--no_such_flag=1"}});
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kUnavailable) << server.status();
  EXPECT_NE(server.status().message().find("no_such_flag"), std::string::npos)
      << "the error carries the server's log: " << server.status();
}

// --help lists every flag with its default and environment variable, and exits 0 (Abseil's own
// --help lists only the flags of the main file, and exits 1).
TEST(ServerLifecycleTest, HelpListsEveryFlagAndExits0) {
  for (const auto& [binary, flags] :
       {std::pair<std::string, std::vector<std::string>>{
            TOKENSTATUS_SERVER_BINARY,
            {"--credentials_file (default: \"\"; env: TOKENSTATUS_CREDENTIALS_FILE)",
             "--reload_check_interval", "--redis_sentinels", "--listen"}},
        {TOKENSTATUS_SIDECAR_BINARY,
         {"--upstream (default: 127.0.0.1:50051; env: TOKENSTATUS_SIDECAR_UPSTREAM)",
          "--stale_policy"}}}) {
    absl::StatusOr<testing::CommandResult> help =
        testing::RunCommand({binary, "--help"}, absl::Seconds(10));
    ASSERT_TRUE(help.ok()) << help.status();
    EXPECT_EQ(help->exit_code, 0) << binary << ": " << help->err;
    for (const std::string& flag : flags) {
      EXPECT_NE(help->out.find(flag), std::string::npos) << binary << " --help:\n" << help->out;
    }
  }
}

}  // namespace
}  // namespace tokenstatus::integration
