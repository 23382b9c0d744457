// Access control over real gRPC: a server with --credentials_file and no unauthenticated
// access, called with no credentials, a wrong secret and each role (bearer credentials).

#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "apitoken/v1/token_service.grpc.pb.h"
#include "client/connection.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "tests/integration/integration_test_util.h"
#include "tests/testing/redis_instance.h"
#include "tests/testing/server_process.h"
#include "tests/testing/subprocess.h"

namespace tokenstatus::integration {
namespace {

using apitoken::v1::ListTokenEventsRequest;
using apitoken::v1::ListTokenEventsResponse;
using apitoken::v1::WatchTokensRequest;
using apitoken::v1::WatchTokensResponse;

// What each test calls.
enum class Call {
  kCreate,
  kGet,
  kList,
  kEnable,
  kDisable,
  kDelete,
  kVerify,
  kWatch,
  kWatchHashes,
  kHistory,
};

constexpr Call kCalls[] = {Call::kCreate,      Call::kGet,    Call::kList,   Call::kEnable,
                           Call::kDisable,     Call::kDelete, Call::kVerify, Call::kWatch,
                           Call::kWatchHashes, Call::kHistory};

std::string NameOf(Call call) {
  static const std::map<Call, std::string> kNames = {
      {Call::kCreate, "CreateToken"},
      {Call::kGet, "GetToken"},
      {Call::kList, "ListTokens"},
      {Call::kEnable, "EnableToken"},
      {Call::kDisable, "DisableToken"},
      {Call::kDelete, "DeleteToken"},
      {Call::kVerify, "VerifyToken"},
      {Call::kWatch, "WatchTokens"},
      {Call::kWatchHashes, "WatchTokens(include_secret_hash)"},
      {Call::kHistory, "ListTokenEvents"}};
  return kNames.at(call);
}

// A caller: its name in the credentials file and its bearer secret (none: no credentials).
struct Caller {
  std::string principal;
  std::optional<std::string> secret;
};

// Writes `lines` to `path`.
void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
}

class AccessControlTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    temp_dir_ = new TempDir();
    credentials_path_ = new std::string(temp_dir_->File("credentials"));
    WriteFile(*credentials_path_, CredentialsFile(/*with_reader=*/true));
    absl::StatusOr<std::unique_ptr<testing::ServerProcess>> server = testing::ServerProcess::Start(
        {.redis_address = testing::SharedRedis().address(),
         .key_prefix = testing::UniqueKeyPrefix(),
         // Only SIGHUP reloads here (the tests count the reloads); the file's own changes are
         // CredentialsFileTest's.
         .extra_flags = {"--insecure_allow_unauthenticated=false",
                         "--credentials_file=" + *credentials_path_,
                         absl::StrCat("--max_watchers_per_principal=", kWatchersPerPrincipal),
                         "--max_request_bytes=4096", "--reload_check_interval=0"}});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
    // Reads and watches need the mirror (they would wait or be refused until it loads).
    ASSERT_TRUE(server_->WaitForLogLine("event=mirror_loaded", absl::Seconds(20)));
  }
  void SetUp() override { ASSERT_NE(server_, nullptr) << "tokenstatus-server did not start"; }
  static void TearDownTestSuite() {
    delete server_;
    delete credentials_path_;
    delete temp_dir_;
    server_ = nullptr;
  }

  // The credentials file: one line per role (the reader's optional, for the reload test), and
  // two lines (two roles) for one principal.
  static std::string CredentialsFile(bool with_reader) {
    return absl::StrCat(
        Sha256Hex(kAdmin.secret.value()), " admin ", kAdmin.principal, "\n",
        Sha256Hex(kOperator.secret.value()), " operator ", kOperator.principal, "\n",
        with_reader
            ? absl::StrCat(Sha256Hex(kReader.secret.value()), " reader ", kReader.principal, "\n")
            : "",
        Sha256Hex(kVerifier.secret.value()), " verifier ", kVerifier.principal, "\n",
        Sha256Hex(kReaderVerifier.secret.value()), " reader ", kReaderVerifier.principal, "\n",
        Sha256Hex(kReaderVerifier.secret.value()), " verifier ", kReaderVerifier.principal, "\n");
  }

  static std::shared_ptr<grpc::Channel> ChannelOf(const Caller& caller) {
    ConnectionOptions options;
    options.address = server_->address();
    options.bearer_secret = caller.secret.value_or("");
    return OpenChannel(options);
  }

  // The admin's typed client, which prepares the tokens each call needs.
  static Api Admin() { return Api(ChannelOf(kAdmin)); }

  // Creates a token (importing `secret` if given) as the admin; returns its id.
  static std::string NewToken(const std::string& secret = "") {
    const std::string id = NewTokenId();
    Rpc<CreateTokenResponse> created =
        Admin().Create(ImportRequest(id, secret.empty() ? NewSecret(id) : secret, kAccount));
    EXPECT_TRUE(created.ok()) << Describe(created.status);
    return id;
  }

  // Makes `call` as `caller` (preparing what it needs as the admin) and returns its code; a
  // watch counts as OK once its first message arrives.
  static grpc::StatusCode Invoke(const Caller& caller, Call call) {
    const Api api(ChannelOf(caller));
    switch (call) {
      case Call::kCreate: {
        CreateTokenRequest request;
        request.set_account_id(kAccount);
        request.set_name("made-by-" + caller.principal);
        return api.Create(request).status.error_code();
      }
      case Call::kGet:
        return api.Get(NewToken()).status.error_code();
      case Call::kList: {
        ListTokensRequest request;
        request.set_account_id(kAccount);
        return api.List(request).status.error_code();
      }
      case Call::kEnable: {
        const std::string id = NewToken();
        EXPECT_TRUE(Admin().Disable(id).ok());
        return api.Enable(id).status.error_code();
      }
      case Call::kDisable:
        return api.Disable(NewToken()).status.error_code();
      case Call::kDelete:
        return api.Delete(NewToken()).status.error_code();
      case Call::kVerify: {
        const std::string id = NewTokenId();
        const std::string secret = NewSecret(id);
        EXPECT_TRUE(Admin().Create(ImportRequest(id, secret, kAccount)).ok());
        Rpc<VerifyTokenResponse> verified = api.Verify(secret);
        if (verified.ok()) {
          EXPECT_EQ(verified.response.result(), VerifyTokenResponse::RESULT_VALID);
        }
        return verified.status.error_code();
      }
      case Call::kWatch:
      case Call::kWatchHashes:
        return FirstWatchMessage(caller, call == Call::kWatchHashes).status.error_code();
      case Call::kHistory: {
        ListTokenEventsRequest request;
        request.set_token_id(NewToken());
        ListTokenEventsResponse response;
        grpc::ClientContext context;
        context.set_deadline(absl::ToChronoTime(absl::Now() + kRpcTimeout));
        return TokenService::NewStub(ChannelOf(caller))
            ->ListTokenEvents(&context, request, &response)
            .error_code();
      }
    }
    return grpc::StatusCode::UNKNOWN;
  }

  // Opens a watch of kAccount with the initial state as `caller` and reads its first message.
  static Rpc<WatchTokensResponse> FirstWatchMessage(const Caller& caller, bool hashes) {
    WatchTokensRequest request;
    request.set_send_initial_state(true);
    request.set_account_id(kAccount);
    request.set_include_secret_hash(hashes);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + kRpcTimeout));
    auto stub = TokenService::NewStub(ChannelOf(caller));
    auto reader = stub->WatchTokens(&context, request);
    Rpc<WatchTokensResponse> first;
    if (reader->Read(&first.response)) {
      context.TryCancel();
      reader->Finish().IgnoreError();
      first.status = grpc::Status::OK;
      return first;
    }
    first.status = reader->Finish();
    return first;
  }

  static testing::ServerProcess& server() { return *server_; }

  // The server has a dataset of its own (a unique key prefix): fixed names suffice.
  static inline const std::string kAccount = "ACC-7700-0001";
  static constexpr int kWatchersPerPrincipal = 3;
  static inline const Caller kAdmin{"root@ops", "bearer-admin-6Qm2vX9kLr"};
  static inline const Caller kOperator{"oncall@ops", "bearer-operator-Zt4pW8nQ1c"};
  static inline const Caller kReader{"dashboard", "bearer-reader-Hy7dK3sJ0b"};
  static inline const Caller kVerifier{"spiffe://platform/ns/edge/sa/gateway",
                                       "bearer-verifier-Pe5rN2xM8a"};
  static inline const Caller kReaderVerifier{"sidecar.example", "bearer-both-Lc9tB6wF4g"};

  static testing::ServerProcess* server_;
  static TempDir* temp_dir_;
  static std::string* credentials_path_;
};

