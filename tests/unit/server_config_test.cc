#include "server/app/server_config.h"

#include <stdlib.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/reflection.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tokenstatus {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Restores every flag and the environment variables it set when a test ends.
// Every test starts with --insecure_allow_unauthenticated (the listen default is loopback), as
// the server needs some way to authenticate callers; AccessRules tests the alternatives.
class ServerConfigTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(CheckArgs({"--insecure_allow_unauthenticated"}).ok()); }
  void TearDown() override {
    for (const std::string& name : env_) unsetenv(name.c_str());
  }
  void SetEnv(const std::string& name, const std::string& value) {
    setenv(name.c_str(), value.c_str(), 1);
    env_.push_back(name);
  }
  // Runs CheckCommandLineValues over `args` (argv[0] is added).
  static absl::Status CheckArgs(std::vector<std::string> args) {
    args.insert(args.begin(), "tokenstatus-server");
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    return CheckCommandLineValues(static_cast<int>(argv.size()), argv.data());
  }
  static std::string WriteFile(const std::string& content,
                               const std::string& name = "server_config_test_password") {
    const std::string path = ::testing::TempDir() + "/" + name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  absl::FlagSaver flag_saver_;
  std::vector<std::string> env_;
};

TEST_F(ServerConfigTest, Defaults) {
  absl::StatusOr<ServerConfig> config = LoadServerConfig();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listen, "127.0.0.1:50051");
  EXPECT_EQ(config->redis.address, "127.0.0.1:6379");
  EXPECT_EQ(config->redis.password, "");
  EXPECT_EQ(config->redis.connections, 2);
  EXPECT_EQ(config->store.key_prefix, "{apitoken}");
  EXPECT_EQ(config->store.event_retention, 1000000);
  EXPECT_EQ(config->store.call_timeout, absl::Seconds(1));
  EXPECT_EQ(config->max_request_bytes, 65536);
  EXPECT_EQ(config->shutdown_grace, absl::Seconds(5));
  EXPECT_EQ(config->watch.max_watchers, 20000);
  EXPECT_EQ(config->watch.max_watchers_per_connection, 2000);
  EXPECT_EQ(config->watch.queue_size, 1024);
  EXPECT_EQ(config->watch.snapshot_memory_budget, 64 << 20);
  EXPECT_EQ(config->watch.max_snapshots_per_principal, 8);
  EXPECT_EQ(config->watch.snapshot_max_wait, absl::Seconds(30));
  EXPECT_FALSE(config->access.allow_empty_credentials_file);
  EXPECT_TRUE(config->redis.sentinels.empty());
  EXPECT_EQ(config->store.min_replicas_acked, 0);
  EXPECT_EQ(config->store.replica_ack_timeout, absl::Seconds(1));
  EXPECT_EQ(config->redis_outage_grace, absl::Seconds(10));
  EXPECT_THAT(DescribeConfig(*config), HasSubstr("password=unset"));
  EXPECT_THAT(DescribeConfig(*config), HasSubstr("snapshot_memory_budget=67108864"));
  EXPECT_THAT(DescribeConfig(*config), HasSubstr("max_watchers=20000"));
}

