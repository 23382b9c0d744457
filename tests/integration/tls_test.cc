// TLS and mutual TLS over real gRPC, with certificates from scripts/make-dev-certs.sh (the
// recipe the README gives): a server with --tls_cert/--tls_key/--tls_client_ca, clients that
// trust the right CA or another one, with or without a client certificate.

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/connection.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "tests/integration/integration_test_util.h"
#include "tests/testing/redis_instance.h"
#include "tests/testing/server_process.h"
#include "tests/testing/subprocess.h"

namespace tokenstatus::integration {
namespace {

// The principal of client.pem: its first DNS or URI SAN (an e-mail SAN comes before it).
constexpr char kClientPrincipal[] = "spiffe://tokenstatus.local/ops/oncall";

std::string ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream content;
  content << file.rdbuf();
  return content.str();
}

// Makes a CA and its certificates in `dir` with the README's script.
void MakeCertificates(const std::string& dir) {
  absl::StatusOr<testing::CommandResult> made = testing::RunCommand(
      {"bash", std::string(TOKENSTATUS_SOURCE_DIR) + "/scripts/make-dev-certs.sh", dir},
      absl::Seconds(60));
  ASSERT_TRUE(made.ok()) << made.status();
  ASSERT_EQ(made->exit_code, 0) << made->err;
}

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    temp_dir_ = new TempDir();
    certs_ = new std::string(temp_dir_->File("certs"));
    other_ = new std::string(temp_dir_->File("other-ca"));
    MakeCertificates(*certs_);
    MakeCertificates(*other_);
    // The client certificate's principal is an operator; nobody has a bearer credential.
    const std::string credentials = temp_dir_->File("credentials");
    std::ofstream(credentials) << Sha256Hex("nobody-has-this") << " operator " << kClientPrincipal
                               << "\n";
    absl::StatusOr<std::unique_ptr<testing::ServerProcess>> server = testing::ServerProcess::Start(
        {.redis_address = testing::SharedRedis().address(),
         .key_prefix = testing::UniqueKeyPrefix(),
         .extra_flags = {
             "--insecure_allow_unauthenticated=false", "--credentials_file=" + credentials,
             "--tls_cert=" + *certs_ + "/server.pem", "--tls_key=" + *certs_ + "/server.key",
             "--tls_client_ca=" + *certs_ + "/ca.pem", "--health_listen=127.0.0.1:0"}});
    if (!server.ok()) {
      start_error_ = new std::string(server.status().ToString());
      return;
    }
    server_ = server->release();
    // Calls are answered once the mirror has loaded.
    if (!server_->WaitForLogLine("event=mirror_loaded", absl::Seconds(20))) {
      start_error_ = new std::string("the server's mirror did not load");
    }
  }
  static void TearDownTestSuite() {
    delete server_;
    delete temp_dir_;
    server_ = nullptr;
    temp_dir_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(server_ != nullptr && start_error_ == nullptr)
        << (start_error_ != nullptr ? *start_error_ : "no server");
  }

  // A client of the server over TLS trusting `ca_dir`'s CA, with `ca_dir`'s client
  // certificate if `with_certificate`.
  static Api Client(const std::string& ca_dir, bool with_certificate) {
    return ClientOf(server_->address(), ca_dir, with_certificate);
  }
  static Api ClientOf(const std::string& address, const std::string& ca_dir,
                      bool with_certificate) {
    ConnectionOptions options;
    options.address = address;
    options.tls_ca_pem = ReadFile(ca_dir + "/ca.pem");
    if (with_certificate) {
      options.tls_cert_pem = ReadFile(ca_dir + "/client.pem");
      options.tls_key_pem = ReadFile(ca_dir + "/client.key");
    }
    return Api(OpenChannel(options), absl::Seconds(5));
  }

  static testing::ServerProcess* server_;
  static TempDir* temp_dir_;
  static std::string* certs_;
  static std::string* other_;
  static std::string* start_error_;
};

testing::ServerProcess* TlsTest::server_ = nullptr;
TempDir* TlsTest::temp_dir_ = nullptr;
std::string* TlsTest::certs_ = nullptr;
std::string* TlsTest::other_ = nullptr;
std::string* TlsTest::start_error_ = nullptr;

TEST_F(TlsTest, ClientCertificatePrincipalIsRecordedAsUpdatedBy) {
  const Api client = Client(*certs_, /*with_certificate=*/true);
  CreateTokenRequest request;
  request.set_account_id(NewAccountId());
  request.set_name("over-mtls");
  Rpc<CreateTokenResponse> created = client.Create(request);
  ASSERT_TRUE(created.ok()) << Describe(created.status);
  EXPECT_EQ(created.response.token().updated_by(), kClientPrincipal);
  Rpc<DisableTokenResponse> disabled = client.Disable(created.response.token().id());
  ASSERT_TRUE(disabled.ok()) << Describe(disabled.status);
  EXPECT_EQ(disabled.response.token().updated_by(), kClientPrincipal);
}