testing::ServerProcess* AccessControlTest::server_ = nullptr;
TempDir* AccessControlTest::temp_dir_ = nullptr;
std::string* AccessControlTest::credentials_path_ = nullptr;

TEST_F(AccessControlTest, RoleByRpcMatrix) {
  using grpc::StatusCode;
  constexpr StatusCode OK = StatusCode::OK;
  constexpr StatusCode DENIED = StatusCode::PERMISSION_DENIED;
  constexpr StatusCode UNAUTH = StatusCode::UNAUTHENTICATED;
  const Caller nobody{"nobody", std::nullopt};
  const Caller wrong{"wrong", "not-a-known-secret"};
  // Columns in kCalls order: Create Get List Enable Disable Delete Verify Watch WatchHashes
  // History.
  const std::vector<std::pair<Caller, std::vector<StatusCode>>> matrix = {
      {nobody, {UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAUTH}},
      {wrong, {UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAUTH}},
      {kAdmin, {OK, OK, OK, OK, OK, OK, OK, OK, OK, OK}},
      {kOperator, {OK, OK, OK, OK, OK, OK, DENIED, OK, DENIED, OK}},
      {kReader, {DENIED, OK, OK, DENIED, DENIED, DENIED, DENIED, OK, DENIED, DENIED}},
      {kVerifier, {DENIED, DENIED, DENIED, DENIED, DENIED, DENIED, OK, OK, OK, DENIED}},
      {kReaderVerifier, {DENIED, OK, OK, DENIED, DENIED, DENIED, OK, OK, OK, DENIED}},
  };
  for (const auto& [caller, expected] : matrix) {
    for (size_t i = 0; i < std::size(kCalls); ++i) {
      EXPECT_EQ(Invoke(caller, kCalls[i]), expected[i])
          << caller.principal << " calling " << NameOf(kCalls[i]);
    }
  }
}