TEST_F(ServerConfigTest, EnvironmentIsTheDefaultAndTheCommandLineWins) {
  SetEnv("TOKENSTATUS_LISTEN", "0.0.0.0:7000");
  SetEnv("TOKENSTATUS_REDIS", "unix:/run/redis.sock");
  SetEnv("TOKENSTATUS_REDIS_TIMEOUT", "250ms");
  SetEnv("TOKENSTATUS_EVENT_RETENTION", "5000");
  SetEnv("TOKENSTATUS_MAX_WATCHERS", "300");
  SetEnv("TOKENSTATUS_WATCH_QUEUE_SIZE", "64");
  SetEnv("TOKENSTATUS_SNAPSHOT_MEMORY_BUDGET", "1048576");
  SetEnv("TOKENSTATUS_MAX_SNAPSHOTS_PER_PRINCIPAL", "3");
  SetEnv("TOKENSTATUS_SNAPSHOT_MAX_WAIT", "5s");
  ASSERT_TRUE(ApplyEnvironmentDefaults().ok());
  ASSERT_TRUE(CheckArgs({"--listen=127.0.0.1:0", "-redis_connections", "4",
                         "--max_watchers_per_connection=30", "--watch_queue_size=128",
                         "--snapshot_max_wait=2s", "--", "--x"})
                  .ok());
  absl::StatusOr<ServerConfig> config = LoadServerConfig();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listen, "127.0.0.1:0");
  EXPECT_EQ(config->redis.address, "unix:/run/redis.sock");
  EXPECT_EQ(config->store.call_timeout, absl::Milliseconds(250));
  EXPECT_EQ(config->store.event_retention, 5000);
  EXPECT_EQ(config->redis.connections, 4);
  EXPECT_EQ(config->watch.max_watchers, 300);
  EXPECT_EQ(config->watch.max_watchers_per_connection, 30);
  EXPECT_EQ(config->watch.queue_size, 128);
  EXPECT_EQ(config->watch.snapshot_memory_budget, 1048576);
  EXPECT_EQ(config->watch.max_snapshots_per_principal, 3);
  EXPECT_EQ(config->watch.snapshot_max_wait, absl::Seconds(2));
}

TEST_F(ServerConfigTest, MalformedValuesNameTheirSource) {
  SetEnv("TOKENSTATUS_REDIS_CONNECTIONS", "many");
  absl::Status env = ApplyEnvironmentDefaults();
  EXPECT_EQ(env.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(env.message()), HasSubstr("TOKENSTATUS_REDIS_CONNECTIONS"));
  absl::Status flag = CheckArgs({"--shutdown_grace=soon"});
  EXPECT_EQ(flag.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(flag.message()), HasSubstr("--shutdown_grace"));
  EXPECT_THAT(std::string(CheckArgs({"--redis"}).message()), HasSubstr("needs a value"));
  EXPECT_TRUE(CheckArgs({"positional", "--unknown_flag=1"}).ok());  // left to absl
}

TEST_F(ServerConfigTest, InvalidValuesAreRefused) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--listen=localhost", "--listen"},
      {"--listen=:80", "--listen"},
      {"--listen=127.0.0.1:65536", "--listen"},
      {"--redis_key_prefix=apitoken", "--redis_key_prefix"},
      {"--redis_key_prefix={}", "--redis_key_prefix"},
      {"--redis_connections=0", "--redis_connections"},
      {"--redis_connections=65", "--redis_connections"},
      {"--redis_timeout=0s", "--redis_timeout"},
      {"--event_retention=0", "--event_retention"},
      {"--max_request_bytes=100", "--max_request_bytes"},
      {"--shutdown_grace=-1s", "--shutdown_grace"},
      {"--max_watchers=0", "--max_watchers"},
      {"--max_watchers_per_connection=0", "--max_watchers_per_connection"},
      {"--watch_queue_size=15", "--watch_queue_size"},
      {"--snapshot_memory_budget=-1", "--snapshot_memory_budget"},
      {"--snapshot_memory_budget=1099511627777", "--snapshot_memory_budget"},
      {"--max_snapshots_per_principal=0", "--max_snapshots_per_principal"},
      {"--snapshot_max_wait=0s", "--snapshot_max_wait"},
      {"--min_replicas_acked=-1", "--min_replicas_acked"},
      {"--min_replicas_acked=17", "--min_replicas_acked"},
      {"--replica_ack_timeout=0s", "--replica_ack_timeout"},
      {"--redis_outage_grace=-1s", "--redis_outage_grace"},
      {"--redis=", "--redis"},
      {"--redis_master_name=mymaster", "--redis_master_name needs --redis_sentinels"},
      {"--redis_sentinels=127.0.0.1:26379", "--redis_master_name"},
      {"--redis_sentinels=sentinel", "--redis_sentinels"},
      {"--redis_sentinels=a:1,b:0", "--redis_sentinels"},
  };
  for (const auto& [arg, flag] : cases) {
    absl::FlagSaver saver;
    ASSERT_TRUE(CheckArgs({arg}).ok()) << arg;
    absl::StatusOr<ServerConfig> config = LoadServerConfig();
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << arg;
    EXPECT_THAT(std::string(config.status().message()), HasSubstr(flag)) << arg;
  }
  ASSERT_TRUE(CheckArgs({"--listen=[::1]:0", "--redis_key_prefix=app:{tokens}:"}).ok());
  EXPECT_TRUE(LoadServerConfig().ok());
}

