// TokenServiceImpl over a MemoryTokenStore and a TokenMirror (fed synchronously from the
// store's events after every change), through a real in-process gRPC server and stub.

#include "server/service/token_service.h"

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "apitoken/v1/token_service.grpc.pb.h"
#include "core/metrics/grpc_server_metrics.h"
#include "core/metrics/registry.h"
#include "core/status_util.h"
#include "core/token_secret.h"
#include "core/validation.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "server/mirror/token_mirror.h"
#include "server/watch/watch_hub.h"
#include "tests/testing/fault_injecting_store.h"

namespace tokenstatus {
namespace {

using apitoken::v1::CreateTokenRequest;
using apitoken::v1::CreateTokenResponse;
using apitoken::v1::DeleteTokenRequest;
using apitoken::v1::DeleteTokenResponse;
using apitoken::v1::DisableTokenRequest;
using apitoken::v1::DisableTokenResponse;
using apitoken::v1::EnableTokenRequest;
using apitoken::v1::EnableTokenResponse;
using apitoken::v1::GetTokenRequest;
using apitoken::v1::GetTokenResponse;
using apitoken::v1::ListTokensRequest;
using apitoken::v1::ListTokensResponse;
using apitoken::v1::VerifyTokenRequest;
using apitoken::v1::VerifyTokenResponse;
using testing::FaultInjectingStore;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// The ErrorInfo of a failed call, decoded from the grpc-status-details-bin trailer.
google::rpc::ErrorInfo ErrorInfoOfCall(const grpc::Status& status) {
  google::rpc::Status details;
  google::rpc::ErrorInfo info;
  if (details.ParseFromString(status.error_details()) && details.details_size() == 1) {
    details.details(0).UnpackTo(&info);
  }
  return info;
}

MATCHER_P2(FailsWith, code, reason, "") {
  const google::rpc::ErrorInfo info = ErrorInfoOfCall(arg);
  *result_listener << "code " << arg.error_code() << " reason " << info.reason() << " message \""
                   << arg.error_message() << "\"";
  return arg.error_code() == code && info.reason() == reason && info.domain() == kErrorDomain;
}

MATCHER(IsOk, "") {
  *result_listener << "code " << arg.error_code() << " message \"" << arg.error_message() << "\"";
  return arg.ok();
}

constexpr char kAccount[] = "ACC-1000-0001";

class TokenServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_.Feed(&mirror_);
    service_ =
        std::make_unique<TokenServiceImpl>(store_, mirror_, hub_, open_access_,
                                           TokenServiceOptions{}, &change_metrics_, &grpc_metrics_);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port, 0);
    channel_ =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
    stub_ = apitoken::v1::TokenService::NewStub(channel_);
  }

  void TearDown() override { server_->Shutdown(); }

  // Every call has a deadline, like a real client's.
  static std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout = absl::Seconds(10)) {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    return context;
  }

  grpc::Status Create(const CreateTokenRequest& request, CreateTokenResponse* response) {
    return stub_->CreateToken(Context().get(), request, response);
  }
  // Creates a token with a server-allocated id; returns the response.
  CreateTokenResponse CreateOk(absl::string_view account = kAccount,
                               absl::string_view name = "ci deploy") {
    CreateTokenRequest request;
    request.set_account_id(std::string(account));
    request.set_name(std::string(name));
    CreateTokenResponse response;
    EXPECT_THAT(Create(request, &response), IsOk());
    return response;
  }
  grpc::Status Get(absl::string_view id, GetTokenResponse* response, int64_t min_revision = 0,
                   absl::Duration timeout = absl::Seconds(10)) {
    GetTokenRequest request;
    request.set_token_id(std::string(id));
    request.set_min_revision(min_revision);
    return stub_->GetToken(Context(timeout).get(), request, response);
  }
  grpc::Status List(const ListTokensRequest& request, ListTokensResponse* response,
                    absl::Duration timeout = absl::Seconds(10)) {
    return stub_->ListTokens(Context(timeout).get(), request, response);
  }
  // Follows next_page_token from `request` to the end; returns the ids in order.
  std::vector<std::string> ListAll(ListTokensRequest request) {
    std::vector<std::string> ids;
    for (int pages = 0; pages < 1000; ++pages) {
      ListTokensResponse response;
      EXPECT_THAT(List(request, &response), IsOk());
      for (const Token& token : response.tokens()) ids.push_back(token.id());
      if (response.next_page_token().empty()) break;
      request.set_page_token(response.next_page_token());
    }
    return ids;
  }
  grpc::Status Enable(absl::string_view id, int64_t expected_revision = 0,
                      absl::string_view reason = "", Token* token = nullptr) {
    return Change<EnableTokenRequest, EnableTokenResponse>(
        &apitoken::v1::TokenService::Stub::EnableToken, id, expected_revision, reason, token);
  }
  grpc::Status Disable(absl::string_view id, int64_t expected_revision = 0,
                       absl::string_view reason = "", Token* token = nullptr) {
    return Change<DisableTokenRequest, DisableTokenResponse>(
        &apitoken::v1::TokenService::Stub::DisableToken, id, expected_revision, reason, token);
  }
  grpc::Status Delete(absl::string_view id, int64_t expected_revision = 0,
                      absl::string_view reason = "", Token* token = nullptr) {
    return Change<DeleteTokenRequest, DeleteTokenResponse>(
        &apitoken::v1::TokenService::Stub::DeleteToken, id, expected_revision, reason, token);
  }
  // One Enable/Disable/Delete call; `token` (if not null) gets the response's token.
  template <typename Request, typename Response>
  grpc::Status Change(grpc::Status (apitoken::v1::TokenService::Stub::*method)(grpc::ClientContext*,
                                                                               const Request&,
                                                                               Response*),
                      absl::string_view id, int64_t expected_revision, absl::string_view reason,
                      Token* token) {
    Request request;
    request.set_token_id(std::string(id));
    request.set_expected_revision(expected_revision);
    request.set_reason(std::string(reason));
    Response response;
    grpc::Status status = (stub_.get()->*method)(Context().get(), request, &response);
    if (token != nullptr) *token = response.token();
    return status;
  }
  VerifyTokenResponse VerifyOk(absl::string_view secret) {
    VerifyTokenRequest request;
    request.set_secret(std::string(secret));
    VerifyTokenResponse response;
    EXPECT_THAT(stub_->VerifyToken(Context().get(), request, &response), IsOk());
    return response;
  }
  // The stored token, read from the store directly (with its secret_sha256).
  Token Stored(const std::string& id) {
    Token token;
    store_.memory().Get(id, absl::InfiniteFuture(), [&](absl::StatusOr<TokenAtRevision> result) {
      ASSERT_TRUE(result.ok()) << result.status();
      token = result->token;
    });
    return token;
  }

  FaultInjectingStore store_;
  TokenMirror mirror_;
  WatchHub hub_{mirror_, store_};
  Authenticator open_access_{/*allow_unauthenticated=*/true};
  metrics::Registry metrics_;
  ChangeMetrics change_metrics_{metrics_};
  metrics::GrpcServerMetrics grpc_metrics_{metrics_};
  std::unique_ptr<TokenServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<apitoken::v1::TokenService::Stub> stub_;
};

