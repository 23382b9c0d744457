// The test harness itself: RedisInstance (replies, kill, restart with its data) and
// RunCommand, which the other tests rely on.

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/redis_instance.h"
#include "tests/testing/subprocess.h"

namespace tokenstatus::testing {
namespace {

using Strings = std::vector<std::string>;

TEST(RedisInstanceTest, RepliesKillAndRestartKeepAcknowledgedWrites) {
  absl::StatusOr<std::unique_ptr<RedisInstance>> started = RedisInstance::Start();
  ASSERT_TRUE(started.ok()) << started.status();
  RedisInstance& redis = **started;
  EXPECT_EQ(redis.address(), "127.0.0.1:" + std::to_string(redis.port()));

  const std::string binary("v\0w", 3);
  absl::StatusOr<Strings> set = redis.Command({"SET", "k", binary});
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(*set, Strings{"OK"});
  ASSERT_TRUE(redis.Command({"XADD", "s", "7-0", "a", "1", "b", "2"}).ok());
  absl::StatusOr<RedisReply> entries = redis.CommandReply({"XRANGE", "s", "-", "+"});
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->elements.size(), 1u);
  EXPECT_EQ(entries->elements[0].elements[0].str, "7-0");
  EXPECT_EQ(entries->elements[0].elements[1].elements.size(), 4u);
  EXPECT_EQ(*redis.Command({"XRANGE", "s", "-", "+"}), (Strings{"7-0", "a", "1", "b", "2"}));
  EXPECT_EQ(*redis.Command({"INCR", "n"}), Strings{"1"});
  EXPECT_EQ(*redis.Command({"GET", "missing"}), Strings{""});
  EXPECT_EQ(redis.Command({"NO_SUCH_COMMAND"}).status().code(), absl::StatusCode::kInternal);

  redis.Kill();
  EXPECT_EQ(redis.Command({"PING"}).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(redis.Restart().code(), absl::StatusCode::kOk);
  EXPECT_EQ(*redis.Command({"GET", "k"}), Strings{binary});
  EXPECT_EQ(*redis.Command({"GET", "n"}), Strings{"1"});
  EXPECT_EQ(redis.Restart().code(), absl::StatusCode::kFailedPrecondition) << "still running";
}

TEST(RedisInstanceTest, SharedRedisAndUniquePrefixes) {
  RedisInstance& shared = SharedRedis();
  EXPECT_EQ(&shared, &SharedRedis());
  EXPECT_EQ(*shared.Command({"PING"}), Strings{"PONG"});
  const std::string a = UniqueKeyPrefix();
  const std::string b = UniqueKeyPrefix();
  EXPECT_NE(a, b);
  EXPECT_EQ(a.front(), '{');
  EXPECT_EQ(a.back(), '}');
}

TEST(RunCommandTest, CollectsOutputAndExitCodeAndEnforcesTheTimeout) {
  absl::StatusOr<CommandResult> result =
      RunCommand({"sh", "-c", "echo out; echo err >&2; exit 3"}, absl::Seconds(10));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 3);
  EXPECT_EQ(result->out, "out\n");
  EXPECT_EQ(result->err, "err\n");

  EXPECT_EQ(RunCommand({"sleep", "30"}, absl::Milliseconds(200)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(RunCommand({"no-such-binary-for-tokenstatus"}, absl::Seconds(1)).status().code(),
            absl::StatusCode::kNotFound);

  // The child inherits only stdin, stdout and stderr (ls's own directory handle is the 4th).
  absl::StatusOr<CommandResult> fds = RunCommand({"ls", "/proc/self/fd"}, absl::Seconds(10));
  ASSERT_TRUE(fds.ok()) << fds.status();
  EXPECT_EQ(fds->out, "0\n1\n2\n3\n");
}

}  // namespace
}  // namespace tokenstatus::testing
