#include "server/auth/authenticator.h"

#include <memory>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/status_util.h"
#include "core/token_secret.h"
#include "gtest/gtest.h"
#include "server/auth/call_credentials.h"

namespace tokenstatus {
namespace {

// 64 lowercase hex digits of SHA-256(`secret`).
std::string HexSha256(const std::string& secret) { return absl::BytesToHexString(Sha256(secret)); }

std::shared_ptr<const CredentialTable> Table(const std::string& contents) {
  absl::StatusOr<CredentialTable> table = CredentialTable::Parse(contents);
  EXPECT_TRUE(table.ok()) << table.status();
  return std::make_shared<const CredentialTable>(*std::move(table));
}

CallCredentials Bearer(const std::string& value) {
  return CallCredentials{.authorization = value, .certificate_principal = std::nullopt};
}

CallCredentials Certificate(const std::string& principal) {
  return CallCredentials{.authorization = std::nullopt, .certificate_principal = principal};
}

class AuthenticatorTest : public ::testing::Test {
 protected:
  AuthenticatorTest()
      : authenticator_(false, Table(absl::StrCat(HexSha256("op-secret"), " operator ops\n",
                                                 HexSha256("gw-secret"), " verifier gw.example\n",
                                                 HexSha256("other"), " reader gw.example\n"))) {}
  Authenticator authenticator_;
};

TEST_F(AuthenticatorTest, BearerSecretGivesItsIdentity) {
  absl::StatusOr<Identity> identity = authenticator_.Authenticate(Bearer("Bearer op-secret"));
  ASSERT_TRUE(identity.ok()) << identity.status();
  EXPECT_EQ(identity->principal, "ops");
  EXPECT_EQ(identity->roles.ToString(), "operator");
  // The scheme is case-insensitive.
  EXPECT_TRUE(authenticator_.Authenticate(Bearer("bearer op-secret")).ok());
}

TEST_F(AuthenticatorTest, WrongOrMalformedBearerIsUnauthenticatedWithoutEchoingIt) {
  for (const std::string header :
       {"Bearer wrong-secret", "Basic op-secret", "Bearer ", "op-secret"}) {
    absl::StatusOr<Identity> identity = authenticator_.Authenticate(Bearer(header));
    ASSERT_FALSE(identity.ok()) << header;
    EXPECT_EQ(identity.status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_EQ(ErrorReason(identity.status()), "INVALID_CREDENTIALS");
    EXPECT_EQ(identity.status().message().find("secret\""), std::string::npos);
    EXPECT_EQ(identity.status().message().find("wrong-secret"), std::string::npos);
    EXPECT_EQ(identity.status().message().find("op-secret"), std::string::npos);
  }
}

TEST_F(AuthenticatorTest, CertificatePrincipalGetsTheRolesOfItsName) {
  absl::StatusOr<Identity> identity = authenticator_.Authenticate(Certificate("gw.example"));
  ASSERT_TRUE(identity.ok());
  EXPECT_EQ(identity->roles.ToString(), "reader,verifier");
  absl::StatusOr<Identity> stranger = authenticator_.Authenticate(Certificate("x.example"));
  ASSERT_TRUE(stranger.ok());
  EXPECT_TRUE(stranger->roles.empty());
  EXPECT_EQ(Authenticator::Authorize(*stranger, Permission::kRead, "GetToken").code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(AuthenticatorTest, BearerWinsOverCertificate) {
  CallCredentials both = Certificate("gw.example");
  both.authorization = "Bearer op-secret";
  absl::StatusOr<Identity> identity = authenticator_.Authenticate(both);
  ASSERT_TRUE(identity.ok());
  EXPECT_EQ(identity->principal, "ops");
}

TEST_F(AuthenticatorTest, NoCredentialsIsUnauthenticatedUnlessAllowed) {
  absl::StatusOr<Identity> none = authenticator_.Authenticate(CallCredentials{});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(ErrorReason(none.status()), "MISSING_CREDENTIALS");

  Authenticator open(true);
  absl::StatusOr<Identity> anonymous = open.Authenticate(CallCredentials{});
  ASSERT_TRUE(anonymous.ok());
  EXPECT_EQ(anonymous->principal, "anonymous");
  EXPECT_TRUE(anonymous->roles.Allows(Permission::kChangeState));
  // Presented credentials are still checked.
  EXPECT_FALSE(open.Authenticate(Bearer("Bearer nope")).ok());
}

TEST_F(AuthenticatorTest, ReloadReplacesTheCredentials) {
  authenticator_.SetCredentials(Table(absl::StrCat(HexSha256("new-secret"), " admin root\n")));
  EXPECT_FALSE(authenticator_.Authenticate(Bearer("Bearer op-secret")).ok());
  absl::StatusOr<Identity> root = authenticator_.Authenticate(Bearer("Bearer new-secret"));
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->principal, "root");
}

TEST(AuthorizeTest, PermissionDeniedNamesPrincipalRolesAndRpc) {
  const Identity reader{"dash", RoleSet(Role::kReader)};
  EXPECT_TRUE(Authenticator::Authorize(reader, Permission::kRead, "GetToken").ok());
  const absl::Status denied =
      Authenticator::Authorize(reader, Permission::kChangeState, "DisableToken");
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrorReason(denied), "PERMISSION_DENIED");
  EXPECT_EQ(denied.message(), "principal dash (roles: reader) may not call DisableToken");
}

TEST(CertificatePrincipalTest, FirstDnsOrUriSanInCertificateOrderElseCommonName) {
  // SANs in certificate order: an e-mail address first, then a URI, then a DNS name.
  EXPECT_EQ(CertificatePrincipal({"ops@example.com", "spiffe://c/sa/gw", "gw.example"},
                                 {"gw.example"}, {"spiffe://c/sa/gw"}, "gw-cn"),
            "spiffe://c/sa/gw");
  EXPECT_EQ(CertificatePrincipal({"gw.example", "spiffe://c/sa/gw"}, {"gw.example"},
                                 {"spiffe://c/sa/gw"}, std::nullopt),
            "gw.example");
  EXPECT_EQ(CertificatePrincipal({"ops@example.com"}, {}, {}, "gw-cn"), "gw-cn");
  EXPECT_EQ(CertificatePrincipal({}, {}, {}, std::nullopt), std::nullopt);
}

}  // namespace
}  // namespace tokenstatus