TEST_F(TokenServiceTest, CreateAllocatesAnIdAndReturnsTheSecretOnce) {
  CreateTokenRequest request;
  request.set_account_id(kAccount);
  request.set_name("ci deploy");
  request.set_description("used by the deploy pipeline");
  CreateTokenResponse response;
  ASSERT_THAT(Create(request, &response), IsOk());
  const Token& token = response.token();
  EXPECT_TRUE(IsValidTokenId(token.id())) << token.id();
  EXPECT_EQ(token.account_id(), kAccount);
  EXPECT_EQ(token.name(), "ci deploy");
  EXPECT_EQ(token.description(), "used by the deploy pipeline");
  EXPECT_EQ(token.state(), Token::STATE_ACTIVE);
  EXPECT_EQ(token.revision(), 1);
  EXPECT_EQ(token.updated_by(), "anonymous");
  EXPECT_TRUE(token.has_create_time());
  EXPECT_TRUE(token.secret_sha256().empty());
  EXPECT_THAT(response.secret(), StartsWith(absl::StrCat("idt:", token.id(), ":")));
  EXPECT_EQ(ParseSecret(response.secret()), token.id());
  // Only the hash is stored.
  EXPECT_EQ(Stored(token.id()).secret_sha256(), Sha256(response.secret()));
  // Nothing returns the secret or its hash again.
  GetTokenResponse got;
  ASSERT_THAT(Get(token.id(), &got), IsOk());
  EXPECT_TRUE(got.token().secret_sha256().empty());
  EXPECT_EQ(VerifyOk(response.secret()).result(), VerifyTokenResponse::RESULT_VALID);
}

TEST_F(TokenServiceTest, CreateRetriesAnIdCollisionWithAFreshId) {
  store_.CollideNextCreates(2);
  const CreateTokenResponse response = CreateOk();
  EXPECT_EQ(store_.creates(), 3);
  EXPECT_EQ(ParseSecret(response.secret()), response.token().id());
  EXPECT_EQ(VerifyOk(response.secret()).result(), VerifyTokenResponse::RESULT_VALID);
}

TEST_F(TokenServiceTest, CreateGivesUpAfterThreeCollisions) {
  store_.CollideNextCreates(3);
  CreateTokenRequest request;
  request.set_account_id(kAccount);
  request.set_name("n");
  CreateTokenResponse response;
  EXPECT_THAT(Create(request, &response),
              FailsWith(grpc::StatusCode::ALREADY_EXISTS, reason::kTokenAlreadyExists));
  EXPECT_EQ(store_.creates(), 3);
}

