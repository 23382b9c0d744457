// Observability for real: Debian's prometheus scrapes a tokenstatus-server and a token-sidecar
// on loopback (--metrics_listen), and PromQL through its HTTP API (/api/v1/query) must agree
// with what the test did: creates, disables, refusals, a watcher cut off as too slow, the
// sidecar's decisions and its revocation lag. promtool checks each endpoint's exposition, the
// alert rules, and that every metric the Grafana dashboard and the alerts name exists.

#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/connection.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/integration/integration_test_util.h"
#include "tests/integration/watch_test_util.h"
#include "tests/testing/redis_instance.h"
#include "tests/testing/server_process.h"
#include "tests/testing/subprocess.h"

namespace tokenstatus::integration {
namespace {

using testing::ServerProcess;

// How long Prometheus gets to scrape what happened (it scrapes every second).
constexpr absl::Duration kScrapeWait = absl::Seconds(30);

// A free loopback TCP port (bound and released: Prometheus takes no port 0).
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  close(fd);
  return port;
}

// The metrics port a process logged ("event=metrics_listening address=127.0.0.1:<port>").
int MetricsPortOf(ServerProcess& process) {
  if (!process.WaitForLogLine("event=metrics_listening", absl::Seconds(10))) return 0;
  for (const std::string& line : process.LogLines()) {
    const size_t at = line.find("event=metrics_listening address=");
    if (at == std::string::npos) continue;
    int port = 0;
    if (absl::SimpleAtoi(line.substr(line.rfind(':') + 1), &port)) return port;
  }
  return 0;
}

// GET http://127.0.0.1:<port><path>; nullopt if it fails or is not 200.
std::optional<std::string> HttpGet(int port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(5, 0);
  httplib::Result result = client.Get(path);
  if (!result || result->status != 200) return std::nullopt;
  return result->body;
}

// Whether `argv` ran to completion with exit code 0 (testing::RunCommand, 60 s at most); the
// failure carries its output.
::testing::AssertionResult Succeeds(std::vector<std::string> argv) {
  absl::StatusOr<testing::CommandResult> result =
      testing::RunCommand(std::move(argv), absl::Seconds(60));
  if (!result.ok()) return ::testing::AssertionFailure() << result.status();
  if (result->exit_code != 0) {
    return ::testing::AssertionFailure()
           << "exit code " << result->exit_code << ": " << result->out << result->err;
  }
  return ::testing::AssertionSuccess();
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream(path) << content;
}

// A throwaway prometheus scraping `targets` ("127.0.0.1:<port>") every second.
class Prometheus {
 public:
  static std::unique_ptr<Prometheus> Start(const TempDir& dir,
                                           const std::vector<std::string>& targets) {
    auto prometheus = std::unique_ptr<Prometheus>(new Prometheus);
    prometheus->port_ = FreePort();
    std::string config =
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n"
        "  - job_name: tokenstatus\n    static_configs:\n      - targets: [";
    for (size_t i = 0; i < targets.size(); ++i) {
      absl::StrAppend(&config, i == 0 ? "" : ", ", "'", targets[i], "'");
    }
    config += "]\n";
    WriteFile(dir.File("prometheus.yml"), config);
    // Its log goes to a file: it says much, and nothing the test needs unless it fails.
    prometheus->log_fd_ = open(dir.File("prometheus.log").c_str(), O_WRONLY | O_CREAT, 0600);
    absl::StatusOr<std::unique_ptr<testing::Subprocess>> process = testing::Subprocess::Spawn(
        {.argv = {"prometheus", "--config.file=" + dir.File("prometheus.yml"),
                  "--storage.tsdb.path=" + dir.File("tsdb"),
                  absl::StrCat("--web.listen-address=127.0.0.1:", prometheus->port_)},
         .extra_env = {},
         .stdout_fd = prometheus->log_fd_,
         .stderr_fd = prometheus->log_fd_});
    if (!process.ok()) {
      ADD_FAILURE() << "prometheus did not start: " << process.status();
      return nullptr;
    }
    prometheus->process_ = *std::move(process);
    return prometheus;
  }

  // The value of the instant vector `query`'s first sample (or a scalar); nullopt if the
  // query fails or returns nothing.
  std::optional<double> Query(const std::string& query) const {
    httplib::Client client("127.0.0.1", port_);
    client.set_read_timeout(5, 0);
    httplib::Result result =
        client.Get("/api/v1/query", httplib::Params{{"query", query}}, httplib::Headers{});
    if (!result || result->status != 200) return std::nullopt;
    google::protobuf::Struct answer;
    if (!google::protobuf::util::JsonStringToMessage(result->body, &answer).ok()) {
      return std::nullopt;
    }
    const auto& data = answer.fields().at("data").struct_value().fields();
    const google::protobuf::Value* value = nullptr;
    if (data.at("resultType").string_value() == "scalar") {
      value = &data.at("result");
    } else {
      const auto& samples = data.at("result").list_value().values();
      if (samples.empty()) return std::nullopt;
      value = &samples[0].struct_value().fields().at("value");
    }
    double number = 0;
    if (value->list_value().values_size() != 2 ||
        !absl::SimpleAtod(value->list_value().values(1).string_value(), &number)) {
      return std::nullopt;
    }
    return number;
  }

