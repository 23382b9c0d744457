// examples/protected-service (TOKENSTATUS_PROTECTED_SERVICE_BINARY) as a real process following
// the suite's tokenstatus-server: its calls are admitted by TokenAuthProcessor from a
// TokenCache. A token created at the server opens it, the same token disabled at the server
// closes it within the propagation bound, and every other credential is refused before the
// handler runs.

#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "echo/v1/echo.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "integration_test_util.h"
#include "tests/testing/server_process.h"

namespace tokenstatus::integration {
namespace {

using echo::v1::EchoRequest;
using echo::v1::EchoResponse;
using grpc::StatusCode;

// How long a change may take to reach the service's cache (the cache's own bound is
// milliseconds; this is the test's patience, not a target).
constexpr absl::Duration kPropagationTimeout = absl::Seconds(5);

class ProtectedServiceTest : public ServerTest {
 protected:
  static void TearDownTestSuite() {
    delete service_;
    service_ = nullptr;
    ServerTest::TearDownTestSuite();
  }

  void SetUp() override {
    ServerTest::SetUp();
    if (HasFatalFailure()) return;
    if (service_ == nullptr) {
      absl::StatusOr<std::unique_ptr<testing::ServerProcess>> service =
          testing::ServerProcess::StartCommand(
              {TOKENSTATUS_PROTECTED_SERVICE_BINARY,
               absl::StrCat("--tokenstatus=", server().address()), "--listen=127.0.0.1:0"},
              "protected-service");
      ASSERT_TRUE(service.ok()) << service.status();
      service_ = service->release();
    }
    stub_ = echo::v1::EchoService::NewStub(
        grpc::CreateChannel(service_->address(), grpc::experimental::LocalCredentials(LOCAL_TCP)));
  }

  // One Echo call with `metadata` (key, value) if the key is not empty.
  grpc::Status Echo(const std::string& key, const std::string& value,
                    EchoResponse* response = nullptr) const {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + kRpcTimeout));
    if (!key.empty()) context.AddMetadata(key, value);
    EchoRequest request;
    request.set_message("hello");
    EchoResponse ignored;
    return stub_->Echo(&context, request, response != nullptr ? response : &ignored);
  }
  grpc::Status EchoWith(const std::string& secret, EchoResponse* response = nullptr) const {
    return Echo("authorization", absl::StrCat("Bearer ", secret), response);
  }

  // Calls Echo with `secret` until it answers `code` (true) or `timeout` passes (false).
  bool AwaitCode(const std::string& secret, StatusCode code, absl::Duration timeout) const {
    const absl::Time deadline = absl::Now() + timeout;
    while (EchoWith(secret).error_code() != code) {
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(1));  // polling: the service announces nothing
    }
    return true;
  }

  // A new ACTIVE token of a new account, imported at the server; its secret.
  static std::pair<Token, std::string> NewActiveToken() {
    const std::string id = NewTokenId();
    const std::string secret = NewSecret(id);
    Rpc<CreateTokenResponse> created = api().Create(ImportRequest(id, secret, NewAccountId()));
    EXPECT_TRUE(created.ok()) << Describe(created.status);
    return {created.response.token(), secret};
  }

  static testing::ServerProcess* service_;
  std::unique_ptr<echo::v1::EchoService::Stub> stub_;
};

testing::ServerProcess* ProtectedServiceTest::service_ = nullptr;

TEST_F(ProtectedServiceTest, AValidTokenReachesTheHandlerWhichKnowsWhoCalled) {
  const auto [token, secret] = NewActiveToken();
  // The service's cache gets the token within the propagation bound.
  ASSERT_TRUE(AwaitCode(secret, StatusCode::OK, kPropagationTimeout));
  EchoResponse response;
  ASSERT_TRUE(EchoWith(secret, &response).ok());
  EXPECT_EQ(response.message(), "hello");
  EXPECT_EQ(response.token_id(), token.id());
  EXPECT_EQ(response.account_id(), token.account_id());
}

TEST_F(ProtectedServiceTest, ATokenDisabledAtTheServerIsRefusedWithinThePropagationBound) {
  const auto [token, secret] = NewActiveToken();
  ASSERT_TRUE(AwaitCode(secret, StatusCode::OK, kPropagationTimeout));
  ASSERT_TRUE(api().Disable(token.id()).ok());
  const absl::Time disabled = absl::Now();
  ASSERT_TRUE(AwaitCode(secret, StatusCode::PERMISSION_DENIED, kPropagationTimeout));
  std::printf("DISABLE_TO_REFUSAL_SECONDS=%.4f (DisableToken reply -> first refused call)\n",
              absl::ToDoubleSeconds(absl::Now() - disabled));
  const grpc::Status refused = EchoWith(secret);
  EXPECT_EQ(refused.error_code(), StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(refused.error_message().rfind("TOKEN_DISABLED: ", 0), 0u) << refused.error_message();

  // Enabled again, it opens the service again.
  ASSERT_TRUE(api().Enable(token.id()).ok());
  EXPECT_TRUE(AwaitCode(secret, StatusCode::OK, kPropagationTimeout));
}

TEST_F(ProtectedServiceTest, EveryOtherCredentialIsRefusedBeforeTheHandler) {
  const auto [token, secret] = NewActiveToken();
  ASSERT_TRUE(AwaitCode(secret, StatusCode::OK, kPropagationTimeout));
  struct Case {
    std::string key, value, reason;
    StatusCode code;
  };
  const Case cases[] = {
      {"", "", "MISSING_CREDENTIALS", StatusCode::UNAUTHENTICATED},
      {"authorization", secret, "INVALID_CREDENTIALS", StatusCode::UNAUTHENTICATED},  // no scheme
      {"authorization", "Bearer ", "INVALID_CREDENTIALS", StatusCode::UNAUTHENTICATED},
      {"authorization", "Bearer not-a-secret", "INVALID_CREDENTIALS", StatusCode::UNAUTHENTICATED},
      {"authorization", absl::StrCat("Bearer ", NewSecret(token.id())),  // wrong secret
       "INVALID_CREDENTIALS", StatusCode::UNAUTHENTICATED},
      {"authorization", absl::StrCat("Bearer ", NewSecret(NewTokenId())),  // unknown token
       "INVALID_CREDENTIALS", StatusCode::UNAUTHENTICATED},
  };
  for (const Case& c : cases) {
    const grpc::Status status = Echo(c.key, c.value);
    EXPECT_EQ(status.error_code(), c.code) << c.reason << ": " << status.error_message();
    EXPECT_EQ(status.error_message().rfind(c.reason + ": ", 0), 0u) << status.error_message();
    EXPECT_EQ(status.error_message().find(secret), std::string::npos);
  }

  // A deleted token: its own reason (the secret matched), still UNAUTHENTICATED.
  ASSERT_TRUE(api().Disable(token.id()).ok());
  ASSERT_TRUE(api().Delete(token.id()).ok());
  ASSERT_TRUE(AwaitCode(secret, StatusCode::UNAUTHENTICATED, kPropagationTimeout));
  EXPECT_EQ(EchoWith(secret).error_message().rfind("TOKEN_DELETED: ", 0), 0u);
}

TEST_F(ProtectedServiceTest, HealthNeedsNoToken) {
  auto health = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(service_->address(), grpc::experimental::LocalCredentials(LOCAL_TCP)));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + kRpcTimeout));
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status status =
      health->Check(&context, grpc::health::v1::HealthCheckRequest(), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

}  // namespace
}  // namespace tokenstatus::integration