TEST_F(TokenServiceTest, CreateImportsAnExistingToken) {
  const std::string secret = "idt:TKN-4321-0001:" + std::string(43, 'Q');
  CreateTokenRequest request;
  request.set_account_id(kAccount);
  request.set_name("imported");
  request.set_token_id("TKN-4321-0001");
  request.set_secret_sha256(absl::AsciiStrToUpper(absl::BytesToHexString(Sha256(secret))));
  CreateTokenResponse response;
  ASSERT_THAT(Create(request, &response), IsOk());
  EXPECT_EQ(response.token().id(), "TKN-4321-0001");
  EXPECT_TRUE(response.secret().empty());
  EXPECT_EQ(Stored("TKN-4321-0001").secret_sha256(), Sha256(secret));
  const VerifyTokenResponse verified = VerifyOk(secret);
  EXPECT_EQ(verified.result(), VerifyTokenResponse::RESULT_VALID);
  EXPECT_EQ(verified.token_id(), "TKN-4321-0001");
  EXPECT_EQ(verified.account_id(), kAccount);
  EXPECT_EQ(verified.revision(), response.token().revision());

  // The id is taken now, whatever the secret.
  request.set_secret_sha256(std::string(64, '0'));
  EXPECT_THAT(Create(request, &response),
              FailsWith(grpc::StatusCode::ALREADY_EXISTS, reason::kTokenAlreadyExists));
}

TEST_F(TokenServiceTest, CreateRejectsInvalidRequestsWithTheFieldName) {
  struct Case {
    const char* account_id;
    std::string name;
    std::string description;
    const char* token_id;
    std::string secret_sha256;
    const char* reason;
    const char* field;
  };
  const std::string hex(64, 'a');
  const std::vector<Case> cases = {
      {"", "n", "", "", "", reason::kInvalidAccountId, "account_id"},
      {"ACC-1", "n", "", "", "", reason::kInvalidAccountId, "account_id"},
      {kAccount, "", "", "", "", reason::kInvalidName, "name"},
      {kAccount, std::string(201, 'n'), "", "", "", reason::kInvalidName, "name"},
      {kAccount, "n", std::string(2001, 'd'), "", "", reason::kInvalidDescription, "description"},
      {kAccount, "n", "", "TKN-1234-5678", "", reason::kInvalidSecretHash, "secret_sha256"},
      {kAccount, "n", "", "", hex, reason::kInvalidTokenId, "token_id"},
      {kAccount, "n", "", "TKN-12", hex, reason::kInvalidTokenId, "token_id"},
      {kAccount, "n", "", "TKN-1234-5678", "xyz", reason::kInvalidSecretHash, "secret_sha256"},
  };
  for (const Case& c : cases) {
    CreateTokenRequest request;
    request.set_account_id(c.account_id);
    request.set_name(c.name);
    request.set_description(c.description);
    request.set_token_id(c.token_id);
    request.set_secret_sha256(c.secret_sha256);
    CreateTokenResponse response;
    const grpc::Status status = Create(request, &response);
    EXPECT_THAT(status, FailsWith(grpc::StatusCode::INVALID_ARGUMENT, c.reason)) << c.field;
    EXPECT_EQ(ErrorInfoOfCall(status).metadata().at("field"), c.field);
    EXPECT_THAT(status.error_message(), HasSubstr(c.field));
  }
  EXPECT_EQ(store_.creates(), 0);
}

TEST_F(TokenServiceTest, GetReturnsTheTokenAndTheServedRevision) {
  const Token created = CreateOk().token();
  CreateOk();  // revision 2
  GetTokenResponse response;
  ASSERT_THAT(Get(created.id(), &response), IsOk());
  EXPECT_EQ(response.token().id(), created.id());
  EXPECT_EQ(response.token().revision(), 1);
  EXPECT_EQ(response.revision(), 2);
  ASSERT_THAT(Get(created.id(), &response, 2), IsOk());

  // A revision the mirror has not reached: waits until the deadline (less the margin), then
  // DEADLINE_EXCEEDED naming both revisions.
  const absl::Time start = absl::Now();
  const grpc::Status ahead = Get(created.id(), &response, 3, absl::Milliseconds(500));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(400));
  EXPECT_THAT(ahead, FailsWith(grpc::StatusCode::DEADLINE_EXCEEDED, reason::kRevisionNotReached));
  EXPECT_THAT(ahead.error_message(), HasSubstr("revision 3"));
  EXPECT_THAT(ahead.error_message(), HasSubstr("revision 2"));
}

TEST_F(TokenServiceTest, GetWithMinRevisionWaitsForTheMirrorToReachIt) {
  const Token created = CreateOk().token();
  GetTokenResponse response;
  grpc::Status waited;
  std::thread reader([&] { waited = Get(created.id(), &response, 2); });
  // Whether the read is already waiting or not, the change that brings revision 2 answers it.
  CreateOk();
  reader.join();
  ASSERT_THAT(waited, IsOk());
  EXPECT_EQ(response.revision(), 2);
  EXPECT_EQ(response.token().id(), created.id());
}

