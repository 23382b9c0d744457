// token-sidecar's Envoy ext_authz Check as a process: a real Redis, a real tokenstatus-server,
// real token-sidecars following it, and envoy.service.auth.v3.Authorization/Check called over
// gRPC the way Envoy's ext_authz filter calls it (Envoy itself is not packaged for Debian; the
// wire format is Envoy's). Tokens are made at the server; the sidecars answer from their caches.

#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "envoy/service/auth/v3/external_auth.grpc.pb.h"
#include "google/rpc/error_details.pb.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "tests/integration/integration_test_util.h"
#include "tests/testing/server_process.h"

namespace tokenstatus::integration {
namespace {

using envoy::config::core::v3::HeaderValue;
using envoy::config::core::v3::HeaderValueOption;
using envoy::service::auth::v3::Authorization;
using envoy::service::auth::v3::CheckRequest;
using envoy::service::auth::v3::CheckResponse;
using google::protobuf::RepeatedPtrField;

using SidecarProcess = testing::ServerProcess;

constexpr absl::Duration kMaxStaleness = absl::Seconds(1);
constexpr absl::Duration kHealthTimeout = absl::Seconds(20);
// How soon a disable made at the server must be denied by the sidecar's Check: the cache's
// propagation (p99 ~1 ms in make bench) with room for a loaded 2-core test machine.
constexpr absl::Duration kDisableToDenyBound = absl::Seconds(2);
// google.rpc.Code values of CheckResponse.status.
constexpr int kOk = 0;
constexpr int kPermissionDenied = 7;
constexpr int kUnavailable = 14;
constexpr int kUnauthenticated = 16;

// A token created through the server, with its secret.
struct CreatedToken {
  Token token;
  std::string secret;
};

// The answer of one Check call.
struct Checked {
  grpc::Status status;
  CheckResponse response;
};

Checked CallCheck(Authorization::Stub& stub, const CheckRequest& request) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + kRpcTimeout));
  Checked checked;
  checked.status = stub.Check(&context, request, &checked.response);
  return checked;
}

// A Check request as Envoy sends it by default: headers in http.headers, keys lower-case.
CheckRequest WithHeaders(const std::vector<std::pair<std::string, std::string>>& headers) {
  CheckRequest request;
  auto* http = request.mutable_attributes()->mutable_request()->mutable_http();
  http->set_method("GET");
  http->set_path("/v1/things");
  http->set_host("api.example.com");
  for (const auto& [key, value] : headers) (*http->mutable_headers())[key] = value;
  return request;
}

CheckRequest WithBearer(const std::string& secret) {
  return WithHeaders({{"authorization", absl::StrCat("Bearer ", secret)}, {"accept", "*/*"}});
}

// The value of `key` among `headers` (each must replace, not append); "" if absent.
std::string HeaderOf(const RepeatedPtrField<HeaderValueOption>& headers, const std::string& key) {
  for (const HeaderValueOption& option : headers) {
    if (option.header().key() == key) {
      EXPECT_TRUE(option.has_append() && !option.append().value()) << option.DebugString();
      return option.header().value();
    }
  }
  return "";
}

std::string ReasonOf(const CheckResponse& response) {
  google::rpc::ErrorInfo info;
  if (response.status().details_size() != 1 || !response.status().details(0).UnpackTo(&info)) {
    return "<no ErrorInfo>";
  }
  return info.reason();
}

// Succeeds if `checked` is an OK RPC that denies with `grpc_code`, HTTP `http_code` and `reason`
// (in the status's ErrorInfo and in the JSON body).
::testing::AssertionResult IsDenial(const Checked& checked, int grpc_code, int http_code,
                                    const std::string& reason) {
  if (!checked.status.ok()) {
    return ::testing::AssertionFailure() << "the RPC failed: " << Describe(checked.status);
  }
  const CheckResponse& response = checked.response;
  const std::string body = response.denied_response().body();
  if (response.status().code() != grpc_code || !response.has_denied_response() ||
      static_cast<int>(response.denied_response().status().code()) != http_code ||
      ReasonOf(response) != reason ||
      !absl::StrContains(body, absl::StrCat("\"reason\": \"", reason, "\""))) {
    return ::testing::AssertionFailure() << "expected code " << grpc_code << ", HTTP " << http_code
                                         << ", " << reason << "; got " << response.DebugString();
  }
  return ::testing::AssertionSuccess();
}

// One server (ServerTest) and a sidecar with the default --authz_* flags following it.
class ExtAuthzTest : public ServerTest {
 protected:
  static void TearDownTestSuite() {
    delete sidecar_;
    sidecar_ = nullptr;
    ServerTest::TearDownTestSuite();
  }