TEST_F(ServerConfigTest, PasswordFromAFileOrTheEnvironmentNeverShown) {
  const std::string path = WriteFile("s3cret-pw\r\n");
  ASSERT_TRUE(CheckArgs({"--redis_password_file=" + path}).ok());
  absl::StatusOr<ServerConfig> from_file = LoadServerConfig();
  ASSERT_TRUE(from_file.ok()) << from_file.status();
  EXPECT_EQ(from_file->redis.password, "s3cret-pw");
  EXPECT_THAT(DescribeConfig(*from_file), HasSubstr("password=set"));
  EXPECT_THAT(DescribeConfig(*from_file), Not(HasSubstr("s3cret")));

  SetEnv("TOKENSTATUS_REDIS_PASSWORD", "env-pw");
  absl::StatusOr<ServerConfig> twice = LoadServerConfig();
  EXPECT_EQ(twice.status().code(), absl::StatusCode::kInvalidArgument);

  ASSERT_TRUE(CheckArgs({"--redis_password_file="}).ok());
  absl::StatusOr<ServerConfig> from_env = LoadServerConfig();
  ASSERT_TRUE(from_env.ok()) << from_env.status();
  EXPECT_EQ(from_env->redis.password, "env-pw");
  EXPECT_THAT(DescribeConfig(*from_env), Not(HasSubstr("env-pw")));
  unsetenv("TOKENSTATUS_REDIS_PASSWORD");

  ASSERT_TRUE(CheckArgs({"--redis_password_file=" + WriteFile("\n")}).ok());
  EXPECT_THAT(std::string(LoadServerConfig().status().message()), HasSubstr("empty"));
  ASSERT_TRUE(CheckArgs({"--redis_password_file=/nonexistent/pw"}).ok());
  EXPECT_THAT(std::string(LoadServerConfig().status().message()), HasSubstr("cannot read"));
}

TEST_F(ServerConfigTest, SentinelsInsteadOfRedis) {
  ASSERT_TRUE(CheckArgs({"--redis_sentinels=10.0.0.1:26379, s2:26380", "--redis_master_name=m",
                         "--min_replicas_acked=1", "--replica_ack_timeout=250ms"})
                  .ok());
  SetEnv("TOKENSTATUS_REDIS_SENTINEL_PASSWORD", "sentinel-pw");
  absl::StatusOr<ServerConfig> config = LoadServerConfig();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->redis.sentinels, (std::vector<std::string>{"10.0.0.1:26379", "s2:26380"}));
  EXPECT_EQ(config->redis.master_name, "m");
  EXPECT_EQ(config->redis.address, "");
  EXPECT_EQ(config->redis.sentinel_password, "sentinel-pw");
  EXPECT_EQ(config->store.min_replicas_acked, 1);
  EXPECT_EQ(config->store.replica_ack_timeout, absl::Milliseconds(250));
  EXPECT_THAT(DescribeConfig(*config), HasSubstr("sentinel_password=set"));
  EXPECT_THAT(DescribeConfig(*config), Not(HasSubstr("sentinel-pw")));

  // A password file and the environment variable at once are refused.
  ASSERT_TRUE(CheckArgs({"--redis_sentinel_password_file=" + WriteFile("file-pw\n")}).ok());
  EXPECT_EQ(LoadServerConfig().status().code(), absl::StatusCode::kInvalidArgument);
  unsetenv("TOKENSTATUS_REDIS_SENTINEL_PASSWORD");
  config = LoadServerConfig();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->redis.sentinel_password, "file-pw");

  // --redis and --redis_sentinels exclude each other.
  ASSERT_TRUE(CheckArgs({"--redis=10.0.0.2:6379"}).ok());
  EXPECT_THAT(std::string(LoadServerConfig().status().message()),
              HasSubstr("--redis and --redis_sentinels"));
}