TEST(TokenServiceMirrorTest, ReadsFailUntilTheMirrorHasLoaded) {
  MemoryTokenStore store;
  TokenMirror mirror;  // never loaded
  WatchHub hub(mirror, store);
  TokenServiceOptions options;
  options.mirror_load_wait = absl::Milliseconds(200);
  Authenticator open_access(/*allow_unauthenticated=*/true);
  TokenServiceImpl service(store, mirror, hub, open_access, options);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  auto stub = apitoken::v1::TokenService::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  const auto not_ready = FailsWith(grpc::StatusCode::UNAVAILABLE, reason::kMirrorNotReady);

  GetTokenRequest get;
  get.set_token_id("TKN-1000-0001");
  GetTokenResponse got;
  grpc::ClientContext get_context;
  const absl::Time start = absl::Now();
  EXPECT_THAT(stub->GetToken(&get_context, get, &got), not_ready);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(150));  // it waited for the load
  get.set_min_revision(5);
  grpc::ClientContext get_at_context;
  EXPECT_THAT(stub->GetToken(&get_at_context, get, &got), not_ready);
  ListTokensResponse listed;
  grpc::ClientContext list_context;
  EXPECT_THAT(stub->ListTokens(&list_context, ListTokensRequest(), &listed), not_ready);
  VerifyTokenRequest verify;
  absl::StatusOr<std::string> secret = GenerateSecret("TKN-1000-0001");
  ASSERT_TRUE(secret.ok());
  verify.set_secret(*secret);
  VerifyTokenResponse verified;
  grpc::ClientContext verify_context;
  EXPECT_THAT(stub->VerifyToken(&verify_context, verify, &verified), not_ready);

  // A read that arrives while the mirror loads is answered once it has.
  grpc::Status waited;
  std::thread reader([&] {
    grpc::ClientContext context;
    GetTokenRequest request;
    request.set_token_id("TKN-1000-0001");
    waited = stub->GetToken(&context, request, &got);
  });
  mirror.Reset({}, 0, "");
  reader.join();
  EXPECT_THAT(waited, FailsWith(grpc::StatusCode::NOT_FOUND, reason::kTokenNotFound));
  server->Shutdown();
}

