// RedisClient and RedisScript against real redis-server processes: pipelining, fail-fast when
// Redis is down, deadlines when Redis is blackholed (SIGSTOP), recovery after SIGCONT and after
// a SIGKILL + restart, AUTH, clean shutdown, and NOSCRIPT handling.

#include "server/redis/redis_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/status_util.h"
#include "gtest/gtest.h"
#include "server/redis/redis_reply.h"
#include "server/redis/redis_script.h"
#include "tests/testing/redis_instance.h"
#include "tests/testing/sentinel_instance.h"

namespace tokenstatus {
namespace {

using ::tokenstatus::testing::RedisInstance;
using ::tokenstatus::testing::SentinelInstance;
using ::tokenstatus::testing::SharedRedis;
using ::tokenstatus::testing::UniqueKeyPrefix;

// Slack on top of a deadline for "failed by its deadline": timer and scheduling latency on a
// loaded 2-core machine (or under valgrind).
constexpr absl::Duration kSlack = absl::Milliseconds(400);

// A reply rendered as text: a string/status as itself, an integer in decimal, an error as
// "ERROR <message>", nil as "(nil)", an array as "[a,b,...]".
std::string Render(const redisReply& reply) {
  switch (reply.type) {
    case REDIS_REPLY_INTEGER:
      return absl::StrCat(reply.integer);
    case REDIS_REPLY_NIL:
      return "(nil)";
    case REDIS_REPLY_ERROR:
      return absl::StrCat("ERROR ", ReplyText(reply));
    case REDIS_REPLY_ARRAY: {
      std::vector<std::string> elements;
      for (size_t i = 0; i < reply.elements; ++i) elements.push_back(Render(*reply.element[i]));
      return absl::StrCat("[", absl::StrJoin(elements, ","), "]");
    }
    default:
      return std::string(ReplyText(reply));
  }
}

// The outcome of one asynchronous call, awaited by the test thread.
class Outcome {
 public:
  RedisClient::ReplyCallback Callback() {
    return [this](absl::StatusOr<const redisReply*> reply) {
      result_ = reply.ok() ? absl::StatusOr<std::string>(Render(**reply))
                           : absl::StatusOr<std::string>(reply.status());
      finished_at_ = absl::Now();
      done_.Notify();
    };
  }
  // Waits for the callback (at most 30 s) and returns its result.
  absl::StatusOr<std::string> Get() {
    if (!done_.WaitForNotificationWithTimeout(absl::Seconds(30))) {
      return absl::DeadlineExceededError("callback never ran");
    }
    return result_;
  }
  absl::Time finished_at() const { return finished_at_; }

 private:
  absl::Notification done_;
  absl::StatusOr<std::string> result_;
  absl::Time finished_at_;
};

absl::StatusOr<std::string> Call(RedisClient& client, std::vector<std::string> args,
                                 absl::Duration timeout = absl::Seconds(5)) {
  Outcome outcome;
  client.Command(std::move(args), absl::Now() + timeout, outcome.Callback());
  return outcome.Get();
}

// Records the connected-listener's calls and lets the test wait for a state.
class ConnectionWatch {
 public:
  explicit ConnectionWatch(RedisClient& client) {
    client.SetConnectedListener([this](bool connected) {
      absl::MutexLock lock(&mu_);
      state_ = connected;
    });
  }
  // Waits until the listener has reported `connected` as the latest state.
  bool WaitFor(bool connected, absl::Duration timeout = absl::Seconds(20)) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, connected]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return state_.has_value() && *state_ == connected;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
  }

 private:
  absl::Mutex mu_;
  std::optional<bool> state_ ABSL_GUARDED_BY(mu_);
};

std::unique_ptr<RedisClient> StartClient(RedisClientOptions options) {
  absl::StatusOr<std::unique_ptr<RedisClient>> client = RedisClient::Start(std::move(options));
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? *std::move(client) : nullptr;
}

