// TokenClient against an in-process fake TokenService on 127.0.0.1:0: error details, retries
// of reads, no blind retries of changes, "already in that state" after a lost reply, backoff.

#include "client/token_client.h"

#include <map>
#include <memory>
#include <string>

#include "absl/random/random.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "core/grpc_status.h"
#include "core/status_util.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"

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
using apitoken::v1::Token;
using apitoken::v1::TokenService;
using apitoken::v1::VerifyTokenRequest;
using apitoken::v1::VerifyTokenResponse;

constexpr char kTokenId[] = "TKN-0000-0001";

// A TokenService holding one token (kTokenId, ACTIVE) with scripted failures. Errors go
// through the server's own ToGrpcStatus, so they carry ErrorInfo exactly as the real server's.
class FakeTokenService final : public TokenService::Service {
 public:
  FakeTokenService() {
    token_.set_id(kTokenId);
    token_.set_account_id("ACC-0000-0001");
    token_.set_state(Token::STATE_ACTIVE);
    token_.set_revision(1);
  }

  // The next `count` calls (of any method) fail with UNAVAILABLE / STORE_UNAVAILABLE.
  void FailNext(int count) {
    absl::MutexLock lock(&mu_);
    failures_left_ = count;
  }
  // The next change that succeeds is applied, but its caller gets UNAVAILABLE with `reason` (a
  // lost reply, or a change the server could not confirm).
  void DropNextChangeReply(std::string reason = reason::kStoreUnavailable) {
    absl::MutexLock lock(&mu_);
    drop_next_reply_ = true;
    drop_reason_ = std::move(reason);
  }
  void SetState(Token::State state) {
    absl::MutexLock lock(&mu_);
    token_.set_state(state);
  }
  // How many calls of `method` ("GetToken", ...) arrived.
  int Calls(const std::string& method) {
    absl::MutexLock lock(&mu_);
    return calls_[method];
  }

  grpc::Status CreateToken(grpc::ServerContext*, const CreateTokenRequest*,
                           CreateTokenResponse* response) override {
    absl::MutexLock lock(&mu_);
    if (grpc::Status failure = Begin("CreateToken"); !failure.ok()) return failure;
    *response->mutable_token() = token_;
    return grpc::Status::OK;
  }
  grpc::Status GetToken(grpc::ServerContext*, const GetTokenRequest* request,
                        GetTokenResponse* response) override {
    absl::MutexLock lock(&mu_);
    if (grpc::Status failure = Begin("GetToken"); !failure.ok()) return failure;
    if (request->token_id() != kTokenId) {
      return ToGrpcStatus(MakeError(absl::StatusCode::kNotFound, reason::kTokenNotFound,
                                    "token does not exist", {{"token_id", request->token_id()}}));
    }
    *response->mutable_token() = token_;
    return grpc::Status::OK;
  }
  grpc::Status ListTokens(grpc::ServerContext*, const ListTokensRequest*,
                          ListTokensResponse* response) override {
    absl::MutexLock lock(&mu_);
    if (grpc::Status failure = Begin("ListTokens"); !failure.ok()) return failure;
    *response->add_tokens() = token_;
    return grpc::Status::OK;
  }
  grpc::Status VerifyToken(grpc::ServerContext*, const VerifyTokenRequest*,
                           VerifyTokenResponse* response) override {
    absl::MutexLock lock(&mu_);
    if (grpc::Status failure = Begin("VerifyToken"); !failure.ok()) return failure;
    response->set_result(VerifyTokenResponse::RESULT_VALID);
    return grpc::Status::OK;
  }
  grpc::Status EnableToken(grpc::ServerContext*, const EnableTokenRequest*,
                           EnableTokenResponse* response) override {
    return Change("EnableToken", Token::STATE_ACTIVE, reason::kTokenAlreadyActive,
                  response->mutable_token());
  }
  grpc::Status DisableToken(grpc::ServerContext*, const DisableTokenRequest*,
                            DisableTokenResponse* response) override {
    return Change("DisableToken", Token::STATE_DISABLED, reason::kTokenAlreadyDisabled,
                  response->mutable_token());
  }
  grpc::Status DeleteToken(grpc::ServerContext*, const DeleteTokenRequest*,
                           DeleteTokenResponse* response) override {
    return Change("DeleteToken", Token::STATE_DELETED, reason::kTokenDeleted,
                  response->mutable_token());
  }