TEST_F(TokenServiceTest, MetricsCountCallsByCodeRefusalsByReasonAndChangesByType) {
  const CreateTokenResponse created = CreateOk();
  ASSERT_THAT(Disable(created.token().id()), IsOk());
  GetTokenResponse got;
  ASSERT_FALSE(Get("TKN-9999-9999", &got).ok());
  ASSERT_FALSE(Get("not an id", &got).ok());

  const std::string text = metrics_.Render();
  const std::string get_labels =
      "grpc_type=\"unary\",grpc_service=\"apitoken.v1.TokenService\",grpc_method=\"GetToken\"";
  EXPECT_THAT(text, HasSubstr(absl::StrCat("\ngrpc_server_started_total{", get_labels, "} 2\n")));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("\ngrpc_server_handled_total{", get_labels,
                                           ",grpc_code=\"NotFound\"} 1\n")));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("\ngrpc_server_handled_total{", get_labels,
                                           ",grpc_code=\"InvalidArgument\"} 1\n")));
  EXPECT_THAT(
      text, HasSubstr(absl::StrCat("\ngrpc_server_handling_seconds_count{", get_labels, "} 2\n")));
  EXPECT_THAT(text, HasSubstr("grpc_method=\"CreateToken\",grpc_code=\"OK\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\ntokenstatus_calls_refused_total{grpc_method=\"GetToken\","
                              "reason=\"TOKEN_NOT_FOUND\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\ntokenstatus_calls_refused_total{grpc_method=\"GetToken\","
                              "reason=\"INVALID_TOKEN_ID\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\ntokenstatus_changes_total{type=\"created\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\ntokenstatus_changes_total{type=\"disabled\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\ntokenstatus_changes_total{type=\"enabled\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("\ntokenstatus_change_commit_seconds_count 2\n"));
  EXPECT_THAT(text, HasSubstr("\ntokenstatus_change_visible_seconds_count 2\n"));
}

TEST_F(TokenServiceTest, GetErrors) {
  GetTokenResponse response;
  EXPECT_THAT(Get("TKN-9999-9999", &response),
              FailsWith(grpc::StatusCode::NOT_FOUND, reason::kTokenNotFound));
  EXPECT_THAT(Get("TKN-9999", &response),
              FailsWith(grpc::StatusCode::INVALID_ARGUMENT, reason::kInvalidTokenId));
  EXPECT_THAT(Get("TKN-9999-9999", &response, -1),
              FailsWith(grpc::StatusCode::INVALID_ARGUMENT, reason::kInvalidRevision));
}

TEST_F(TokenServiceTest, TransitionsFollowTheStateMachine) {
  const Token created = CreateOk().token();
  const std::string id = created.id();
  Token token;
  ASSERT_THAT(Disable(id, 0, "leaked in a log", &token), IsOk());
  EXPECT_EQ(token.state(), Token::STATE_DISABLED);
  EXPECT_EQ(token.revision(), created.revision() + 1);
  EXPECT_EQ(token.state_reason(), "leaked in a log");
  EXPECT_EQ(token.updated_by(), "anonymous");
  EXPECT_TRUE(token.secret_sha256().empty());
  EXPECT_THAT(Disable(id),
              FailsWith(grpc::StatusCode::FAILED_PRECONDITION, reason::kTokenAlreadyDisabled));

  ASSERT_THAT(Enable(id, token.revision(), "rotated", &token), IsOk());
  EXPECT_EQ(token.state(), Token::STATE_ACTIVE);
  EXPECT_EQ(token.revision(), created.revision() + 2);
  EXPECT_EQ(token.state_reason(), "rotated");
  EXPECT_THAT(Enable(id),
              FailsWith(grpc::StatusCode::FAILED_PRECONDITION, reason::kTokenAlreadyActive));

  ASSERT_THAT(Delete(id, 0, "gone", &token), IsOk());
  EXPECT_EQ(token.state(), Token::STATE_DELETED);
  EXPECT_EQ(token.revision(), created.revision() + 3);
  for (const grpc::Status& status : {Enable(id), Disable(id), Delete(id)}) {
    EXPECT_THAT(status, FailsWith(grpc::StatusCode::FAILED_PRECONDITION, reason::kTokenDeleted));
  }
  // A disabled token can be deleted too.
  const std::string other = CreateOk().token().id();
  ASSERT_THAT(Disable(other), IsOk());
  ASSERT_THAT(Delete(other, 0, "", &token), IsOk());
  EXPECT_EQ(token.state(), Token::STATE_DELETED);
}

TEST_F(TokenServiceTest, ExpectedRevisionMismatchIsAborted) {
  const Token created = CreateOk().token();
  const grpc::Status status = Disable(created.id(), created.revision() + 5);
  EXPECT_THAT(status, FailsWith(grpc::StatusCode::ABORTED, reason::kRevisionMismatch));
  EXPECT_EQ(ErrorInfoOfCall(status).metadata().at("current_revision"),
            absl::StrCat(created.revision()));
  EXPECT_THAT(Delete(created.id(), created.revision() + 1),
              FailsWith(grpc::StatusCode::ABORTED, reason::kRevisionMismatch));
  EXPECT_THAT(Disable(created.id(), created.revision()), IsOk());
}

TEST_F(TokenServiceTest, TransitionErrorsOfTheRequestItself) {
  const std::string id = CreateOk().token().id();
  EXPECT_THAT(Disable("TKN-0000-0000"),
              FailsWith(grpc::StatusCode::NOT_FOUND, reason::kTokenNotFound));
  for (const grpc::Status& status : {Enable("bad"), Disable("bad"), Delete("bad")}) {
    EXPECT_THAT(status, FailsWith(grpc::StatusCode::INVALID_ARGUMENT, reason::kInvalidTokenId));
  }
  const grpc::Status negative = Disable(id, -1);
  EXPECT_THAT(negative, FailsWith(grpc::StatusCode::INVALID_ARGUMENT, reason::kInvalidRevision));
  EXPECT_EQ(ErrorInfoOfCall(negative).metadata().at("field"), "expected_revision");
  EXPECT_THAT(Disable(id, 0, std::string(1001, 'r')),
              FailsWith(grpc::StatusCode::INVALID_ARGUMENT, reason::kInvalidReason));
  // None of them changed anything.
  GetTokenResponse response;
  ASSERT_THAT(Get(id, &response), IsOk());
  EXPECT_EQ(response.token().state(), Token::STATE_ACTIVE);
  EXPECT_EQ(response.revision(), 1);
}

TEST_F(TokenServiceTest, ListPagesInIdOrderWithoutRepeats) {
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) ids.push_back(CreateOk().token().id());
  std::sort(ids.begin(), ids.end());
  ListTokensRequest request;
  request.set_page_size(3);
  ListTokensResponse first;
  ASSERT_THAT(List(request, &first), IsOk());
  EXPECT_EQ(first.tokens_size(), 3);
  EXPECT_FALSE(first.next_page_token().empty());
  EXPECT_EQ(first.revision(), 7);
  EXPECT_EQ(first.epoch().size(), 32u);
  for (const Token& token : first.tokens()) EXPECT_TRUE(token.secret_sha256().empty());
  EXPECT_EQ(ListAll(request), ids);
  request.set_page_size(0);
  EXPECT_EQ(ListAll(request), ids);
}

