// token-sidecar as a process: a real Redis, a real tokenstatus-server, a real token-sidecar
// (TOKENSTATUS_SIDECAR_BINARY) following it, and clients over a unix socket and over TCP. The
// sidecar's answers are compared with the server's.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/util/message_differencer.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "tests/integration/integration_test_util.h"
#include "tests/integration/watch_test_util.h"
#include "tests/testing/server_process.h"
#include "tests/testing/subprocess.h"

#ifndef TOKENSTATUS_SIDECAR_BINARY
#error "TOKENSTATUS_SIDECAR_BINARY must name the token-sidecar executable"
#endif

namespace tokenstatus::integration {
namespace {

using google::protobuf::util::MessageDifferencer;

constexpr char kListeningOn[] = "listening on ";
constexpr absl::Duration kStartTimeout = absl::Seconds(20);
// The sidecars' staleness bound in these tests, and how long a test waits for what it implies.
constexpr absl::Duration kMaxStaleness = absl::Seconds(1);
constexpr absl::Duration kHealthTimeout = absl::Seconds(20);

// A token-sidecar process (StartSidecar, integration_test_util.h).
using SidecarProcess = testing::ServerProcess;

// A loopback port that was free a moment ago (bound, then released).
int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  ::close(fd);
  return port;
}

// A token created through the server, with its secret.
struct CreatedToken {
  Token token;
  std::string secret;
};

// One server (ServerTest) and two sidecars following it: one on a unix socket, one on TCP.
class SidecarTest : public ServerTest, public ::testing::WithParamInterface<std::string> {
 protected:
  static void TearDownTestSuite() {
    delete unix_;
    delete tcp_;
    delete socket_dir_;
    unix_ = tcp_ = nullptr;
    socket_dir_ = nullptr;
    ServerTest::TearDownTestSuite();
  }

  // The suite's sidecars start with its first test, once the server runs.
  void SetUp() override {
    ServerTest::SetUp();
    if (HasFatalFailure()) return;
    if (unix_ == nullptr) {
      socket_dir_ = new TempDir();
      unix_ = StartSidecar(absl::StrCat("unix:", socket_dir_->File("sidecar.sock")));
      tcp_ = StartSidecar("127.0.0.1:0");
    }
    ASSERT_NE(unix_, nullptr);
    ASSERT_NE(tcp_, nullptr);
    sidecar_ = GetParam() == "unix" ? unix_ : tcp_;
    sidecar_api_ = std::make_unique<Api>(sidecar_->NewChannel());
  }

  static SidecarProcess* StartSidecar(const std::string& listen) {
    absl::StatusOr<std::unique_ptr<SidecarProcess>> sidecar = integration::StartSidecar(
        server().address(), listen,
        {absl::StrCat("--max_staleness=", absl::FormatDuration(kMaxStaleness))});
    EXPECT_TRUE(sidecar.ok()) << sidecar.status();
    return sidecar.ok() ? sidecar->release() : nullptr;
  }

  const Api& sidecar() const { return *sidecar_api_; }

  // Imports a new token of `account` through the server.
  static CreatedToken Create(const std::string& account) {
    const std::string id = NewTokenId();
    const std::string secret = NewSecret(id);
    Rpc<CreateTokenResponse> created = api().Create(ImportRequest(id, secret, account));
    EXPECT_TRUE(created.ok()) << Describe(created.status);
    return {created.response.token(), secret};
  }

  // GetToken on the sidecar, served at >= `min_revision`.
  Rpc<GetTokenResponse> SidecarGet(const std::string& id, int64_t min_revision) const {
    GetTokenRequest request;
    request.set_token_id(id);
    request.set_min_revision(min_revision);
    return sidecar().Get(request);
  }

  SidecarProcess* sidecar_process() const { return sidecar_; }