 private:
  // Counts the call; a scripted UNAVAILABLE, or OK to go on.
  grpc::Status Begin(const std::string& method) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ++calls_[method];
    if (failures_left_ == 0) return grpc::Status::OK;
    --failures_left_;
    return ToGrpcStatus(
        MakeError(absl::StatusCode::kUnavailable, reason::kStoreUnavailable, "redis is down"));
  }

  // The state machine, reduced to: DELETED is terminal, and a transition to the state the
  // token is in is refused.
  grpc::Status Change(const std::string& method, Token::State target,
                      absl::string_view already_reason, Token* reply) {
    absl::MutexLock lock(&mu_);
    if (grpc::Status failure = Begin(method); !failure.ok()) return failure;
    if (token_.state() == Token::STATE_DELETED && target != Token::STATE_DELETED) {
      return ToGrpcStatus(MakeError(absl::StatusCode::kFailedPrecondition, reason::kTokenDeleted,
                                    "token is deleted"));
    }
    if (token_.state() == target) {
      return ToGrpcStatus(MakeError(absl::StatusCode::kFailedPrecondition, already_reason,
                                    "token is already in that state"));
    }
    token_.set_state(target);
    token_.set_revision(token_.revision() + 1);
    if (drop_next_reply_) {
      drop_next_reply_ = false;
      return ToGrpcStatus(MakeError(absl::StatusCode::kUnavailable, drop_reason_, "reply lost"));
    }
    *reply = token_;
    return grpc::Status::OK;
  }

  absl::Mutex mu_;
  Token token_ ABSL_GUARDED_BY(mu_);
  int failures_left_ ABSL_GUARDED_BY(mu_) = 0;
  std::string drop_reason_ ABSL_GUARDED_BY(mu_);
  bool drop_next_reply_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, int> calls_ ABSL_GUARDED_BY(mu_);
};

// Short backoffs so that retries take milliseconds.
TokenClientOptions FastRetries(int max_attempts = 4) {
  TokenClientOptions options;
  options.deadline = absl::Seconds(10);
  options.retry.max_attempts = max_attempts;
  options.retry.initial_backoff = absl::Milliseconds(1);
  options.retry.max_backoff = absl::Milliseconds(5);
  return options;
}

class TokenClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                   grpc::InsecureChannelCredentials());
  }
  void TearDown() override { server_->Shutdown(); }

  TokenClient Client(TokenClientOptions options = FastRetries()) {
    return TokenClient(channel_, options);
  }

  FakeTokenService service_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

GetTokenRequest GetRequest(const std::string& token_id = kTokenId) {
  GetTokenRequest request;
  request.set_token_id(token_id);
  return request;
}

template <typename Request>
Request ChangeRequest() {
  Request request;
  request.set_token_id(kTokenId);
  return request;
}

TEST_F(TokenClientTest, ErrorKeepsCodeMessageAndErrorInfo) {
  TokenClient client = Client();
  absl::StatusOr<GetTokenResponse> got = client.Get(GetRequest("TKN-9999-9999"));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(got.status().message(), "token does not exist");
  const google::rpc::ErrorInfo info = ErrorInfoOf(got.status());
  EXPECT_EQ(info.reason(), reason::kTokenNotFound);
  EXPECT_EQ(info.domain(), kErrorDomain);
  EXPECT_EQ(info.metadata().at("token_id"), "TKN-9999-9999");
  EXPECT_EQ(service_.Calls("GetToken"), 1);  // NOT_FOUND is not retried
}

TEST_F(TokenClientTest, UnreachableServerIsUnavailableWithAReason) {
  server_->Shutdown();
  TokenClient client = Client(FastRetries(2));
  absl::StatusOr<GetTokenResponse> got = client.Get(GetRequest());
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorReason(got.status()), "UNAVAILABLE");
  EXPECT_TRUE(ErrorInfoOf(got.status()).domain() == kErrorDomain);
}

TEST_F(TokenClientTest, ReadsRetryUnavailableUntilSuccess) {
  TokenClient client = Client();
  service_.FailNext(2);
  EXPECT_TRUE(client.Get(GetRequest()).ok());
  EXPECT_EQ(service_.Calls("GetToken"), 3);
  service_.FailNext(3);
  EXPECT_TRUE(client.List(ListTokensRequest()).ok());
  EXPECT_EQ(service_.Calls("ListTokens"), 4);
  service_.FailNext(1);
  absl::StatusOr<VerifyTokenResponse> verified = client.Verify(VerifyTokenRequest());
  ASSERT_TRUE(verified.ok());
  EXPECT_EQ(verified->result(), VerifyTokenResponse::RESULT_VALID);
  EXPECT_EQ(service_.Calls("VerifyToken"), 2);
}

TEST_F(TokenClientTest, ReadsGiveUpAfterMaxAttemptsWithTheLastError) {
  TokenClient client = Client(FastRetries(3));
  service_.FailNext(100);
  absl::StatusOr<GetTokenResponse> got = client.Get(GetRequest());
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorReason(got.status()), reason::kStoreUnavailable);
  EXPECT_EQ(service_.Calls("GetToken"), 3);
}