TEST_F(TokenServiceTest, ListPageSizeDefaultsTo100AndIsClampedAt1000) {
  for (int i = 0; i < 1001; ++i) {
    CreateTokenParams params;
    params.token_id = absl::StrFormat("TKN-0000-%04d", i);
    params.account_id = kAccount;
    params.name = "bulk";
    params.secret_sha256 = std::string(32, 'x');
    store_.memory().Create(params, absl::InfiniteFuture(),
                           [](absl::StatusOr<Token> token) { ASSERT_TRUE(token.ok()); });
  }
  store_.Sync();
  ListTokensRequest request;
  ListTokensResponse response;
  ASSERT_THAT(List(request, &response), IsOk());
  EXPECT_EQ(response.tokens_size(), 100);
  request.set_page_size(5000);
  ASSERT_THAT(List(request, &response), IsOk());
  EXPECT_EQ(response.tokens_size(), 1000);
  EXPECT_FALSE(response.next_page_token().empty());
  request.set_page_size(-1);
  const grpc::Status negative = List(request, &response);
  EXPECT_THAT(negative, FailsWith(grpc::StatusCode::INVALID_ARGUMENT, reason::kInvalidPageSize));
  EXPECT_EQ(ErrorInfoOfCall(negative).metadata().at("field"), "page_size");
}

TEST_F(TokenServiceTest, ListFilters) {
  const std::string a1 = CreateOk("ACC-0000-0001").token().id();
  const std::string a2 = CreateOk("ACC-0000-0001").token().id();
  const std::string b1 = CreateOk("ACC-0000-0002").token().id();
  const std::string b2 = CreateOk("ACC-0000-0002").token().id();
  ASSERT_THAT(Disable(a2), IsOk());
  ASSERT_THAT(Delete(b2), IsOk());
  auto sorted = [](std::vector<std::string> ids) {
    std::sort(ids.begin(), ids.end());
    return ids;
  };
  ListTokensRequest request;
  EXPECT_EQ(ListAll(request), sorted({a1, a2, b1}));
  request.set_show_deleted(true);
  EXPECT_EQ(ListAll(request), sorted({a1, a2, b1, b2}));
  request.set_show_deleted(false);
  request.set_state(Token::STATE_DELETED);
  EXPECT_EQ(ListAll(request), sorted({b2}));
  request.set_state(Token::STATE_DISABLED);
  EXPECT_EQ(ListAll(request), sorted({a2}));
  request.set_state(Token::STATE_ACTIVE);
  EXPECT_EQ(ListAll(request), sorted({a1, b1}));
  request.set_account_id("ACC-0000-0001");
  EXPECT_EQ(ListAll(request), sorted({a1}));
  request.set_state(Token::STATE_UNSPECIFIED);
  EXPECT_EQ(ListAll(request), sorted({a1, a2}));
  request.set_account_id("ACC-0000-0002");
  request.set_show_deleted(true);
  EXPECT_EQ(ListAll(request), sorted({b1, b2}));
}

TEST_F(TokenServiceTest, ListRejectsBadRequests) {
  for (int i = 0; i < 3; ++i) CreateOk();
  ListTokensRequest request;
  request.set_page_size(1);
  ListTokensResponse first;
  ASSERT_THAT(List(request, &first), IsOk());
  ASSERT_FALSE(first.next_page_token().empty());
  ListTokensResponse response;

  ListTokensRequest tampered = request;
  std::string token = first.next_page_token();
  token[token.size() / 2] = token[token.size() / 2] == 'A' ? 'B' : 'A';
  tampered.set_page_token(token);
  EXPECT_THAT(List(tampered, &response),
              FailsWith(grpc::StatusCode::INVALID_ARGUMENT, reason::kInvalidPageToken));

  ListTokensRequest other_filter = request;
  other_filter.set_page_token(first.next_page_token());
  other_filter.set_state(Token::STATE_ACTIVE);
  EXPECT_THAT(List(other_filter, &response),
              FailsWith(grpc::StatusCode::INVALID_ARGUMENT, reason::kInvalidPageToken));

  ListTokensRequest bad_state = request;
  bad_state.set_state(static_cast<Token::State>(9));
  EXPECT_THAT(List(bad_state, &response),
              FailsWith(grpc::StatusCode::INVALID_ARGUMENT, reason::kInvalidState));

  ListTokensRequest bad_account = request;
  bad_account.set_account_id("ACC");
  EXPECT_THAT(List(bad_account, &response),
              FailsWith(grpc::StatusCode::INVALID_ARGUMENT, reason::kInvalidAccountId));

  ListTokensRequest negative_revision = request;
  negative_revision.set_min_revision(-5);
  EXPECT_THAT(List(negative_revision, &response),
              FailsWith(grpc::StatusCode::INVALID_ARGUMENT, reason::kInvalidRevision));

  ListTokensRequest ahead = request;
  ahead.set_min_revision(4);
  EXPECT_THAT(List(ahead, &response, absl::Milliseconds(300)),
              FailsWith(grpc::StatusCode::DEADLINE_EXCEEDED, reason::kRevisionNotReached));
  ahead.set_min_revision(3);
  EXPECT_THAT(List(ahead, &response), IsOk());
}