std::unique_ptr<RedisInstance> StartPrivateRedis() {
  absl::StatusOr<std::unique_ptr<RedisInstance>> redis = RedisInstance::Start();
  EXPECT_TRUE(redis.ok()) << redis.status();
  return redis.ok() ? *std::move(redis) : nullptr;
}

// The pid of the redis-server behind `redis` (from INFO server).
pid_t RedisPid(RedisInstance& redis) {
  absl::StatusOr<std::vector<std::string>> info = redis.Command({"INFO", "server"});
  EXPECT_TRUE(info.ok()) << info.status();
  if (!info.ok() || info->empty()) return 0;
  for (absl::string_view line : absl::StrSplit((*info)[0], "\r\n")) {
    int pid = 0;
    if (absl::ConsumePrefix(&line, "process_id:") && absl::SimpleAtoi(line, &pid)) return pid;
  }
  ADD_FAILURE() << "no process_id in INFO server";
  return 0;
}

// A loopback port nothing listens on.
int UnusedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

void ExpectUnavailable(const absl::StatusOr<std::string>& result) {
  ASSERT_FALSE(result.ok()) << "unexpected reply " << *result;
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable) << result.status();
  EXPECT_EQ(ErrorReason(result.status()), reason::kStoreUnavailable);
}

TEST(RedisClientTest, RejectsBadOptions) {
  for (const char* address :
       {"", "localhost", "host:", ":6379", "host:0", "host:x", "host:70000", "unix:"}) {
    RedisClientOptions options;
    options.address = address;
    absl::StatusOr<std::unique_ptr<RedisClient>> client = RedisClient::Start(options);
    EXPECT_EQ(client.status().code(), absl::StatusCode::kInvalidArgument) << address;
  }
  RedisClientOptions no_connections;
  no_connections.connections = 0;
  EXPECT_EQ(RedisClient::Start(no_connections).status().code(), absl::StatusCode::kInvalidArgument);
  RedisClientOptions no_timeout;
  no_timeout.connect_timeout = absl::ZeroDuration();
  EXPECT_EQ(RedisClient::Start(no_timeout).status().code(), absl::StatusCode::kInvalidArgument);
  RedisClientOptions user_only;
  user_only.user = "someone";
  EXPECT_EQ(RedisClient::Start(user_only).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(RedisClientTest, PipelinedCommandsCompleteInSubmissionOrder) {
  RedisClientOptions options;
  options.address = SharedRedis().address();
  options.connections = 1;
  std::unique_ptr<RedisClient> client = StartClient(options);
  ASSERT_NE(client, nullptr);
  const std::string key = UniqueKeyPrefix() + ":list";
  constexpr int kCommands = 2000;

  absl::Mutex mu;
  std::vector<std::string> replies;  // in callback order
  absl::Notification all_done;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  for (int i = 0; i < kCommands; ++i) {
    client->Command(
        {"RPUSH", key, absl::StrCat(i)}, deadline, [&, i](absl::StatusOr<const redisReply*> reply) {
          absl::MutexLock lock(&mu);
          replies.push_back(reply.ok() ? Render(**reply) : std::string(reply.status().message()));
          if (static_cast<int>(replies.size()) == kCommands) all_done.Notify();
        });
  }
  ASSERT_TRUE(all_done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  {
    absl::MutexLock lock(&mu);
    for (int i = 0; i < kCommands; ++i) {
      // RPUSH answers the new length: the i-th callback belongs to the i-th command.
      ASSERT_EQ(replies[i], absl::StrCat(i + 1)) << "callback " << i;
    }
  }
  absl::StatusOr<std::vector<std::string>> stored =
      SharedRedis().Command({"LRANGE", key, "0", "-1"});
  ASSERT_TRUE(stored.ok()) << stored.status();
  ASSERT_EQ(stored->size(), static_cast<size_t>(kCommands));
  for (int i = 0; i < kCommands; ++i) ASSERT_EQ((*stored)[i], absl::StrCat(i));
}

TEST(RedisClientTest, ManyThreadsOverSeveralConnectionsEachGetTheirOwnReply) {
  RedisClientOptions options;
  options.address = SharedRedis().address();
  options.connections = 3;
  std::unique_ptr<RedisClient> client = StartClient(options);
  ASSERT_NE(client, nullptr);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 500;
  std::vector<std::thread> threads;
  absl::Mutex mu;
  int mismatches = 0;
  int completed = 0;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string value = absl::StrCat(t, "-", i);
        // ECHO answers its argument: a reply delivered to the wrong callback shows up here.
        client->Command({"ECHO", value}, absl::Now() + absl::Seconds(20),
                        [&, value](absl::StatusOr<const redisReply*> reply) {
                          absl::MutexLock lock(&mu);
                          if (!reply.ok() || Render(**reply) != value) ++mismatches;
                          ++completed;
                        });
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  absl::MutexLock lock(&mu);
  auto all_completed = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return completed == kThreads * kPerThread;
  };
  ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&all_completed), absl::Seconds(30)));
  EXPECT_EQ(mismatches, 0);
}