TEST_F(ServerConfigTest, AccessRules) {
  const std::string cert = WriteFile("CERT PEM", "cert.pem");
  const std::string key = WriteFile("KEY PEM", "key.pem");
  const std::string ca = WriteFile("CA PEM", "ca.pem");
  const struct {
    std::vector<std::string> args;
    std::string refusal;  // empty: accepted
  } cases[] = {
      {{"--listen=0.0.0.0:50051"}, "non-loopback"},
      {{"--insecure_allow_unauthenticated=false"}, "no way to authenticate callers"},
      {{"--insecure_allow_unauthenticated=false", "--credentials_file=/etc/creds"}, ""},
      {{"--listen=0.0.0.0:1", "--insecure_allow_unauthenticated=false",
        "--credentials_file=/etc/creds"},
       "bearer secrets must not cross the network in clear"},
      {{"--listen=0.0.0.0:1", "--insecure_allow_unauthenticated=false",
        "--credentials_file=/etc/creds", "--tls_cert=" + cert, "--tls_key=" + key},
       ""},
      {{"--listen=0.0.0.0:1", "--insecure_allow_unauthenticated=false", "--tls_cert=" + cert,
        "--tls_key=" + key, "--tls_client_ca=" + ca},
       ""},
      {{"--tls_cert=" + cert}, "--tls_cert and --tls_key go together"},
      {{"--tls_client_ca=" + ca}, "--tls_client_ca needs --tls_cert"},
      {{"--tls_cert=/nonexistent.pem", "--tls_key=" + key}, "--tls_cert: cannot read"},
  };
  for (const auto& c : cases) {
    absl::FlagSaver saver;
    ASSERT_TRUE(CheckArgs(c.args).ok()) << c.args[0];
    absl::StatusOr<ServerConfig> config = LoadServerConfig();
    if (c.refusal.empty()) {
      EXPECT_TRUE(config.ok()) << config.status();
    } else {
      EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << c.args[0];
      EXPECT_THAT(std::string(config.status().message()), HasSubstr(c.refusal));
    }
  }
  absl::FlagSaver saver;
  ASSERT_TRUE(CheckArgs({"--tls_cert=" + cert, "--tls_key=" + key, "--tls_client_ca=" + ca}).ok());
  absl::StatusOr<ServerConfig> mutual = LoadServerConfig();
  ASSERT_TRUE(mutual.ok()) << mutual.status();
  EXPECT_EQ(mutual->access.tls_cert_pem, "CERT PEM");
  EXPECT_EQ(mutual->access.tls_key_pem, "KEY PEM");
  EXPECT_EQ(mutual->access.tls_client_ca_pem, "CA PEM");
  EXPECT_THAT(DescribeConfig(*mutual), HasSubstr("tls=mutual"));
  EXPECT_THAT(DescribeConfig(*mutual), Not(HasSubstr("KEY PEM")));

  SetEnv("TOKENSTATUS_ALLOW_EMPTY_CREDENTIALS_FILE", "true");
  ASSERT_TRUE(ApplyEnvironmentDefaults().ok());
  absl::StatusOr<ServerConfig> empty_allowed = LoadServerConfig();
  ASSERT_TRUE(empty_allowed.ok()) << empty_allowed.status();
  EXPECT_TRUE(empty_allowed->access.allow_empty_credentials_file);
  EXPECT_THAT(DescribeConfig(*empty_allowed), HasSubstr("allow_empty_credentials_file=1"));
}

}  // namespace
}  // namespace tokenstatus