TEST_F(TokenServiceTest, VerifyAnswersEveryResult) {
  const CreateTokenResponse created = CreateOk();
  const std::string id = created.token().id();
  VerifyTokenResponse valid = VerifyOk(created.secret());
  EXPECT_EQ(valid.result(), VerifyTokenResponse::RESULT_VALID);
  EXPECT_EQ(valid.token_id(), id);
  EXPECT_EQ(valid.account_id(), kAccount);
  EXPECT_EQ(valid.revision(), 1);

  for (const std::string& malformed :
       {std::string(), std::string("hunter2"), "idt:" + id, "idt:TKN-1:" + std::string(43, 'a'),
        created.secret() + "!"}) {
    EXPECT_EQ(VerifyOk(malformed).result(), VerifyTokenResponse::RESULT_MALFORMED) << malformed;
  }

  const VerifyTokenResponse unknown = VerifyOk("idt:TKN-0000-0001:" + std::string(43, 'a'));
  EXPECT_EQ(unknown.result(), VerifyTokenResponse::RESULT_NOT_FOUND);

  // A wrong secret for an existing id reveals nothing of the token.
  std::string wrong = created.secret();
  wrong.back() = wrong.back() == 'a' ? 'b' : 'a';
  const VerifyTokenResponse mismatch = VerifyOk(wrong);
  EXPECT_EQ(mismatch.result(), VerifyTokenResponse::RESULT_NOT_FOUND);
  EXPECT_EQ(mismatch.ByteSizeLong(), unknown.ByteSizeLong());
  EXPECT_TRUE(mismatch.token_id().empty());
  EXPECT_TRUE(mismatch.account_id().empty());
  EXPECT_EQ(mismatch.revision(), 0);

  ASSERT_THAT(Disable(id), IsOk());
  const VerifyTokenResponse disabled = VerifyOk(created.secret());
  EXPECT_EQ(disabled.result(), VerifyTokenResponse::RESULT_DISABLED);
  EXPECT_EQ(disabled.revision(), 2);
  ASSERT_THAT(Delete(id), IsOk());
  const VerifyTokenResponse deleted = VerifyOk(created.secret());
  EXPECT_EQ(deleted.result(), VerifyTokenResponse::RESULT_DELETED);
  EXPECT_EQ(deleted.token_id(), id);
  EXPECT_EQ(deleted.revision(), 3);
}

TEST_F(TokenServiceTest, StoreUnavailableFailsChangesWhileReadsAreServedFromTheMirror) {
  const CreateTokenResponse created = CreateOk();
  const std::string id = created.token().id();
  store_.SetUnavailable(true);
  const auto unavailable = FailsWith(grpc::StatusCode::UNAVAILABLE, reason::kStoreUnavailable);

  EXPECT_EQ(VerifyOk(created.secret()).result(), VerifyTokenResponse::RESULT_VALID);
  GetTokenResponse got;
  EXPECT_THAT(Get(id, &got), IsOk());
  ListTokensResponse listed;
  EXPECT_THAT(List(ListTokensRequest(), &listed), IsOk());
  EXPECT_EQ(listed.tokens_size(), 1);

  EXPECT_THAT(Disable(id), unavailable);
  EXPECT_THAT(Enable(id), unavailable);
  EXPECT_THAT(Delete(id), unavailable);
  CreateTokenRequest create;
  create.set_account_id(kAccount);
  create.set_name("n");
  CreateTokenResponse response;
  EXPECT_THAT(Create(create, &response), unavailable);

  store_.SetUnavailable(false);
  EXPECT_EQ(VerifyOk(created.secret()).result(), VerifyTokenResponse::RESULT_VALID);
}

TEST_F(TokenServiceTest, StoreDeadlineIsShortlyBeforeTheRpcDeadline) {
  const std::string id = CreateOk().token().id();
  const auto rpc_deadline = std::chrono::system_clock::now() + std::chrono::seconds(2);
  grpc::ClientContext context;
  context.set_deadline(rpc_deadline);
  DisableTokenRequest request;
  request.set_token_id(id);
  DisableTokenResponse response;
  ASSERT_THAT(stub_->DisableToken(&context, request, &response), IsOk());
  const absl::Duration margin = absl::FromChrono(rpc_deadline) - store_.last_deadline();
  // The default margin is 50 ms, less the time the request took to arrive (the server's
  // deadline is its arrival time plus the timeout sent).
  EXPECT_GE(margin, absl::Milliseconds(25));
  EXPECT_LE(margin, absl::Milliseconds(60));

  grpc::ClientContext no_deadline;
  EnableTokenRequest enable;
  enable.set_token_id(id);
  EnableTokenResponse enabled;
  ASSERT_THAT(stub_->EnableToken(&no_deadline, enable, &enabled), IsOk());
  EXPECT_EQ(store_.last_deadline(), absl::InfiniteFuture());
}