TEST(RedisClientTest, ErrorRepliesArePassedAsReplies) {
  RedisClientOptions options;
  options.address = SharedRedis().address();
  std::unique_ptr<RedisClient> client = StartClient(options);
  ASSERT_NE(client, nullptr);
  absl::StatusOr<std::string> reply = Call(*client, {"NOSUCHCOMMAND", "x"});
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_TRUE(absl::StartsWith(*reply, "ERROR ERR unknown command")) << *reply;
  // Binary-safe arguments: NUL bytes and CRLF survive the round trip.
  const std::string binary("a\0b\r\nc", 6);
  reply = Call(*client, {"ECHO", binary});
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(*reply, binary);
}

TEST(RedisClientTest, DownRedisFailsFastAndReportsDisconnected) {
  RedisClientOptions options;
  options.address = absl::StrCat("127.0.0.1:", UnusedPort());
  std::unique_ptr<RedisClient> client = StartClient(options);
  ASSERT_NE(client, nullptr);
  ConnectionWatch watch(*client);
  EXPECT_TRUE(watch.WaitFor(false));

  for (int i = 0; i < 3; ++i) {
    const absl::Time start = absl::Now();
    absl::StatusOr<std::string> reply = Call(*client, {"PING"}, absl::Seconds(10));
    ExpectUnavailable(reply);
    EXPECT_LT(absl::Now() - start, absl::Milliseconds(500)) << "attempt " << i;
  }
}

TEST(RedisClientTest, FailsByTheDeadlineWhenRedisIsBlackholedAndRecoversAfterIt) {
  std::unique_ptr<RedisInstance> redis = StartPrivateRedis();
  ASSERT_NE(redis, nullptr);
  RedisClientOptions options;
  options.address = redis->address();
  options.connections = 1;
  options.connect_timeout = absl::Milliseconds(200);
  std::unique_ptr<RedisClient> client = StartClient(options);
  ASSERT_NE(client, nullptr);
  ConnectionWatch watch(*client);
  ASSERT_TRUE(watch.WaitFor(true));
  ASSERT_EQ(Call(*client, {"PING"}).value_or("error"), "PONG");

  const pid_t pid = RedisPid(*redis);
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::kill(pid, SIGSTOP), 0);
  absl::Cleanup resume = [pid] { ::kill(pid, SIGCONT); };

  const absl::Duration timeout = absl::Milliseconds(300);
  const absl::Time start = absl::Now();
  Outcome outcome;
  client->Command({"SET", "blackholed", "1"}, start + timeout, outcome.Callback());
  ExpectUnavailable(outcome.Get());
  EXPECT_GE(outcome.finished_at() - start, timeout);
  EXPECT_LT(outcome.finished_at() - start, timeout + kSlack);

  // The connection whose oldest command is overdue is considered dead; reconnects cannot
  // complete their handshake while Redis is stopped, so the client reports down and fails fast.
  ASSERT_TRUE(watch.WaitFor(false));
  const absl::Time fast_start = absl::Now();
  ExpectUnavailable(Call(*client, {"PING"}, absl::Seconds(10)));
  EXPECT_LT(absl::Now() - fast_start, absl::Milliseconds(500));

  std::move(resume).Invoke();
  ASSERT_TRUE(watch.WaitFor(true));
  EXPECT_EQ(Call(*client, {"PING"}).value_or("error"), "PONG");
}