TEST_F(TokenClientTest, RetriesStopAtTheDeadline) {
  TokenClientOptions options;
  options.deadline = absl::Milliseconds(300);
  options.retry.max_attempts = 1000;
  options.retry.initial_backoff = absl::Milliseconds(40);
  options.retry.max_backoff = absl::Milliseconds(40);
  TokenClient client = Client(options);
  service_.FailNext(1000);
  const absl::Time start = absl::Now();
  // The last error: UNAVAILABLE from the last attempt, or DEADLINE_EXCEEDED if that attempt was
  // still in flight at the deadline (a slow machine, a sanitizer build).
  const absl::StatusCode code = client.Get(GetRequest()).status().code();
  EXPECT_TRUE(code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kDeadlineExceeded)
      << absl::StatusCodeToString(code);
  // No backoff runs past the deadline (an attempt in flight is bounded by it too). The margin is
  // for a loaded machine; a client that ignored the deadline would take 1000 x 40 ms.
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(300 + 200));
  // Backoffs of 20..40 ms within 300 ms: at most 300/20 + 1 attempts, and several.
  EXPECT_GE(service_.Calls("GetToken"), 3);
  EXPECT_LE(service_.Calls("GetToken"), 300 / 20 + 1);
}

TEST_F(TokenClientTest, CreateIsNeverRetried) {
  TokenClient client = Client();
  service_.FailNext(1);
  absl::StatusOr<CreateTokenResponse> created = client.Create(CreateTokenRequest());
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(service_.Calls("CreateToken"), 1);
}

TEST_F(TokenClientTest, ChangeRetriedAfterUnavailableThatChangedNothing) {
  TokenClient client = Client();
  service_.FailNext(1);
  absl::StatusOr<ChangeResult> result = client.Disable(ChangeRequest<DisableTokenRequest>());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_FALSE(result->already_in_state);
  EXPECT_EQ(result->token.state(), Token::STATE_DISABLED);
  EXPECT_EQ(result->token.revision(), 2);
  EXPECT_EQ(service_.Calls("DisableToken"), 2);
}

TEST_F(TokenClientTest, LostDisableReplyIsReportedAsAlreadyDisabledWithTheToken) {
  TokenClient client = Client();
  service_.DropNextChangeReply();
  absl::StatusOr<ChangeResult> result = client.Disable(ChangeRequest<DisableTokenRequest>());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->already_in_state);
  EXPECT_EQ(result->token.id(), kTokenId);
  EXPECT_EQ(result->token.state(), Token::STATE_DISABLED);
  EXPECT_EQ(result->token.revision(), 2);  // the one change the lost reply hid
  EXPECT_EQ(service_.Calls("DisableToken"), 2);
  EXPECT_EQ(service_.Calls("GetToken"), 1);
}

// A change the server made but its Redis replicas did not confirm (--min_replicas_acked) is
// ambiguous like a lost reply: retried, and the retry's refusal reported as already in state.
TEST_F(TokenClientTest, ReplicationUnconfirmedDisableIsRetriedAsAnAmbiguousChange) {
  TokenClient client = Client();
  service_.DropNextChangeReply(reason::kReplicationUnconfirmed);
  absl::StatusOr<ChangeResult> result = client.Disable(ChangeRequest<DisableTokenRequest>());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->already_in_state);
  EXPECT_EQ(result->token.state(), Token::STATE_DISABLED);
  EXPECT_EQ(result->token.revision(), 2);
  EXPECT_EQ(service_.Calls("DisableToken"), 2);
  EXPECT_EQ(service_.Calls("GetToken"), 1);
}

TEST_F(TokenClientTest, LostEnableAndDeleteRepliesAreReportedAsAlreadyInState) {
  TokenClient client = Client();
  service_.SetState(Token::STATE_DISABLED);
  service_.DropNextChangeReply();
  absl::StatusOr<ChangeResult> enabled = client.Enable(ChangeRequest<EnableTokenRequest>());
  ASSERT_TRUE(enabled.ok()) << enabled.status();
  EXPECT_TRUE(enabled->already_in_state);
  EXPECT_EQ(enabled->token.state(), Token::STATE_ACTIVE);

  service_.DropNextChangeReply();
  absl::StatusOr<ChangeResult> deleted = client.Delete(ChangeRequest<DeleteTokenRequest>());
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_TRUE(deleted->already_in_state);
  EXPECT_EQ(deleted->token.state(), Token::STATE_DELETED);
}

TEST_F(TokenClientTest, AlreadyDisabledOnTheFirstAttemptIsAnError) {
  TokenClient client = Client();
  service_.SetState(Token::STATE_DISABLED);
  absl::StatusOr<ChangeResult> result = client.Disable(ChangeRequest<DisableTokenRequest>());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ErrorReason(result.status()), reason::kTokenAlreadyDisabled);
  EXPECT_EQ(service_.Calls("DisableToken"), 1);
  EXPECT_EQ(service_.Calls("GetToken"), 0);
}

TEST_F(TokenClientTest, AnotherRefusalOnARetryIsAnError) {
  TokenClient client = Client();
  service_.SetState(Token::STATE_DELETED);
  service_.FailNext(1);
  absl::StatusOr<ChangeResult> result = client.Disable(ChangeRequest<DisableTokenRequest>());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ErrorReason(result.status()), reason::kTokenDeleted);
  EXPECT_EQ(service_.Calls("DisableToken"), 2);
  EXPECT_EQ(service_.Calls("GetToken"), 0);
}

}  // namespace
}  // namespace tokenstatus