  void SetUp() override {
    ServerTest::SetUp();
    if (HasFatalFailure()) return;
    if (sidecar_ == nullptr) {
      absl::StatusOr<std::unique_ptr<SidecarProcess>> sidecar =
          StartSidecar(server().address(), "127.0.0.1:0",
                       {absl::StrCat("--max_staleness=", absl::FormatDuration(kMaxStaleness))});
      ASSERT_TRUE(sidecar.ok()) << sidecar.status();
      sidecar_ = sidecar->release();
    }
    stub_ = Authorization::NewStub(sidecar_->NewChannel());
    sidecar_api_ = std::make_unique<Api>(sidecar_->NewChannel());
  }

  // Imports a new token of `account` through the server and waits until the sidecar has it.
  CreatedToken Create(const std::string& account) const {
    const std::string id = NewTokenId();
    const std::string secret = NewSecret(id);
    Rpc<CreateTokenResponse> created = api().Create(ImportRequest(id, secret, account));
    EXPECT_TRUE(created.ok()) << Describe(created.status);
    AwaitSidecar(created.response.token().revision());
    return {created.response.token(), secret};
  }

  // Waits until the sidecar's cache has reached `revision` (GetToken's min_revision).
  void AwaitSidecar(int64_t revision) const {
    GetTokenRequest request;
    request.set_token_id(NewTokenId());
    request.set_min_revision(revision);
    Rpc<GetTokenResponse> got = sidecar_api_->Get(request);
    EXPECT_TRUE(IsRpcError(got.status, grpc::StatusCode::NOT_FOUND, "TOKEN_NOT_FOUND"))
        << Describe(got.status);
  }

  Checked Check(const CheckRequest& request) const { return CallCheck(*stub_, request); }

 private:
  static SidecarProcess* sidecar_;
  std::unique_ptr<Authorization::Stub> stub_;
  std::unique_ptr<Api> sidecar_api_;
};

SidecarProcess* ExtAuthzTest::sidecar_ = nullptr;

TEST_F(ExtAuthzTest, AllowAddsTheTokensHeadersStripsTheCredentialAndSetsMetadata) {
  const std::string account = NewAccountId();
  const CreatedToken created = Create(account);
  CheckRequest request = WithBearer(created.secret);
  // A client's own x-token-id is overwritten (append false), never trusted.
  (*request.mutable_attributes()
        ->mutable_request()
        ->mutable_http()
        ->mutable_headers())["x-token-id"] = "TKN-0000-0000";
  const Checked checked = Check(request);
  ASSERT_TRUE(checked.status.ok()) << Describe(checked.status);
  const CheckResponse& response = checked.response;
  EXPECT_EQ(response.status().code(), kOk) << response.DebugString();
  ASSERT_TRUE(response.has_ok_response()) << response.DebugString();
  EXPECT_EQ(HeaderOf(response.ok_response().headers(), "x-token-id"), created.token.id());
  EXPECT_EQ(HeaderOf(response.ok_response().headers(), "x-account-id"), account);
  ASSERT_EQ(response.ok_response().headers_to_remove_size(), 1);
  EXPECT_EQ(response.ok_response().headers_to_remove(0), "authorization");
  const auto& metadata = response.dynamic_metadata().fields();
  ASSERT_EQ(metadata.size(), 3u) << response.DebugString();
  EXPECT_EQ(metadata.at("token_id").string_value(), created.token.id());
  EXPECT_EQ(metadata.at("account_id").string_value(), account);
  EXPECT_EQ(metadata.at("revision").number_value(), created.token.revision());
  EXPECT_FALSE(absl::StrContains(response.SerializeAsString(), created.secret));
}

TEST_F(ExtAuthzTest, RawHeadersInTheHeaderMap) {
  const CreatedToken created = Create(NewAccountId());
  // encode_raw_headers: each header once, the value in raw_value (or, from other senders, in
  // value).
  for (const bool raw : {true, false}) {
    CheckRequest request;
    auto* map =
        request.mutable_attributes()->mutable_request()->mutable_http()->mutable_header_map();
    for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
             {":method", "GET"},
             {"authorization", absl::StrCat("Bearer ", created.secret)},
             {"accept", "*/*"}}) {
      HeaderValue* header = map->add_headers();
      header->set_key(key);
      if (raw) {
        header->set_raw_value(value);
      } else {
        header->set_value(value);
      }
    }
    const Checked checked = Check(request);
    ASSERT_TRUE(checked.status.ok()) << Describe(checked.status);
    EXPECT_EQ(checked.response.status().code(), kOk) << checked.response.DebugString();
    EXPECT_EQ(HeaderOf(checked.response.ok_response().headers(), "x-token-id"), created.token.id());
  }
}