// A private redis-server (the test kills or stops it) and a client connected to it.
class PrivateRedisClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    redis_ = StartPrivateRedis();
    ASSERT_NE(redis_, nullptr);
    RedisClientOptions options;
    options.address = redis_->address();
    client_ = StartClient(options);
    ASSERT_NE(client_, nullptr);
    watch_ = std::make_unique<ConnectionWatch>(*client_);
    ASSERT_TRUE(watch_->WaitFor(true));
  }

  std::unique_ptr<RedisInstance> redis_;
  std::unique_ptr<RedisClient> client_;
  std::unique_ptr<ConnectionWatch> watch_;  // declared last: it stops listening first
};

TEST_F(PrivateRedisClientTest, RecoversAfterRedisIsKilledAndRestarted) {
  ASSERT_EQ(Call(*client_, {"SET", "k", "v"}).value_or("error"), "OK");

  redis_->Kill();
  ASSERT_TRUE(watch_->WaitFor(false));
  const absl::Time start = absl::Now();
  ExpectUnavailable(Call(*client_, {"GET", "k"}, absl::Seconds(10)));
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(500));

  ASSERT_TRUE(redis_->Restart().ok());
  ASSERT_TRUE(watch_->WaitFor(true));
  // Both connections come back; the AOF kept the value.
  for (int i = 0; i < 4; ++i) EXPECT_EQ(Call(*client_, {"GET", "k"}).value_or("error"), "v");
}

TEST_F(PrivateRedisClientTest, DestructorFailsPendingCommands) {
  const pid_t pid = RedisPid(*redis_);
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::kill(pid, SIGSTOP), 0);
  absl::Cleanup resume = [pid] { ::kill(pid, SIGCONT); };

  std::vector<std::unique_ptr<Outcome>> outcomes;
  for (int i = 0; i < 10; ++i) {
    outcomes.push_back(std::make_unique<Outcome>());
    client_->Command({"PING"}, absl::Now() + absl::Seconds(60), outcomes.back()->Callback());
  }
  const absl::Time start = absl::Now();
  client_.reset();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  for (const std::unique_ptr<Outcome>& outcome : outcomes) ExpectUnavailable(outcome->Get());
}

TEST(RedisClientTest, AuthenticatesAfterEachConnect) {
  std::unique_ptr<RedisInstance> redis = StartPrivateRedis();
  ASSERT_NE(redis, nullptr);
  ASSERT_TRUE(redis->Command({"ACL", "SETUSER", "app", "on", ">s3cret", "~*", "+@all"}).ok());

  RedisClientOptions options;
  options.address = redis->address();
  options.user = "app";
  options.password = "s3cret";
  std::unique_ptr<RedisClient> client = StartClient(options);
  ASSERT_NE(client, nullptr);
  ConnectionWatch watch(*client);
  ASSERT_TRUE(watch.WaitFor(true));
  EXPECT_EQ(Call(*client, {"ACL", "WHOAMI"}).value_or("error"), "app");

  // After a restart the new connections authenticate again (the ACL user is gone from a
  // restarted server unless persisted, so re-create it first).
  redis->Kill();
  ASSERT_TRUE(watch.WaitFor(false));
  ASSERT_TRUE(redis->Restart().ok());
  ASSERT_TRUE(redis->Command({"ACL", "SETUSER", "app", "on", ">s3cret", "~*", "+@all"}).ok());
  ASSERT_TRUE(watch.WaitFor(true));
  EXPECT_EQ(Call(*client, {"ACL", "WHOAMI"}).value_or("error"), "app");

  RedisClientOptions wrong = options;
  wrong.password = "not-the-password-7f3a";
  std::unique_ptr<RedisClient> refused = StartClient(wrong);
  ASSERT_NE(refused, nullptr);
  ConnectionWatch refused_watch(*refused);
  ASSERT_TRUE(refused_watch.WaitFor(false));
  absl::StatusOr<std::string> reply = Call(*refused, {"PING"});
  ExpectUnavailable(reply);
  EXPECT_NE(reply.status().message().find("WRONGPASS"), absl::string_view::npos) << reply.status();
  EXPECT_EQ(reply.status().message().find(wrong.password), absl::string_view::npos)
      << "the password leaked into " << reply.status();
}