TEST_F(AccessControlTest, RefusalsCarryTheirReasonAndNeverTheSecret) {
  const Api nobody(ChannelOf(Caller{"nobody", std::nullopt}));
  EXPECT_TRUE(IsRpcError(nobody.Get(NewTokenId()).status, grpc::StatusCode::UNAUTHENTICATED,
                         "MISSING_CREDENTIALS"));
  const Api wrong(ChannelOf(Caller{"wrong", "wrong-bearer-secret"}));
  const grpc::Status refused = wrong.Get(NewTokenId()).status;
  EXPECT_TRUE(IsRpcError(refused, grpc::StatusCode::UNAUTHENTICATED, "INVALID_CREDENTIALS"));
  EXPECT_THAT(refused.error_message(), ::testing::Not(::testing::HasSubstr("wrong-bearer")));
  const Api reader(ChannelOf(kReader));
  const grpc::Status denied = reader.Disable(NewToken()).status;
  EXPECT_TRUE(IsRpcError(denied, grpc::StatusCode::PERMISSION_DENIED, "PERMISSION_DENIED"));
  EXPECT_THAT(denied.error_message(), ::testing::HasSubstr(kReader.principal));
}

TEST_F(AccessControlTest, PermissionIsCheckedBeforeExistence) {
  const std::string unknown = NewTokenId();
  EXPECT_EQ(Api(ChannelOf(kReader)).Disable(unknown).status.error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Api(ChannelOf(kVerifier)).Get(unknown).status.error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Api(ChannelOf(Caller{"nobody", std::nullopt})).Disable(unknown).status.error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Api(ChannelOf(kOperator)).Disable(unknown).status.error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(AccessControlTest, EveryRefusalIsLoggedExactlyOnce) {
  const Caller nobody{"nobody", std::nullopt};
  // Each refused call names a token id of its own, so that its log lines can be counted.
  std::vector<std::string> ids;
  const auto next_id = [&ids] { return ids.emplace_back(NewTokenId()); };
  EXPECT_EQ(Api(ChannelOf(nobody)).Get(next_id()).status.error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Api(ChannelOf(nobody)).Disable(next_id()).status.error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Api(ChannelOf(kVerifier)).Get(next_id()).status.error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Api(ChannelOf(kReader)).Enable(next_id()).status.error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Api(ChannelOf(kReader)).Get(next_id()).status.error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Api(ChannelOf(kOperator)).Delete(next_id()).status.error_code(),
            grpc::StatusCode::NOT_FOUND);
  GetTokenRequest negative;
  negative.set_token_id(next_id());
  negative.set_min_revision(-1);
  EXPECT_EQ(Api(ChannelOf(kReader)).Get(negative).status.error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // The server writes its log in order: once the last refusal's line is read, so are the others.
  ASSERT_TRUE(server().WaitForLogLine(absl::StrCat("token=", ids.back()), absl::Seconds(10)));
  const std::vector<std::string> lines = server().LogLines();
  for (const std::string& id : ids) {
    const auto refusals = std::count_if(lines.begin(), lines.end(), [&](const std::string& line) {
      return absl::StrContains(line, "event=call_refused") &&
             absl::StrContains(line, absl::StrCat("token=", id, " "));
    });
    EXPECT_EQ(refusals, 1) << "refusal lines of the call about " << id;
  }
}

TEST_F(AccessControlTest, UpdatedByIsTheAuthenticatedPrincipal) {
  const std::string id = NewToken();
  Rpc<DisableTokenResponse> disabled = Api(ChannelOf(kOperator)).Disable(id);
  ASSERT_TRUE(disabled.ok()) << Describe(disabled.status);
  EXPECT_EQ(disabled.response.token().updated_by(), kOperator.principal);
  EXPECT_EQ(Admin().Get(id).response.token().updated_by(), kOperator.principal);
}

TEST_F(AccessControlTest, ReaderWatchNeverCarriesSecretHashesVerifierWatchDoes) {
  NewToken();
  Rpc<WatchTokensResponse> reader = FirstWatchMessage(kReader, /*hashes=*/false);
  ASSERT_TRUE(reader.ok()) << Describe(reader.status);
  ASSERT_GT(reader.response.tokens_size(), 0);
  for (const Token& token : reader.response.tokens()) EXPECT_EQ(token.secret_sha256(), "");
  EXPECT_EQ(FirstWatchMessage(kReader, /*hashes=*/true).status.error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  Rpc<WatchTokensResponse> verifier = FirstWatchMessage(kVerifier, /*hashes=*/true);
  ASSERT_TRUE(verifier.ok()) << Describe(verifier.status);
  ASSERT_GT(verifier.response.tokens_size(), 0);
  for (const Token& token : verifier.response.tokens()) {
    EXPECT_EQ(token.secret_sha256().size(), 32);
  }
}

TEST_F(AccessControlTest, HealthAndReflectionStayOpen) {
  auto channel = ChannelOf(Caller{"nobody", std::nullopt});
  HealthWatcher watcher(channel);
  ASSERT_TRUE(watcher.WaitFor(grpc::health::v1::HealthCheckResponse::SERVING, kRpcTimeout))
      << watcher.History();
  grpc::health::v1::HealthCheckResponse health;
  grpc::ClientContext health_context;
  health_context.set_deadline(absl::ToChronoTime(absl::Now() + kRpcTimeout));
  ASSERT_TRUE(grpc::health::v1::Health::NewStub(channel)
                  ->Check(&health_context, grpc::health::v1::HealthCheckRequest(), &health)
                  .ok());
  EXPECT_EQ(health.status(), grpc::health::v1::HealthCheckResponse::SERVING);

  // ServerReflectionInfo with {list_services: ""} (field 7, an empty string), as grpcurl sends.
  grpc::GenericStub reflection(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + kRpcTimeout));
  grpc::CompletionQueue queue;
  auto stream = reflection.PrepareCall(
      &context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &queue);
  void* tag = nullptr;
  bool ok = false;
  stream->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(queue.Next(&tag, &ok) && ok);
  const char kListServices[] = {0x3a, 0x00};
  grpc::Slice slice(kListServices, sizeof(kListServices));
  grpc::ByteBuffer request(&slice, 1);
  stream->WriteLast(request, grpc::WriteOptions(), reinterpret_cast<void*>(2));
  ASSERT_TRUE(queue.Next(&tag, &ok) && ok);
  grpc::ByteBuffer response;
  stream->Read(&response, reinterpret_cast<void*>(3));
  ASSERT_TRUE(queue.Next(&tag, &ok) && ok) << "no reflection answer";
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string answer;
  for (const grpc::Slice& part : slices) answer.append(part.begin(), part.end());
  EXPECT_THAT(answer, ::testing::HasSubstr("apitoken.v1.TokenService"));
  grpc::Status status;
  stream->Finish(&status, reinterpret_cast<void*>(4));
  ASSERT_TRUE(queue.Next(&tag, &ok));
  EXPECT_TRUE(status.ok()) << status.error_message();
  queue.Shutdown();
  while (queue.Next(&tag, &ok)) {
  }
}

TEST_F(AccessControlTest, NoSecretInAnyLogLine) {
  // Creates (the server makes a secret), imports, verifications good and bad, refusals.
  CreateTokenRequest request;
  request.set_account_id(kAccount);
  request.set_name("logged");
  Rpc<CreateTokenResponse> created = Admin().Create(request);
  ASSERT_TRUE(created.ok());
  const std::string imported_secret = NewSecret(NewTokenId());
  NewToken(imported_secret);
  const Api verifier(ChannelOf(kVerifier));
  EXPECT_TRUE(verifier.Verify(created.response.secret()).ok());
  EXPECT_TRUE(verifier.Verify(imported_secret).ok());
  EXPECT_TRUE(verifier.Verify(imported_secret + "x").ok());
  EXPECT_FALSE(Api(ChannelOf(Caller{"w", "a-wrong-bearer-credential"})).Get(NewTokenId()).ok());
  EXPECT_FALSE(Api(ChannelOf(kReader)).Verify(created.response.secret()).ok());
  EXPECT_FALSE(Api(ChannelOf(kOperator)).Disable(NewTokenId()).ok());

  const std::vector<std::string> secrets = {created.response.secret(),   imported_secret,
                                            "a-wrong-bearer-credential", *kAdmin.secret,
                                            *kOperator.secret,           *kReader.secret,
                                            *kVerifier.secret,           *kReaderVerifier.secret};
  const std::vector<std::string> lines = server().LogLines();
  ASSERT_GT(lines.size(), 5);
  for (const std::string& line : lines) {
    for (const std::string& secret : secrets) {
      EXPECT_FALSE(absl::StrContains(line, secret)) << "a secret in the log: " << line;
    }
  }
  // Refused calls are logged, with principal, RPC and code.
  EXPECT_TRUE(server().WaitForLogLine(
      absl::StrCat("event=call_refused principal=", kReader.principal, " rpc=VerifyToken"),
      absl::Seconds(5)));
}

TEST_F(AccessControlTest, LimitsRefuseClearlyAndTheServerStaysHealthy) {
  // Watch streams per principal: the reader's fourth is refused, the verifier's first is not.
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<WatchTokensResponse>>> streams;
  auto stub = TokenService::NewStub(ChannelOf(kReader));
  for (int i = 0; i < kWatchersPerPrincipal; ++i) {
    WatchTokensRequest request;
    request.set_send_initial_state(true);
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    streams.push_back(stub->WatchTokens(contexts.back().get(), request));
    WatchTokensResponse first;
    ASSERT_TRUE(streams.back()->Read(&first)) << "stream " << i;
  }
  Rpc<WatchTokensResponse> refused = FirstWatchMessage(kReader, /*hashes=*/false);
  EXPECT_TRUE(
      IsRpcError(refused.status, grpc::StatusCode::RESOURCE_EXHAUSTED, "TOO_MANY_WATCHERS"));
  EXPECT_THAT(refused.status.error_message(), ::testing::HasSubstr(kReader.principal));
  EXPECT_TRUE(FirstWatchMessage(kVerifier, /*hashes=*/false).ok());
  for (size_t i = 0; i < streams.size(); ++i) {
    contexts[i]->TryCancel();
    streams[i]->Finish().IgnoreError();
  }

  // Requests above --max_request_bytes, and fields above their limits.
  CreateTokenRequest huge;
  huge.set_account_id(kAccount);
  huge.set_name("huge");
  huge.set_description(std::string(5000, 'd'));
  EXPECT_EQ(Admin().Create(huge).status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  CreateTokenRequest long_name;
  long_name.set_account_id(kAccount);
  long_name.set_name(std::string(201, 'n'));
  EXPECT_TRUE(IsRpcError(Admin().Create(long_name).status, grpc::StatusCode::INVALID_ARGUMENT,
                         "INVALID_NAME", "name"));
  DisableTokenRequest long_reason;
  long_reason.set_token_id(NewToken());
  long_reason.set_reason(std::string(1001, 'r'));
  EXPECT_TRUE(IsRpcError(Admin().Disable(long_reason).status, grpc::StatusCode::INVALID_ARGUMENT,
                         "INVALID_REASON", "reason"));
  // Still healthy and serving.
  EXPECT_TRUE(Admin().Get(NewToken()).ok());
}

TEST_F(AccessControlTest, SidecarSendsItsCredentialToTheUpstream) {
  const std::string id = NewTokenId();
  const std::string secret = NewSecret(id);
  ASSERT_TRUE(Admin().Create(ImportRequest(id, secret, kAccount)).ok());
  const std::string credentials = temp_dir_->File("sidecar_credentials");
  WriteFile(credentials, *kVerifier.secret + "\n");
  const std::string socket = temp_dir_->File("sidecar.sock");
  absl::StatusOr<std::unique_ptr<testing::ServerProcess>> sidecar =
      StartSidecar(server().address(), "unix:" + socket, {"--credentials_file=" + credentials});
  ASSERT_TRUE(sidecar.ok()) << sidecar.status();
  auto channel = (*sidecar)->NewChannel();
  HealthWatcher health(channel);
  ASSERT_TRUE(health.WaitFor(grpc::health::v1::HealthCheckResponse::SERVING, absl::Seconds(20)))
      << health.History();
  Rpc<VerifyTokenResponse> verified = Api(channel).Verify(secret);
  ASSERT_TRUE(verified.ok()) << Describe(verified.status);
  EXPECT_EQ(verified.response.result(), VerifyTokenResponse::RESULT_VALID);

  // Without a credential the upstream refuses its watch: the sidecar never syncs.
  const std::string other_socket = temp_dir_->File("sidecar-2.sock");
  absl::StatusOr<std::unique_ptr<testing::ServerProcess>> refused =
      StartSidecar(server().address(), "unix:" + other_socket);
  ASSERT_TRUE(refused.ok()) << refused.status();
  ASSERT_TRUE(
      server().WaitForLogLine("event=call_refused principal=- rpc=WatchTokens", absl::Seconds(20)));
  EXPECT_TRUE(IsRpcError(Api((*refused)->NewChannel()).Verify(secret).status,
                         grpc::StatusCode::UNAVAILABLE, "MIRROR_NOT_READY"));
}

TEST_F(AccessControlTest, CredentialsReloadOnSighupKeepsOtherStreams) {
  // A verifier's open stream, which must survive the reload: live once SYNCED has arrived.
  WatchTokensRequest request;
  request.set_account_id(kAccount);
  request.set_send_initial_state(true);
  grpc::ClientContext context;
  auto stub = TokenService::NewStub(ChannelOf(kVerifier));
  auto stream = stub->WatchTokens(&context, request);
  WatchTokensResponse message;
  do {
    ASSERT_TRUE(stream->Read(&message)) << "the watch ended before SYNCED";
  } while (message.kind() != WatchTokensResponse::KIND_SYNCED);

  ASSERT_TRUE(Api(ChannelOf(kReader)).Get(NewToken()).ok());
  WriteFile(*credentials_path_, CredentialsFile(/*with_reader=*/false));
  ASSERT_EQ(::kill(server().pid(), SIGHUP), 0);
  ASSERT_TRUE(server().WaitForLogLine("event=credentials_reloaded reload=1", absl::Seconds(10)));
  EXPECT_EQ(Api(ChannelOf(kReader)).Get(NewTokenId()).status.error_code(),
            grpc::StatusCode::UNAUTHENTICATED);

  const std::string id = NewToken();
  bool seen = false;
  while (!seen && stream->Read(&message)) {
    for (const auto& event : message.events()) seen |= event.token().id() == id;
  }
  EXPECT_TRUE(seen) << "the verifier's stream did not deliver a change after the reload";
  context.TryCancel();
  stream->Finish().IgnoreError();
  // Back to the suite's credentials, for the tests that may run after this one.
  WriteFile(*credentials_path_, CredentialsFile(/*with_reader=*/true));
  ASSERT_EQ(::kill(server().pid(), SIGHUP), 0);
  ASSERT_TRUE(server().WaitForLogLine("event=credentials_reloaded reload=2", absl::Seconds(10)));
}

TEST_F(AccessControlTest, AnEmptyCredentialsFileOnSighupKeepsTheOldCredentials) {
  // An empty file, and one with nothing but comments and blank lines: either would lock every
  // caller out (a truncated or half-written file, most likely). Reloads are numbered from the
  // server's start (other tests of this suite may have made some).
  int reload = 0;
  for (const std::string& line : server().LogLines()) {
    if (absl::StrContains(line, "event=credentials_reloaded reload=") ||
        absl::StrContains(line, "event=credentials_not_reloaded reload=")) {
      ++reload;
    }
  }
  for (const std::string& empty : {std::string(), std::string("# all removed\n\n")}) {
    WriteFile(*credentials_path_, empty);
    ASSERT_EQ(::kill(server().pid(), SIGHUP), 0);
    const std::string refused = absl::StrCat("event=credentials_not_reloaded reload=", ++reload);
    ASSERT_TRUE(server().WaitForLogLine(refused, absl::Seconds(10)));
    for (const std::string& line : server().LogLines()) {
      if (!absl::StrContains(line, refused)) continue;
      EXPECT_THAT(line, ::testing::HasSubstr("holds no credential"));
      EXPECT_THAT(line, ::testing::HasSubstr("kept=previous"));
    }
    EXPECT_TRUE(Api(ChannelOf(kReader)).Get(NewToken()).ok()) << "the old credentials stay";
  }
  WriteFile(*credentials_path_, CredentialsFile(/*with_reader=*/true));
  ASSERT_EQ(::kill(server().pid(), SIGHUP), 0);
  ASSERT_TRUE(server().WaitForLogLine(absl::StrCat("event=credentials_reloaded reload=", ++reload),
                                      absl::Seconds(10)));
}

// A client of the server at `address` that authenticates with the bearer `secret`.
Api ApiWithSecret(const std::string& address, const std::string& secret) {
  ConnectionOptions options;
  options.address = address;
  options.bearer_secret = secret;
  return Api(OpenChannel(options));
}

// --allow_empty_credentials_file: the operator means it.
TEST(EmptyCredentialsFileTest, AcceptedOnSighupOnlyWithTheFlag) {
  TempDir dir;
  const std::string credentials = dir.File("credentials");
  const std::string secret = "bearer-admin-for-the-empty-file-test";
  WriteFile(credentials, absl::StrCat(Sha256Hex(secret), " admin root\n"));
  absl::StatusOr<std::unique_ptr<testing::ServerProcess>> server = testing::ServerProcess::Start(
      {.redis_address = testing::SharedRedis().address(),
       .key_prefix = testing::UniqueKeyPrefix(),
       .extra_flags = {"--insecure_allow_unauthenticated=false",
                       "--credentials_file=" + credentials, "--allow_empty_credentials_file",
                       "--reload_check_interval=0"}});
  ASSERT_TRUE(server.ok()) << server.status();
  const Api admin = ApiWithSecret((*server)->address(), secret);
  ASSERT_TRUE((*server)->WaitForLogLine("event=mirror_loaded", absl::Seconds(20)));
  EXPECT_EQ(admin.Get(NewTokenId()).status.error_code(), grpc::StatusCode::NOT_FOUND);

  WriteFile(credentials, "");
  ASSERT_EQ(::kill((*server)->pid(), SIGHUP), 0);
  ASSERT_TRUE((*server)->WaitForLogLine("event=credentials_reloaded reload=1", absl::Seconds(10)));
  EXPECT_TRUE((*server)->WaitForLogLine("credentials=0", absl::Seconds(1)));
  EXPECT_EQ(admin.Get(NewTokenId()).status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

// A credentials file whose contents change is reloaded without a signal, however it was
// replaced: written in place, or renamed over (an editor; a Kubernetes Secret volume swaps a
// symlink). A broken intermediate version keeps the previous credentials.
TEST(CredentialsFileTest, ReloadedWhenItsContentsChange) {
  TempDir dir;
  const std::string credentials = dir.File("credentials");
  const std::string first = "bearer-admin-before-the-change";
  const std::string second = "bearer-admin-after-the-change";
  WriteFile(credentials, absl::StrCat(Sha256Hex(first), " admin root\n"));
  absl::StatusOr<std::unique_ptr<testing::ServerProcess>> server = testing::ServerProcess::Start(
      {.redis_address = testing::SharedRedis().address(),
       .key_prefix = testing::UniqueKeyPrefix(),
       .extra_flags = {"--insecure_allow_unauthenticated=false",
                       "--credentials_file=" + credentials, "--reload_check_interval=1s"}});
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE((*server)->WaitForLogLine("event=mirror_loaded", absl::Seconds(20)));
  auto api = [&](const std::string& secret) { return ApiWithSecret((*server)->address(), secret); };
  EXPECT_EQ(api(first).Get(NewTokenId()).status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(api(second).Get(NewTokenId()).status.error_code(), grpc::StatusCode::UNAUTHENTICATED);

  // In place.
  WriteFile(credentials, absl::StrCat(Sha256Hex(second), " admin root\n"));
  ASSERT_TRUE((*server)->WaitForLogLine("event=credentials_reloaded reload=1 cause=file_changed",
                                        absl::Seconds(10)));
  EXPECT_EQ(api(first).Get(NewTokenId()).status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(api(second).Get(NewTokenId()).status.error_code(), grpc::StatusCode::NOT_FOUND);

  // A broken version: refused, the previous credentials stay.
  WriteFile(credentials, "not a credential line\n");
  ASSERT_TRUE((*server)->WaitForLogLine(
      "event=credentials_not_reloaded reload=2 cause=file_changed", absl::Seconds(10)));
  EXPECT_EQ(api(second).Get(NewTokenId()).status.error_code(), grpc::StatusCode::NOT_FOUND);

  // Renamed over.
  const std::string next = dir.File("credentials.next");
  WriteFile(next, absl::StrCat(Sha256Hex(first), " admin root\n"));
  ASSERT_EQ(std::rename(next.c_str(), credentials.c_str()), 0);
  ASSERT_TRUE((*server)->WaitForLogLine("event=credentials_reloaded reload=3 cause=file_changed",
                                        absl::Seconds(10)));
  EXPECT_EQ(api(first).Get(NewTokenId()).status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(api(second).Get(NewTokenId()).status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST(EmptyCredentialsFileTest, RefusedAtStartWithoutTheFlag) {
  TempDir dir;
  const std::string credentials = dir.File("credentials");
  WriteFile(credentials, "# nobody yet\n");
  absl::StatusOr<testing::CommandResult> run = testing::RunCommand(
      {TOKENSTATUS_SERVER_BINARY, "--listen=127.0.0.1:0", "--insecure_allow_unauthenticated=false",
       "--credentials_file=" + credentials},
      absl::Seconds(20));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->exit_code, 2) << run->err;
  EXPECT_THAT(run->err, ::testing::HasSubstr("event=credentials_not_loaded"));
  EXPECT_THAT(run->err, ::testing::HasSubstr("holds no credential"));
}

}  // namespace
}  // namespace tokenstatus::integration