TEST_F(ExtAuthzTest, EachDenialHasItsHttpCodeAndReason) {
  const std::string account = NewAccountId();
  const CreatedToken disabled = Create(account);
  const CreatedToken deleted = Create(account);
  const CreatedToken active = Create(account);
  Rpc<DisableTokenResponse> disable = api().Disable(disabled.token.id());
  ASSERT_TRUE(disable.ok()) << Describe(disable.status);
  Rpc<DeleteTokenResponse> deletion = api().Delete(deleted.token.id());
  ASSERT_TRUE(deletion.ok()) << Describe(deletion.status);
  AwaitSidecar(deletion.response.token().revision());

  const Checked missing = Check(WithHeaders({{"accept", "*/*"}}));
  EXPECT_TRUE(IsDenial(missing, kUnauthenticated, 401, "MISSING_CREDENTIALS"));
  EXPECT_EQ(HeaderOf(missing.response.denied_response().headers(), "www-authenticate"), "Bearer");
  const Checked malformed = Check(WithBearer("not-a-secret"));
  EXPECT_TRUE(IsDenial(malformed, kUnauthenticated, 401, "INVALID_CREDENTIALS"));
  EXPECT_EQ(HeaderOf(malformed.response.denied_response().headers(), "www-authenticate"), "Bearer");
  EXPECT_TRUE(IsDenial(Check(WithHeaders({{"authorization", active.secret}})), kUnauthenticated,
                       401, "INVALID_CREDENTIALS"));  // no Bearer scheme

  // An unknown token and a wrong secret for a known one: the same answer, to the byte.
  const Checked unknown = Check(WithBearer(NewSecret(NewTokenId())));
  const Checked wrong_secret = Check(WithBearer(NewSecret(active.token.id())));
  EXPECT_TRUE(IsDenial(unknown, kUnauthenticated, 401, "INVALID_CREDENTIALS"));
  EXPECT_EQ(unknown.response.SerializeAsString(), wrong_secret.response.SerializeAsString());

  EXPECT_TRUE(
      IsDenial(Check(WithBearer(disabled.secret)), kPermissionDenied, 403, "TOKEN_DISABLED"));
  EXPECT_TRUE(IsDenial(Check(WithBearer(deleted.secret)), kUnauthenticated, 401, "TOKEN_DELETED"));

  // context_extensions {account_id}: the route's account, which the token must belong to.
  CheckRequest other_route = WithBearer(active.secret);
  (*other_route.mutable_attributes()->mutable_context_extensions())["account_id"] = NewAccountId();
  EXPECT_TRUE(IsDenial(Check(other_route), kPermissionDenied, 403, "PERMISSION_DENIED"));
  CheckRequest own_route = WithBearer(active.secret);
  (*own_route.mutable_attributes()->mutable_context_extensions())["account_id"] = account;
  EXPECT_EQ(Check(own_route).response.status().code(), kOk);

  // No denial shows a secret.
  for (const CreatedToken* token : {&disabled, &deleted, &active}) {
    EXPECT_FALSE(absl::StrContains(Check(WithBearer(token->secret)).response.SerializeAsString(),
                                   token->secret));
  }
}

// The event the sidecar's Check must follow: a disable at the server. Check is polled from the
// DisableToken reply until it denies; the time is printed and bounded.
TEST_F(ExtAuthzTest, DisabledAtTheServerIsDeniedWithinTheBound) {
  const CreatedToken created = Create(NewAccountId());
  const CheckRequest request = WithBearer(created.secret);
  ASSERT_EQ(Check(request).response.status().code(), kOk);

  Rpc<DisableTokenResponse> disabled = api().Disable(created.token.id());
  ASSERT_TRUE(disabled.ok()) << Describe(disabled.status);
  const absl::Time replied = absl::Now();
  Checked checked;
  int checks = 0;
  do {
    checked = Check(request);
    ++checks;
  } while (checked.status.ok() && checked.response.status().code() == kOk &&
           absl::Now() - replied < kDisableToDenyBound);
  const absl::Duration took = absl::Now() - replied;
  std::cout << absl::StrFormat("disable -> first denying Check: %.6f s (%d Checks)\n",
                               absl::ToDoubleSeconds(took), checks);
  EXPECT_TRUE(IsDenial(checked, kPermissionDenied, 403, "TOKEN_DISABLED"));
  EXPECT_LT(took, kDisableToDenyBound);

  // And enabled again, allowed again.
  Rpc<EnableTokenResponse> enabled = api().Enable(created.token.id());
  ASSERT_TRUE(enabled.ok()) << Describe(enabled.status);
  AwaitSidecar(enabled.response.token().revision());
  EXPECT_EQ(Check(request).response.status().code(), kOk);
}

// Tests that start their own server and sidecar.
class ExtAuthzProcessTest : public ServerTest {};