TEST(RedisClientTest, FollowUpGoesOnTheConnectionOfTheReply) {
  RedisClientOptions options;
  options.address = SharedRedis().address();
  options.connections = 4;
  std::unique_ptr<RedisClient> client = StartClient(options);
  ASSERT_NE(client, nullptr);
  for (int i = 0; i < 8; ++i) {
    Outcome first;
    Outcome follow_up;
    RedisClient::ReplyCallback record_first = first.Callback();
    client->Command(
        {"CLIENT", "ID"}, absl::Now() + absl::Seconds(5),
        [&,
         record_first = std::move(record_first)](absl::StatusOr<const redisReply*> reply) mutable {
          client->FollowUp({"CLIENT", "ID"}, absl::Now() + absl::Seconds(5), follow_up.Callback());
          record_first(std::move(reply));
        });
    absl::StatusOr<std::string> id = first.Get();
    ASSERT_TRUE(id.ok()) << id.status();
    absl::StatusOr<std::string> same = follow_up.Get();
    ASSERT_TRUE(same.ok()) << same.status();
    EXPECT_EQ(*same, *id);
  }
  // Outside a reply callback there is no connection to follow up on.
  Outcome outside;
  client->FollowUp({"PING"}, absl::Now() + absl::Seconds(5), outside.Callback());
  ExpectUnavailable(outside.Get());
}

// A command pipelined behind a blocking one (as behind the store's WAIT) fails by its deadline,
// but the connection, which still answers, is kept: no reconnect.
TEST(RedisClientTest, CommandBehindABlockingOneTimesOutButTheConnectionIsKept) {
  RedisClientOptions options;
  options.address = SharedRedis().address();
  options.connections = 1;
  std::unique_ptr<RedisClient> client = StartClient(options);
  ASSERT_NE(client, nullptr);
  absl::StatusOr<std::string> id = Call(*client, {"CLIENT", "ID"});
  ASSERT_TRUE(id.ok()) << id.status();

  // The second BLPOP times out while it waits behind the first, then blocks by itself after the
  // first's reply: its connection answers, but not yet to it.
  const std::string key = UniqueKeyPrefix() + ":empty";
  Outcome blocking;
  Outcome behind;
  client->Command({"BLPOP", key, "0.6"}, absl::Now() + absl::Seconds(5), blocking.Callback());
  client->Command({"BLPOP", key, "0.3"}, absl::Now() + absl::Milliseconds(200), behind.Callback());
  ExpectUnavailable(behind.Get());
  EXPECT_EQ(blocking.Get().value_or("error"), "(nil)");
  absl::StatusOr<std::string> same = Call(*client, {"CLIENT", "ID"});
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(*same, *id) << "the connection was closed and reconnected";
}