  // Waits until `query` gives a value `accept` takes; the last value seen otherwise.
  template <typename Accept>
  std::optional<double> Await(const std::string& query, Accept accept) const {
    std::optional<double> value;
    for (const absl::Time deadline = absl::Now() + kScrapeWait; absl::Now() < deadline;) {
      value = Query(query);
      if (value.has_value() && accept(*value)) return value;
      absl::SleepFor(absl::Milliseconds(250));  // Prometheus announces no scrape to wait for
    }
    return value;
  }

  ~Prometheus() {
    process_.reset();
    if (log_fd_ >= 0) close(log_fd_);
  }

 private:
  Prometheus() = default;
  int port_ = 0;
  int log_fd_ = -1;
  std::unique_ptr<testing::Subprocess> process_;
};

TEST(PrometheusTest, QueriesAgreeWithWhatHappened) {
  constexpr int kTokens = 6;
  constexpr int kDisables = 4;
  constexpr int kRefusals = 3;
  constexpr int kQueueSize = 16;
  constexpr int kSlowChanges = 150;
  TempDir dir;
  const std::string reader_secret = NewSecret(NewTokenId());
  WriteFile(dir.File("credentials"),
            absl::StrCat(Sha256Hex(reader_secret), " reader dashboards\n"));

  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      ServerProcess::Start({.redis_address = testing::SharedRedis().address(),
                            .key_prefix = testing::UniqueKeyPrefix(),
                            .extra_flags = {"--metrics_listen=127.0.0.1:0",
                                            "--credentials_file=" + dir.File("credentials"),
                                            absl::StrCat("--watch_queue_size=", kQueueSize)}});
  ASSERT_TRUE(server.ok()) << server.status();
  const int server_metrics = MetricsPortOf(**server);
  ASSERT_NE(server_metrics, 0);
  absl::StatusOr<std::unique_ptr<ServerProcess>> sidecar =
      StartSidecar((*server)->address(), "127.0.0.1:0", {"--metrics_listen=127.0.0.1:0"});
  ASSERT_TRUE(sidecar.ok()) << sidecar.status();
  const int sidecar_metrics = MetricsPortOf(**sidecar);
  ASSERT_NE(sidecar_metrics, 0);
  std::unique_ptr<Prometheus> prometheus = Prometheus::Start(
      dir,
      {absl::StrCat("127.0.0.1:", server_metrics), absl::StrCat("127.0.0.1:", sidecar_metrics)});
  ASSERT_NE(prometheus, nullptr);
  EXPECT_EQ(prometheus->Await("sum(up)", [](double up) { return up == 2; }), 2);

  // Creates and disables through the server; the sidecar answers VerifyToken for each.
  const Api api((*server)->NewChannel());
  const Api sidecar_api((*sidecar)->NewChannel());
  const std::string account = NewAccountId();
  std::vector<std::pair<std::string, std::string>> tokens;  // id, secret
  for (int i = 0; i < kTokens; ++i) {
    const std::string id = NewTokenId();
    const std::string secret = NewSecret(id);
    ASSERT_TRUE(api.Create(ImportRequest(id, secret, account)).ok());
    tokens.emplace_back(id, secret);
  }
  int64_t last = 0;
  for (int i = 0; i < kDisables; ++i) {
    Rpc<DisableTokenResponse> disabled = api.Disable(tokens[i].first);
    ASSERT_TRUE(disabled.ok()) << Describe(disabled.status);
    last = disabled.response.token().revision();
  }
  // Refusals: a reader may not disable.
  ConnectionOptions reader;
  reader.address = (*server)->address();
  reader.bearer_secret = reader_secret;
  const Api reader_api(OpenChannel(reader));
  for (int i = 0; i < kRefusals; ++i) {
    EXPECT_TRUE(IsRpcError(reader_api.Disable(tokens[kDisables].first).status,
                           grpc::StatusCode::PERMISSION_DENIED, "PERMISSION_DENIED"));
  }
  // The sidecar's verdicts once it has the last disable: kDisables denials, the rest allowed.
  GetTokenRequest wait;
  wait.set_token_id(tokens[0].first);
  wait.set_min_revision(last);
  ASSERT_TRUE(sidecar_api.Get(wait).ok());
  for (const auto& [id, secret] : tokens) ASSERT_TRUE(sidecar_api.Verify(secret).ok());

  // A watcher that never reads, with a queue of kQueueSize messages, is cut off as too slow.
  const std::unique_ptr<TokenService::Stub> narrow =
      TokenService::NewStub(NewNarrowChannel((*server)->address()));
  Watcher slow(*narrow, FromNow(), /*paused=*/true);
  absl::StatusOr<Token> flipping = NewToken(api, account, std::string(2000, 'd'));
  ASSERT_TRUE(flipping.ok()) << flipping.status();
  for (int i = 0; i < kSlowChanges; ++i) {
    absl::StatusOr<Token> flipped = Flip(api, *flipping, std::string(1000, 'r'));
    ASSERT_TRUE(flipped.ok()) << flipped.status();
    flipping = flipped;
  }
  slow.Resume();
  std::optional<grpc::Status> end = slow.WaitForEnd();
  ASSERT_TRUE(end.has_value()) << slow.Summary();
  ASSERT_TRUE(IsRpcError(*end, grpc::StatusCode::RESOURCE_EXHAUSTED, "WATCHER_FELL_BEHIND"))
      << Describe(*end);

  const auto equals = [](double expected) {
    return [expected](double v) { return v == expected; };
  };
  EXPECT_EQ(prometheus->Await("tokenstatus_changes_total{type=\"disabled\"}",
                              equals(kDisables + kSlowChanges / 2)),
            kDisables + kSlowChanges / 2);
  EXPECT_EQ(prometheus->Await("tokenstatus_changes_total{type=\"created\"}", equals(kTokens + 1)),
            kTokens + 1);
  EXPECT_EQ(prometheus->Await("sum(grpc_server_handled_total{grpc_code=\"PermissionDenied\"})",
                              equals(kRefusals)),
            kRefusals);
  EXPECT_EQ(prometheus->Await("tokenstatus_calls_refused_total{reason=\"PERMISSION_DENIED\"}",
                              equals(kRefusals)),
            kRefusals);
  EXPECT_EQ(
      prometheus->Await("tokenstatus_watchers_ended_total{reason=\"fell_behind\"}", equals(1)), 1);
  // The same stream, as a call: ended RESOURCE_EXHAUSTED.
  EXPECT_EQ(prometheus->Await("grpc_server_handled_total{grpc_method=\"WatchTokens\","
                              "grpc_code=\"ResourceExhausted\"}",
                              equals(1)),
            1);
  EXPECT_EQ(
      prometheus->Await("tokenstatus_sidecar_decisions_total{rpc=\"VerifyToken\",result=\"deny\"}",
                        equals(kDisables)),
      kDisables);
  EXPECT_EQ(
      prometheus->Await("tokenstatus_sidecar_decisions_total{rpc=\"VerifyToken\",result=\"allow\"}",
                        equals(kTokens - kDisables)),
      kTokens - kDisables);
  EXPECT_EQ(prometheus->Await("tokenstatus_cache_fresh", equals(1)), 1);
  EXPECT_EQ(prometheus->Await("tokenstatus_mirror_loaded", equals(1)), 1);
  EXPECT_EQ(prometheus->Await("tokenstatus_redis_up", equals(1)), 1);
  // The sidecar applied every change: its propagation histogram counts them, and its p99 is a
  // number (seconds, from the changes' commit times).
  const double changes = kTokens + kDisables + 1 + kSlowChanges;
  EXPECT_EQ(prometheus->Await("tokenstatus_cache_propagation_seconds_count", equals(changes)),
            changes);
  const std::optional<double> p99 = prometheus->Await(
      "histogram_quantile(0.99, rate(tokenstatus_cache_propagation_seconds_bucket[1m]))",
      [](double v) { return v == v; });  // not NaN
  ASSERT_TRUE(p99.has_value());
  EXPECT_GE(*p99, 0);
  EXPECT_LT(*p99, 10);

  // promtool on each exposition; every name the dashboard and the alerts use exists.
  std::vector<std::string> scrapes;
  for (const auto& [name, port] :
       {std::pair{"server", server_metrics}, {"sidecar", sidecar_metrics}}) {
    std::optional<std::string> text = HttpGet(port, "/metrics");
    ASSERT_TRUE(text.has_value()) << name;
    const std::string file = dir.File(absl::StrCat(name, ".prom"));
    WriteFile(file, *text);
    scrapes.push_back(file);
    // promtool check metrics reads the exposition from its stdin.
    EXPECT_TRUE(Succeeds({"sh", "-c", "promtool check metrics < \"$0\"", file})) << name;
    EXPECT_FALSE(HttpGet(port, "/other").has_value()) << "only /metrics answers";
    // No token id, account or secret in any label (unbounded, and not the metrics' business).
    EXPECT_FALSE(absl::StrContains(*text, "TKN-")) << name;
    EXPECT_FALSE(absl::StrContains(*text, account)) << name;
    EXPECT_FALSE(absl::StrContains(*text, reader_secret)) << name;
    for (const auto& [id, secret] : tokens) EXPECT_FALSE(absl::StrContains(*text, secret)) << name;
  }
  const std::string deploy = TOKENSTATUS_SOURCE_DIR "/deploy";
  EXPECT_TRUE(Succeeds({"promtool", "check", "rules", deploy + "/prometheus/alerts.yml"}));
  EXPECT_TRUE(
      Succeeds({"node", deploy + "/test/check_dashboard.mjs", deploy + "/grafana/tokenstatus.json",
                scrapes[0], scrapes[1], "--rules", deploy + "/prometheus/alerts.yml"}));
}

}  // namespace
}  // namespace tokenstatus::integration