 private:
  static SidecarProcess* unix_;
  static SidecarProcess* tcp_;
  static TempDir* socket_dir_;
  SidecarProcess* sidecar_ = nullptr;
  std::unique_ptr<Api> sidecar_api_;
};

SidecarProcess* SidecarTest::unix_ = nullptr;
SidecarProcess* SidecarTest::tcp_ = nullptr;
TempDir* SidecarTest::socket_dir_ = nullptr;

// Tests that start sidecars of their own next to the suite's server.
class SidecarProcessTest : public ServerTest {};

::testing::AssertionResult SameMessage(const google::protobuf::Message& expected,
                                       const google::protobuf::Message& actual) {
  std::string differences;
  MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&differences);
  if (differencer.Compare(expected, actual)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << differences;
}

TEST_P(SidecarTest, GetListAndVerifyAnswerLikeTheServer) {
  const std::string account = NewAccountId();
  std::vector<CreatedToken> tokens;
  for (int i = 0; i < 5; ++i) tokens.push_back(Create(account));
  ASSERT_TRUE(api().Disable(tokens[1].token.id()).ok());
  Rpc<DeleteTokenResponse> deleted = api().Delete(tokens[2].token.id());
  ASSERT_TRUE(deleted.ok()) << Describe(deleted.status);
  const int64_t revision = deleted.response.token().revision();

  for (const CreatedToken& created : tokens) {
    Rpc<GetTokenResponse> from_sidecar = SidecarGet(created.token.id(), revision);
    Rpc<GetTokenResponse> from_server = api().Get(created.token.id());
    ASSERT_TRUE(from_sidecar.ok()) << Describe(from_sidecar.status);
    ASSERT_TRUE(from_server.ok()) << Describe(from_server.status);
    EXPECT_TRUE(SameMessage(from_server.response.token(), from_sidecar.response.token()));
    EXPECT_TRUE(from_sidecar.response.token().secret_sha256().empty());
    EXPECT_GE(from_sidecar.response.revision(), revision);
  }

  // Page by page, with the same page tokens, which each side accepts from the other.
  ListTokensRequest list;
  list.set_account_id(account);
  list.set_page_size(2);
  list.set_show_deleted(true);
  list.set_min_revision(revision);
  int pages = 0;
  do {
    Rpc<ListTokensResponse> from_sidecar = sidecar().List(list);
    Rpc<ListTokensResponse> from_server = api().List(list);
    ASSERT_TRUE(from_sidecar.ok()) << Describe(from_sidecar.status);
    ASSERT_TRUE(from_server.ok()) << Describe(from_server.status);
    ASSERT_EQ(from_sidecar.response.tokens_size(), from_server.response.tokens_size());
    for (int i = 0; i < from_server.response.tokens_size(); ++i) {
      EXPECT_TRUE(SameMessage(from_server.response.tokens(i), from_sidecar.response.tokens(i)));
      EXPECT_TRUE(from_sidecar.response.tokens(i).secret_sha256().empty());
    }
    EXPECT_EQ(from_sidecar.response.next_page_token(), from_server.response.next_page_token());
    EXPECT_EQ(from_sidecar.response.epoch(), from_server.response.epoch());
    list.set_page_token(from_server.response.next_page_token());
    ++pages;
  } while (!list.page_token().empty());
  EXPECT_EQ(pages, 3);  // 5 tokens, 2 per page

  // Every VerifyToken result.
  std::vector<std::string> secrets = {tokens[0].secret,
                                      tokens[1].secret,
                                      tokens[2].secret,
                                      NewSecret(tokens[3].token.id()),  // wrong secret
                                      NewSecret(NewTokenId()),          // unknown token
                                      "not-a-secret"};
  for (const std::string& secret : secrets) {
    Rpc<VerifyTokenResponse> from_sidecar = sidecar().Verify(secret);
    Rpc<VerifyTokenResponse> from_server = api().Verify(secret);
    ASSERT_TRUE(from_sidecar.ok()) << Describe(from_sidecar.status);
    ASSERT_TRUE(from_server.ok()) << Describe(from_server.status);
    EXPECT_TRUE(SameMessage(from_server.response, from_sidecar.response));
  }
  EXPECT_EQ(sidecar().Verify(tokens[0].secret).response.result(),
            VerifyTokenResponse::RESULT_VALID);
  EXPECT_EQ(sidecar().Verify(tokens[1].secret).response.result(),
            VerifyTokenResponse::RESULT_DISABLED);
  EXPECT_EQ(sidecar().Verify(tokens[2].secret).response.result(),
            VerifyTokenResponse::RESULT_DELETED);
  EXPECT_EQ(sidecar().Verify(secrets[3]).response.result(), VerifyTokenResponse::RESULT_NOT_FOUND);
  EXPECT_EQ(sidecar().Verify("not-a-secret").response.result(),
            VerifyTokenResponse::RESULT_MALFORMED);
}

TEST_P(SidecarTest, RequestErrorsAreTheServers) {
  GetTokenRequest malformed_id;
  malformed_id.set_token_id("TKN-nope");
  ListTokensRequest negative_page;
  negative_page.set_page_size(-1);
  ListTokensRequest bad_page_token;
  bad_page_token.set_page_token("garbage");
  GetTokenRequest negative_revision;
  negative_revision.set_token_id(NewTokenId());
  negative_revision.set_min_revision(-1);

  struct Case {
    grpc::Status from_sidecar;
    grpc::Status from_server;
    grpc::StatusCode code;
    const char* reason;
    const char* field;
  };
  const std::string unknown = NewTokenId();
  const Case cases[] = {
      {sidecar().Get(malformed_id).status, api().Get(malformed_id).status,
       grpc::StatusCode::INVALID_ARGUMENT, "INVALID_TOKEN_ID", "token_id"},
      {sidecar().Get(negative_revision).status, api().Get(negative_revision).status,
       grpc::StatusCode::INVALID_ARGUMENT, "INVALID_REVISION", "min_revision"},
      {sidecar().List(negative_page).status, api().List(negative_page).status,
       grpc::StatusCode::INVALID_ARGUMENT, "INVALID_PAGE_SIZE", "page_size"},
      {sidecar().List(bad_page_token).status, api().List(bad_page_token).status,
       grpc::StatusCode::INVALID_ARGUMENT, "INVALID_PAGE_TOKEN", "page_token"},
      {sidecar().Get(unknown).status, api().Get(unknown).status, grpc::StatusCode::NOT_FOUND,
       "TOKEN_NOT_FOUND", ""},
  };
  for (const Case& c : cases) {
    EXPECT_TRUE(IsRpcError(c.from_server, c.code, c.reason, c.field));
    EXPECT_TRUE(IsRpcError(c.from_sidecar, c.code, c.reason, c.field));
    EXPECT_EQ(c.from_sidecar.error_message(), c.from_server.error_message());
  }
}

TEST_P(SidecarTest, DisableThroughTheServerShowsUpInTheSidecar) {
  CreatedToken created = Create(NewAccountId());
  Rpc<GetTokenResponse> active = SidecarGet(created.token.id(), created.token.revision());
  ASSERT_TRUE(active.ok()) << Describe(active.status);
  EXPECT_EQ(active.response.token().state(), Token::STATE_ACTIVE);
  EXPECT_EQ(sidecar().Verify(created.secret).response.result(), VerifyTokenResponse::RESULT_VALID);

  Rpc<DisableTokenResponse> disabled = api().Disable(created.token.id());
  ASSERT_TRUE(disabled.ok()) << Describe(disabled.status);
  // min_revision waits for the event to reach the sidecar's cache.
  Rpc<GetTokenResponse> seen = SidecarGet(created.token.id(), disabled.response.token().revision());
  ASSERT_TRUE(seen.ok()) << Describe(seen.status);
  EXPECT_EQ(seen.response.token().state(), Token::STATE_DISABLED);
  EXPECT_EQ(seen.response.token().revision(), disabled.response.token().revision());
  Rpc<VerifyTokenResponse> verified = sidecar().Verify(created.secret);
  EXPECT_EQ(verified.response.result(), VerifyTokenResponse::RESULT_DISABLED);
  EXPECT_EQ(verified.response.revision(), disabled.response.token().revision());

  Rpc<EnableTokenResponse> enabled = api().Enable(created.token.id());
  ASSERT_TRUE(enabled.ok()) << Describe(enabled.status);
  seen = SidecarGet(created.token.id(), enabled.response.token().revision());
  ASSERT_TRUE(seen.ok()) << Describe(seen.status);
  EXPECT_EQ(seen.response.token().state(), Token::STATE_ACTIVE);
  EXPECT_EQ(sidecar().Verify(created.secret).response.result(), VerifyTokenResponse::RESULT_VALID);
}

TEST_P(SidecarTest, RevisionNotReachedByTheDeadline) {
  CreatedToken created = Create(NewAccountId());
  GetTokenRequest request;
  request.set_token_id(created.token.id());
  request.set_min_revision(created.token.revision() + 1000000);
  const absl::Time start = absl::Now();
  Rpc<GetTokenResponse> got = Api(sidecar_process()->NewChannel(), absl::Seconds(1)).Get(request);
  EXPECT_TRUE(IsRpcError(got.status, grpc::StatusCode::DEADLINE_EXCEEDED, "REVISION_NOT_REACHED"));
  EXPECT_TRUE(absl::StrContains(got.status.error_message(),
                                absl::StrCat("revision ", request.min_revision())))
      << got.status.error_message();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_P(SidecarTest, ChangesAreRefusedNamingTheUpstream) {
  const std::string id = NewTokenId();
  const std::string message =
      absl::StrCat("token-sidecar serves reads only; send changes to tokenstatus-server at ",
                   server().address());
  const grpc::Status statuses[] = {
      sidecar().Create(ImportRequest(id, NewSecret(id), NewAccountId())).status,
      sidecar().Enable(id).status,
      sidecar().Disable(id).status,
      sidecar().Delete(id).status,
  };
  for (const grpc::Status& status : statuses) {
    EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::UNIMPLEMENTED, "UPSTREAM_ONLY"));
    EXPECT_EQ(status.error_message(), message);
    absl::StatusOr<google::rpc::ErrorInfo> info = ErrorInfoOf(status);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->metadata().at("upstream"), server().address());
  }
  // The change was not made anywhere.
  EXPECT_TRUE(IsRpcError(api().Get(id).status, grpc::StatusCode::NOT_FOUND, "TOKEN_NOT_FOUND"));

  auto stub = TokenService::NewStub(sidecar_process()->NewChannel());
  {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + kRpcTimeout));
    apitoken::v1::ListTokenEventsRequest request;
    request.set_token_id(id);
    apitoken::v1::ListTokenEventsResponse response;
    const grpc::Status history = stub->ListTokenEvents(&context, request, &response);
    EXPECT_TRUE(IsRpcError(history, grpc::StatusCode::UNIMPLEMENTED, "UPSTREAM_ONLY"));
    EXPECT_EQ(history.error_message(),
              absl::StrCat("token-sidecar keeps no token history; ask tokenstatus-server at ",
                           server().address()));
  }
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + kRpcTimeout));
  WatchTokensRequest request;
  request.set_send_initial_state(true);
  std::unique_ptr<grpc::ClientReader<WatchTokensResponse>> reader =
      stub->WatchTokens(&context, request);
  WatchTokensResponse response;
  EXPECT_FALSE(reader->Read(&response));
  const grpc::Status watch = reader->Finish();
  EXPECT_TRUE(IsRpcError(watch, grpc::StatusCode::UNIMPLEMENTED, "UPSTREAM_ONLY"));
  EXPECT_EQ(watch.error_message(), message);
}