// --authz_header=x-api-key (a bare secret), other header names, the credential kept; Check on
// a unix socket listener.
TEST_F(ExtAuthzProcessTest, FlagsChooseTheHeaders) {
  TempDir dir;
  absl::StatusOr<std::unique_ptr<SidecarProcess>> sidecar =
      StartSidecar(server().address(), absl::StrCat("unix:", dir.File("authz.sock")),
                   {"--authz_header=X-Api-Key", "--authz_strip_credential=false",
                    "--authz_token_id_header=x-tid", "--authz_account_id_header=x-aid"});
  ASSERT_TRUE(sidecar.ok()) << sidecar.status();
  const std::string account = NewAccountId();
  const std::string id = NewTokenId();
  const std::string secret = NewSecret(id);
  Rpc<CreateTokenResponse> created = api().Create(ImportRequest(id, secret, account));
  ASSERT_TRUE(created.ok()) << Describe(created.status);
  GetTokenRequest get;
  get.set_token_id(id);
  get.set_min_revision(created.response.token().revision());
  ASSERT_TRUE(Api((*sidecar)->NewChannel()).Get(get).ok());

  std::unique_ptr<Authorization::Stub> stub = Authorization::NewStub((*sidecar)->NewChannel());
  const Checked checked = CallCheck(*stub, WithHeaders({{"x-api-key", secret}}));
  ASSERT_TRUE(checked.status.ok()) << Describe(checked.status);
  EXPECT_EQ(checked.response.status().code(), kOk) << checked.response.DebugString();
  EXPECT_EQ(HeaderOf(checked.response.ok_response().headers(), "x-tid"), id);
  EXPECT_EQ(HeaderOf(checked.response.ok_response().headers(), "x-aid"), account);
  EXPECT_EQ(checked.response.ok_response().headers_to_remove_size(), 0);
  // The Bearer header is not the credential here.
  EXPECT_TRUE(
      IsDenial(CallCheck(*stub, WithBearer(secret)), kUnauthenticated, 401, "MISSING_CREDENTIALS"));
}

// A sidecar that has heard nothing from its server for max_staleness denies with 503 and
// retry-after (fail closed), and its health for the Authorization service is NOT_SERVING.
TEST_F(ExtAuthzProcessTest, AStaleSidecarDeniesWith503) {
  absl::StatusOr<std::unique_ptr<testing::ServerProcess>> upstream =
      testing::ServerProcess::Start({.redis_address = testing::SharedRedis().address(),
                                     .key_prefix = testing::UniqueKeyPrefix()});
  ASSERT_TRUE(upstream.ok()) << upstream.status();
  absl::StatusOr<std::unique_ptr<SidecarProcess>> sidecar =
      StartSidecar((*upstream)->address(), "127.0.0.1:0",
                   {absl::StrCat("--max_staleness=", absl::FormatDuration(kMaxStaleness))});
  ASSERT_TRUE(sidecar.ok()) << sidecar.status();
  const std::string id = NewTokenId();
  const std::string secret = NewSecret(id);
  Rpc<CreateTokenResponse> created =
      Api((*upstream)->NewChannel()).Create(ImportRequest(id, secret, NewAccountId()));
  ASSERT_TRUE(created.ok()) << Describe(created.status);
  GetTokenRequest get;
  get.set_token_id(id);
  get.set_min_revision(created.response.token().revision());
  ASSERT_TRUE(Api((*sidecar)->NewChannel()).Get(get).ok());
  std::unique_ptr<Authorization::Stub> stub = Authorization::NewStub((*sidecar)->NewChannel());
  ASSERT_EQ(CallCheck(*stub, WithBearer(secret)).response.status().code(), kOk);

  HealthWatcher health((*sidecar)->NewChannel(), "envoy.service.auth.v3.Authorization");
  EXPECT_TRUE(health.WaitFor(grpc::health::v1::HealthCheckResponse::SERVING, kHealthTimeout))
      << health.History();
  (*upstream)->Kill();
  EXPECT_TRUE(health.WaitFor(grpc::health::v1::HealthCheckResponse::NOT_SERVING, kHealthTimeout))
      << health.History();
  const Checked stale = CallCheck(*stub, WithBearer(secret));
  EXPECT_TRUE(IsDenial(stale, kUnavailable, 503, "CACHE_STALE"));
  EXPECT_EQ(HeaderOf(stale.response.denied_response().headers(), "retry-after"), "1");
  // The body does not name the upstream.
  EXPECT_FALSE(absl::StrContains(stale.response.denied_response().body(), (*upstream)->address()))
      << stale.response.denied_response().body();
  // A missing credential is still a 401: no cache is needed to see it.
  EXPECT_TRUE(
      IsDenial(CallCheck(*stub, WithHeaders({})), kUnauthenticated, 401, "MISSING_CREDENTIALS"));
}

}  // namespace
}  // namespace tokenstatus::integration