TEST_F(TokenServiceTest, LogsEveryChangeAndRefusalButNeverTheSecret) {
  ::testing::internal::CaptureStderr();
  const CreateTokenResponse created = CreateOk();
  const std::string id = created.token().id();
  ASSERT_THAT(Disable(id, 0, "leak"), IsOk());
  EXPECT_THAT(Disable(id), Not(IsOk()));
  EXPECT_THAT(Delete(id), IsOk());
  VerifyOk(created.secret());
  const std::string active_id = CreateOk().token().id();
  EXPECT_THAT(Delete(active_id), IsOk());
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(log, HasSubstr(absl::StrCat("event=token_changed principal=anonymous "
                                          "rpc=CreateToken token=",
                                          id, " from=NONE to=ACTIVE revision=1")));
  EXPECT_THAT(log, HasSubstr(absl::StrCat("event=token_changed principal=anonymous "
                                          "rpc=DisableToken token=",
                                          id, " from=ACTIVE to=DISABLED revision=2")));
  EXPECT_THAT(log, HasSubstr(absl::StrCat("event=call_refused principal=anonymous "
                                          "rpc=DisableToken token=",
                                          id,
                                          " code=FAILED_PRECONDITION "
                                          "reason=TOKEN_ALREADY_DISABLED")));
  // A delete names the state the token left.
  EXPECT_THAT(log, HasSubstr(absl::StrCat("event=token_changed principal=anonymous "
                                          "rpc=DeleteToken token=",
                                          id, " from=DISABLED to=DELETED revision=3")));
  EXPECT_THAT(log, HasSubstr(absl::StrCat("event=token_changed principal=anonymous "
                                          "rpc=DeleteToken token=",
                                          active_id, " from=ACTIVE to=DELETED revision=5")));
  const std::string opaque = created.secret().substr(created.secret().rfind(':') + 1);
  EXPECT_THAT(log, Not(HasSubstr(opaque)));
  EXPECT_THAT(log, Not(HasSubstr(absl::BytesToHexString(Sha256(created.secret())))));
}

// Waits for the next event of `cq`; its ok flag (false if the queue shut down).
bool NextOk(grpc::CompletionQueue& cq) {
  void* tag = nullptr;
  bool ok = false;
  return cq.Next(&tag, &ok) && ok;
}

TEST_F(TokenServiceTest, AWatchThatEndedBeforeItsRequestArrivedIsNotLoggedAsRefused) {
  constexpr char kWatchMethod[] = "/apitoken.v1.TokenService/WatchTokens";
  grpc::GenericStub generic(channel_);
  grpc::CompletionQueue cq;
  ::testing::internal::CaptureStderr();
  {
    // The client starts the call, then cancels it before sending its request.
    grpc::ClientContext context;
    std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call =
        generic.PrepareCall(&context, kWatchMethod, &cq);
    call->StartCall(nullptr);
    ASSERT_TRUE(NextOk(cq));
    absl::SleepFor(absl::Milliseconds(100));  // the server has the call and awaits the request
    context.TryCancel();
    grpc::Status status;
    call->Finish(&status, nullptr);
    NextOk(cq);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
  }
  absl::SleepFor(absl::Milliseconds(100));
  {
    // One that closes its side without a request gets an answer: that refusal is logged.
    grpc::ClientContext context;
    std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call =
        generic.PrepareCall(&context, kWatchMethod, &cq);
    call->StartCall(nullptr);
    ASSERT_TRUE(NextOk(cq));
    call->WritesDone(nullptr);
    ASSERT_TRUE(NextOk(cq));
    grpc::Status status;
    call->Finish(&status, nullptr);
    ASSERT_TRUE(NextOk(cq));
    EXPECT_THAT(status, FailsWith(grpc::StatusCode::INVALID_ARGUMENT, reason::kInvalidArgument));
  }
  // The refusal is logged from OnDone, after the client has its answer.
  absl::SleepFor(absl::Milliseconds(500));
  const std::string log = ::testing::internal::GetCapturedStderr();
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
  const std::vector<std::string> lines = absl::StrSplit(log, '\n');
  std::vector<std::string> watch_refusals;
  for (const std::string& line : lines) {
    if (absl::StrContains(line, "event=call_refused") &&
        absl::StrContains(line, "rpc=WatchTokens")) {
      watch_refusals.push_back(line);
    }
  }
  ASSERT_EQ(watch_refusals.size(), 1u) << log;
  EXPECT_THAT(watch_refusals[0], HasSubstr("code=INVALID_ARGUMENT"));
}

}  // namespace
}  // namespace tokenstatus