TEST_P(SidecarTest, HealthIsServing) {
  HealthWatcher health(sidecar_process()->NewChannel(), "apitoken.v1.TokenService");
  EXPECT_TRUE(health.WaitFor(grpc::health::v1::HealthCheckResponse::SERVING, kHealthTimeout))
      << health.History();
}

INSTANTIATE_TEST_SUITE_P(Transports, SidecarTest, ::testing::Values("unix", "tcp"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

// Reflection as grpcurl users use it: `buf curl` lists the sidecar's service.
TEST_F(SidecarProcessTest, ReflectionListsTheService) {
  const char* configured = std::getenv("TOKENSTATUS_BUF");
  absl::StatusOr<std::string> buf =
      testing::FindExecutable(configured != nullptr && *configured != '\0' ? configured : "buf");
  if (!buf.ok()) GTEST_SKIP() << "buf not found (see reflection_test.cc): " << buf.status();
  absl::StatusOr<std::unique_ptr<SidecarProcess>> sidecar =
      StartSidecar(server().address(), "127.0.0.1:0");
  ASSERT_TRUE(sidecar.ok()) << sidecar.status();
  absl::StatusOr<testing::CommandResult> listed =
      testing::RunCommand({*buf, "curl", "--protocol", "grpc", "--http2-prior-knowledge",
                           "--list-methods", absl::StrCat("http://", (*sidecar)->address())},
                          absl::Seconds(60));
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(listed->exit_code, 0) << listed->err;
  for (const char* method : {"GetToken", "ListTokens", "VerifyToken", "DisableToken"}) {
    EXPECT_TRUE(absl::StrContains(listed->out, absl::StrCat("apitoken.v1.TokenService/", method)))
        << listed->out;
  }
}

// Health and reads follow the cache: NOT_SERVING and MIRROR_NOT_READY while the upstream is not
// there yet, SERVING once synced, NOT_SERVING and CACHE_STALE once the upstream is gone for
// max_staleness (fail closed), SERVING again when it is back.
TEST(SidecarLifecycleTest, HealthFollowsSyncAndStaleness) {
  const int port = FreePort();
  ASSERT_NE(port, 0);
  const std::string upstream = absl::StrCat("127.0.0.1:", port);
  absl::StatusOr<std::unique_ptr<SidecarProcess>> sidecar =
      StartSidecar(upstream, "127.0.0.1:0",
                   {absl::StrCat("--max_staleness=", absl::FormatDuration(kMaxStaleness))});
  ASSERT_TRUE(sidecar.ok()) << sidecar.status();
  HealthWatcher health((*sidecar)->NewChannel(), "apitoken.v1.TokenService");
  Api client((*sidecar)->NewChannel());
  EXPECT_TRUE(health.WaitFor(grpc::health::v1::HealthCheckResponse::NOT_SERVING, kHealthTimeout))
      << health.History();
  EXPECT_TRUE(IsRpcError(client.Get(NewTokenId()).status, grpc::StatusCode::UNAVAILABLE,
                         "MIRROR_NOT_READY"));

  const std::string key_prefix = testing::UniqueKeyPrefix();
  auto start_server = [&]() {
    return testing::ServerProcess::Start({.redis_address = testing::SharedRedis().address(),
                                          .key_prefix = key_prefix,
                                          .extra_flags = {absl::StrCat("--listen=", upstream)}});
  };
  absl::StatusOr<std::unique_ptr<testing::ServerProcess>> server = start_server();
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_TRUE(health.WaitFor(grpc::health::v1::HealthCheckResponse::SERVING, kHealthTimeout))
      << health.History();
  const std::string id = NewTokenId();
  Rpc<CreateTokenResponse> created =
      Api((*server)->NewChannel()).Create(ImportRequest(id, NewSecret(id), NewAccountId()));
  ASSERT_TRUE(created.ok()) << Describe(created.status);
  GetTokenRequest get;
  get.set_token_id(id);
  get.set_min_revision(created.response.token().revision());
  Rpc<GetTokenResponse> got = client.Get(get);
  ASSERT_TRUE(got.ok()) << Describe(got.status);

  // The upstream goes: after max_staleness the sidecar fails closed.
  (*server)->Kill();
  EXPECT_TRUE(health.WaitFor(grpc::health::v1::HealthCheckResponse::NOT_SERVING, kHealthTimeout))
      << health.History();
  EXPECT_TRUE(IsRpcError(client.Get(id).status, grpc::StatusCode::UNAVAILABLE, "CACHE_STALE"));
  EXPECT_TRUE(IsRpcError(client.Verify(NewSecret(id)).status, grpc::StatusCode::UNAVAILABLE,
                         "CACHE_STALE"));
  EXPECT_TRUE((*sidecar)->WaitForLogLine("event=cache_not_serving", kHealthTimeout));

  server = start_server();
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_TRUE(health.WaitFor(grpc::health::v1::HealthCheckResponse::SERVING, kHealthTimeout))
      << health.History();
  got = client.Get(id);
  EXPECT_TRUE(got.ok()) << Describe(got.status);
}

// With --stale_policy=serve_last_known a stale sidecar keeps answering (health still says
// NOT_SERVING).
TEST_F(SidecarProcessTest, ServesLastKnownWhenToldTo) {
  const std::string key_prefix = testing::UniqueKeyPrefix();
  absl::StatusOr<std::unique_ptr<testing::ServerProcess>> upstream = testing::ServerProcess::Start(
      {.redis_address = testing::SharedRedis().address(), .key_prefix = key_prefix});
  ASSERT_TRUE(upstream.ok()) << upstream.status();
  absl::StatusOr<std::unique_ptr<SidecarProcess>> sidecar =
      StartSidecar((*upstream)->address(), "127.0.0.1:0",
                   {absl::StrCat("--max_staleness=", absl::FormatDuration(kMaxStaleness)),
                    "--stale_policy=serve_last_known"});
  ASSERT_TRUE(sidecar.ok()) << sidecar.status();
  const std::string id = NewTokenId();
  const std::string secret = NewSecret(id);
  Rpc<CreateTokenResponse> created =
      Api((*upstream)->NewChannel()).Create(ImportRequest(id, secret, NewAccountId()));
  ASSERT_TRUE(created.ok()) << Describe(created.status);
  Api client((*sidecar)->NewChannel());
  GetTokenRequest get;
  get.set_token_id(id);
  get.set_min_revision(created.response.token().revision());
  ASSERT_TRUE(client.Get(get).ok());

  HealthWatcher health((*sidecar)->NewChannel(), "apitoken.v1.TokenService");
  (*upstream)->Kill();
  EXPECT_TRUE(health.WaitFor(grpc::health::v1::HealthCheckResponse::NOT_SERVING, kHealthTimeout))
      << health.History();
  Rpc<GetTokenResponse> got = client.Get(id);
  ASSERT_TRUE(got.ok()) << Describe(got.status);
  EXPECT_EQ(got.response.token().state(), Token::STATE_ACTIVE);
  EXPECT_EQ(client.Verify(secret).response.result(), VerifyTokenResponse::RESULT_VALID);
}

// SIGTERM and SIGINT: exit 0, logged, the socket file removed.
TEST_F(SidecarProcessTest, StopsCleanlyOnSignals) {
  TempDir dir;
  for (int signo : {SIGTERM, SIGINT}) {
    const std::string path = dir.File("stop.sock");
    absl::StatusOr<std::unique_ptr<SidecarProcess>> sidecar =
        StartSidecar(server().address(), absl::StrCat("unix:", path));
    ASSERT_TRUE(sidecar.ok()) << sidecar.status();
    EXPECT_EQ((*sidecar)->address(), absl::StrCat("unix:", path));
    ASSERT_TRUE(Api((*sidecar)->NewChannel()).List(ListTokensRequest()).ok());
    absl::StatusOr<int> status = (*sidecar)->Stop(signo);
    ASSERT_TRUE(status.ok()) << status.status();
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << testing::DescribeWaitStatus(*status);
    EXPECT_TRUE((*sidecar)->WaitForLogLine(
        absl::StrCat("event=shutdown signal=", sigabbrev_np(signo)), absl::Seconds(1)));
    EXPECT_TRUE((*sidecar)->WaitForLogLine("event=stopped", absl::Seconds(1)));
    struct stat info {};
    EXPECT_NE(::lstat(path.c_str(), &info), 0) << path << " was left behind";
  }
}

// A socket file nobody listens on is replaced; anything else at the path is left alone.
TEST_F(SidecarProcessTest, ReplacesOnlyAStaleSocket) {
  TempDir dir;
  const std::string path = dir.File("stale.sock");
  {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0)
        << std::strerror(errno);
    ::close(fd);  // the file stays, nobody listens
  }
  absl::StatusOr<std::unique_ptr<SidecarProcess>> sidecar =
      StartSidecar(server().address(), absl::StrCat("unix:", path));
  ASSERT_TRUE(sidecar.ok()) << sidecar.status();
  EXPECT_TRUE((*sidecar)->WaitForLogLine("event=stale_socket_removed", absl::Seconds(1)));
  EXPECT_TRUE(Api((*sidecar)->NewChannel()).List(ListTokensRequest()).ok());

  // A second sidecar on the live socket refuses to start and leaves it working.
  absl::StatusOr<testing::CommandResult> second = testing::RunCommand(
      {TOKENSTATUS_SIDECAR_BINARY, absl::StrCat("--upstream=", server().address()),
       absl::StrCat("--listen=unix:", path)},
      absl::Seconds(20));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->exit_code, 1) << second->err;
  EXPECT_TRUE(absl::StrContains(second->err, "in use")) << second->err;
  EXPECT_TRUE(Api((*sidecar)->NewChannel()).List(ListTokensRequest()).ok());

  // A regular file is never removed.
  const std::string file = dir.File("not-a-socket");
  {
    const int fd = ::open(file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, "keep", 4), 4);
    ::close(fd);
  }
  absl::StatusOr<testing::CommandResult> refused = testing::RunCommand(
      {TOKENSTATUS_SIDECAR_BINARY, absl::StrCat("--upstream=", server().address()),
       absl::StrCat("--listen=unix:", file)},
      absl::Seconds(20));
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_EQ(refused->exit_code, 1) << refused->err;
  EXPECT_TRUE(absl::StrContains(refused->err, "is not a socket")) << refused->err;
  struct stat info {};
  ASSERT_EQ(::lstat(file.c_str(), &info), 0);
  EXPECT_TRUE(S_ISREG(info.st_mode));
  EXPECT_EQ(info.st_size, 4);
}