// Sentinel mode against a real redis-sentinel: a sentinel that is down is skipped; a primary
// turned replica behind the client's back answers READONLY, after which the client asks again
// and refuses it (ROLE) until it is a primary again.
TEST(RedisClientTest, FollowsThePrimaryTheSentinelsName) {
  std::unique_ptr<RedisInstance> primary = StartPrivateRedis();
  ASSERT_NE(primary, nullptr);
  absl::StatusOr<std::unique_ptr<SentinelInstance>> sentinel =
      SentinelInstance::Start(primary->address(), {.quorum = 1});
  ASSERT_TRUE(sentinel.ok()) << sentinel.status();
  RedisClientOptions options;
  options.sentinels = {absl::StrCat("127.0.0.1:", UnusedPort()), (*sentinel)->address()};
  options.master_name = (*sentinel)->options().master_name;
  options.connections = 1;
  std::unique_ptr<RedisClient> client = StartClient(options);
  ASSERT_NE(client, nullptr);
  ConnectionWatch watch(*client);
  ASSERT_TRUE(watch.WaitFor(true));
  const std::string key = UniqueKeyPrefix() + ":k";
  EXPECT_EQ(Call(*client, {"SET", key, "1"}).value_or("error"), "OK");

  ASSERT_TRUE(primary->Command({"REPLICAOF", "127.0.0.1", absl::StrCat(UnusedPort())}).ok());
  absl::StatusOr<std::string> refused = Call(*client, {"SET", key, "2"});
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_TRUE(absl::StartsWith(*refused, "ERROR READONLY")) << *refused;
  ASSERT_TRUE(watch.WaitFor(false));
  ExpectUnavailable(Call(*client, {"SET", key, "3"}));  // ROLE: not a master

  ASSERT_TRUE(primary->Command({"REPLICAOF", "NO", "ONE"}).ok());
  ASSERT_TRUE(watch.WaitFor(true));
  EXPECT_EQ(Call(*client, {"SET", key, "4"}).value_or("error"), "OK");
}

TEST(RedisClientTest, RejectsBadSentinelOptions) {
  RedisClientOptions no_name;
  no_name.sentinels = {"127.0.0.1:26379"};
  EXPECT_EQ(RedisClient::Start(no_name).status().code(), absl::StatusCode::kInvalidArgument);
  RedisClientOptions bad_address;
  bad_address.sentinels = {"sentinel"};
  bad_address.master_name = "m";
  EXPECT_EQ(RedisClient::Start(bad_address).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(RedisScriptTest, HashesTheSourceWithSha1) {
  // sha1("return 1"), as SCRIPT LOAD reports it.
  EXPECT_EQ(RedisScript("return 1").sha1(), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
}

TEST(RedisScriptTest, NoscriptIsTransparent) {
  std::unique_ptr<RedisInstance> redis = StartPrivateRedis();
  ASSERT_NE(redis, nullptr);
  RedisClientOptions options;
  options.address = redis->address();
  std::unique_ptr<RedisClient> client = StartClient(options);
  ASSERT_NE(client, nullptr);
  const RedisScript script("return {KEYS[1], ARGV[1], ARGV[2]}");

  auto run = [&](const std::string& arg) {
    Outcome outcome;
    script.Run(*client, {"key"}, {arg, "x"}, absl::Now() + absl::Seconds(5), outcome.Callback());
    return outcome.Get();
  };
  auto cached = [&] {
    absl::StatusOr<std::vector<std::string>> exists =
        redis->Command({"SCRIPT", "EXISTS", script.sha1()});
    return exists.ok() && exists->size() == 1 && (*exists)[0] == "1";
  };

  ASSERT_FALSE(cached());
  EXPECT_EQ(run("first").value_or("error"), "[key,first,x]");  // NOSCRIPT -> EVAL
  EXPECT_TRUE(cached());
  EXPECT_EQ(run("second").value_or("error"), "[key,second,x]");  // EVALSHA

  ASSERT_TRUE(redis->Command({"SCRIPT", "FLUSH"}).ok());
  ASSERT_FALSE(cached());
  EXPECT_EQ(run("third").value_or("error"), "[key,third,x]");
  EXPECT_TRUE(cached());

  // Script errors are still passed through as error replies.
  const RedisScript failing("return redis.error_reply('SOME_CODE detail')");
  Outcome outcome;
  failing.Run(*client, {}, {}, absl::Now() + absl::Seconds(5), outcome.Callback());
  EXPECT_EQ(outcome.Get().value_or("error"), "ERROR SOME_CODE detail");
}

}  // namespace
}  // namespace tokenstatus