TEST_F(TlsTest, ClientTrustingAnotherCaFailsTheHandshake) {
  // other_'s CA did not sign the server's certificate (and its client certificate is not
  // trusted by the server either).
  EXPECT_EQ(Client(*other_, /*with_certificate=*/true).Get(NewTokenId()).status.error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsTest, MutualTlsWithoutClientCertificateFails) {
  EXPECT_EQ(Client(*certs_, /*with_certificate=*/false).Get(NewTokenId()).status.error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsTest, TokenctlSpeaksMutualTls) {
  const std::string id = NewTokenId();
  const auto tokenctl = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {TOKENSTATUS_TOKENCTL_BINARY, "--server", server_->address(),
                                     "--ca", *certs_ + "/ca.pem"};
    argv.insert(argv.end(), args.begin(), args.end());
    absl::StatusOr<testing::CommandResult> result = testing::RunCommand(argv, absl::Seconds(30));
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : testing::CommandResult{};
  };
  // Authenticated by its certificate, so the server answers: NOT_FOUND (exit 1).
  testing::CommandResult with_certificate =
      tokenctl({"--cert", *certs_ + "/client.pem", "--key", *certs_ + "/client.key", "get", id});
  EXPECT_EQ(with_certificate.exit_code, 1) << with_certificate.err;
  EXPECT_NE(with_certificate.err.find("TOKEN_NOT_FOUND"), std::string::npos)
      << with_certificate.err;
  // Without one the handshake fails: the server cannot be reached (exit 3).
  testing::CommandResult without = tokenctl({"get", id});
  EXPECT_EQ(without.exit_code, 3) << without.err;
}

TEST_F(TlsTest, HealthListenAnswersPlaintextProbesWithHealthOnly) {
  const std::string kHealthListening = "event=health_listening address=";
  ASSERT_TRUE(server_->WaitForLogLine(kHealthListening, absl::Seconds(10)));
  std::string address;
  for (const std::string& line : server_->LogLines()) {
    const size_t at = line.find(kHealthListening);
    if (at != std::string::npos) address = line.substr(at + kHealthListening.size());
  }
  ASSERT_FALSE(address.empty());
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  HealthWatcher health(channel, "apitoken.v1.TokenService");
  EXPECT_TRUE(health.WaitFor(grpc::health::v1::HealthCheckResponse::SERVING, absl::Seconds(20)))
      << health.History();
  // Nothing else is served there.
  EXPECT_EQ(Api(channel, absl::Seconds(5)).Get(NewTokenId()).status.error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
}

// Renewed certificates are picked up without a restart: new handshakes use the files' new
// contents (the server's certificate and key, and the client CA).
TEST_F(TlsTest, ChangedCertificateFilesAreUsedByNewHandshakes) {
  const std::string live = temp_dir_->File("live-certs");
  std::filesystem::create_directories(live);
  const auto install = [&](const std::string& from) {
    for (const char* name : {"server.pem", "server.key", "ca.pem"}) {
      const std::string next = absl::StrCat(live, "/", name, ".next");
      std::filesystem::copy_file(absl::StrCat(from, "/", name), next,
                                 std::filesystem::copy_options::overwrite_existing);
      std::filesystem::rename(next, absl::StrCat(live, "/", name));
    }
  };
  install(*certs_);
  const std::string credentials = temp_dir_->File("credentials");
  absl::StatusOr<std::unique_ptr<testing::ServerProcess>> server = testing::ServerProcess::Start(
      {.redis_address = testing::SharedRedis().address(),
       .key_prefix = testing::UniqueKeyPrefix(),
       .extra_flags = {"--insecure_allow_unauthenticated=false",
                       "--credentials_file=" + credentials, "--tls_cert=" + live + "/server.pem",
                       "--tls_key=" + live + "/server.key", "--tls_client_ca=" + live + "/ca.pem",
                       "--reload_check_interval=1s"}});
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE((*server)->WaitForLogLine("event=mirror_loaded", absl::Seconds(20)));
  const std::string address = (*server)->address();
  EXPECT_EQ(ClientOf(address, *certs_, true).Get(NewTokenId()).status.error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(ClientOf(address, *other_, true).Get(NewTokenId()).status.error_code(),
            grpc::StatusCode::UNAVAILABLE);

  install(*other_);
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  grpc::StatusCode code = grpc::StatusCode::UNAVAILABLE;
  while (code != grpc::StatusCode::NOT_FOUND && absl::Now() < deadline) {
    code = ClientOf(address, *other_, true).Get(NewTokenId()).status.error_code();
    if (code != grpc::StatusCode::NOT_FOUND) absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_EQ(code, grpc::StatusCode::NOT_FOUND) << "the new certificates were not picked up";
  EXPECT_EQ(ClientOf(address, *certs_, true).Get(NewTokenId()).status.error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsTest, PlaintextClientFails) {
  EXPECT_EQ(Api(server_->NewChannel(), absl::Seconds(5)).Get(NewTokenId()).status.error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace tokenstatus::integration