TEST(SidecarConfigTest, InvalidFlagsExitWithTwo) {
  TempDir dir;
  const std::string credentials = dir.File("credentials");
  {
    const int fd = ::open(credentials.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, "not-a-real-credential\n", 22), 22);
    ::close(fd);
  }
  for (const std::vector<std::string>& flags : std::vector<std::vector<std::string>>{
           // A bearer credential never crosses the network in clear (no connection is made).
           {"--upstream=sidecar-test.invalid:50051", "--listen=127.0.0.1:0",
            absl::StrCat("--credentials_file=", credentials)},
           {"--upstream=127.0.0.1:1", "--listen=127.0.0.1:0", "--cert=/nonexistent"},
           {"--upstream=nohost", "--listen=127.0.0.1:0"},
           {"--upstream=127.0.0.1:1", "--listen=unix:relative.sock"},
           {"--upstream=127.0.0.1:1", "--listen=127.0.0.1:0", "--stale_policy=maybe"},
           {"--upstream=127.0.0.1:1", "--listen=127.0.0.1:0", "--max_staleness=1ms"},
           {"--upstream=127.0.0.1:1", "--listen=127.0.0.1:0", "--account=ACC-1"},
           {"--upstream=127.0.0.1:1", "--listen=127.0.0.1:0", "--authz_header=x api key"},
           {"--upstream=127.0.0.1:1", "--listen=127.0.0.1:0", "--authz_token_id_header="},
           // A value that does not parse is a configuration error too, not absl's exit 1.
           {"--upstream=127.0.0.1:1", "--listen=127.0.0.1:0", "--max_staleness=soon"},
       }) {
    std::vector<std::string> argv = {TOKENSTATUS_SIDECAR_BINARY};
    argv.insert(argv.end(), flags.begin(), flags.end());
    absl::StatusOr<testing::CommandResult> result = testing::RunCommand(argv, absl::Seconds(20));
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->exit_code, 2) << absl::StrJoin(flags, " ") << ": " << result->err;
    EXPECT_TRUE(absl::StrContains(result->err, "token-sidecar: ")) << result->err;
    EXPECT_FALSE(absl::StrContains(result->err, "not-a-real-credential")) << result->err;
  }
}

}  // namespace
}  // namespace tokenstatus::integration
