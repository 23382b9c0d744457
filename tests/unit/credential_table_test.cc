#include "server/auth/credential_table.h"

#include <cstdio>
#include <fstream>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/status_util.h"
#include "core/token_secret.h"
#include "gtest/gtest.h"

namespace tokenstatus {
namespace {

// 64 lowercase hex digits of SHA-256(`secret`).
std::string HexSha256(const std::string& secret) { return absl::BytesToHexString(Sha256(secret)); }

TEST(RoleSetTest, EachRoleAllowsExactlyItsPermissions) {
  const auto allows = [](Role role, Permission permission) {
    return RoleSet(role).Allows(permission);
  };
  for (Permission p :
       {Permission::kCreate, Permission::kChangeState, Permission::kRead, Permission::kReadHistory,
        Permission::kWatch, Permission::kWatchSecretHashes, Permission::kVerify}) {
    EXPECT_TRUE(allows(Role::kAdmin, p));
  }
  EXPECT_TRUE(allows(Role::kOperator, Permission::kCreate));
  EXPECT_TRUE(allows(Role::kOperator, Permission::kChangeState));
  EXPECT_TRUE(allows(Role::kOperator, Permission::kRead));
  EXPECT_TRUE(allows(Role::kOperator, Permission::kWatch));
  EXPECT_FALSE(allows(Role::kOperator, Permission::kVerify));
  EXPECT_FALSE(allows(Role::kOperator, Permission::kWatchSecretHashes));
  EXPECT_TRUE(allows(Role::kReader, Permission::kRead));
  EXPECT_TRUE(allows(Role::kReader, Permission::kWatch));
  EXPECT_FALSE(allows(Role::kReader, Permission::kWatchSecretHashes));
  EXPECT_FALSE(allows(Role::kReader, Permission::kChangeState));
  EXPECT_FALSE(allows(Role::kReader, Permission::kVerify));
  EXPECT_TRUE(allows(Role::kVerifier, Permission::kVerify));
  EXPECT_TRUE(allows(Role::kVerifier, Permission::kWatchSecretHashes));
  EXPECT_FALSE(allows(Role::kVerifier, Permission::kRead));
  EXPECT_FALSE(allows(Role::kVerifier, Permission::kCreate));
  EXPECT_FALSE(RoleSet().Allows(Permission::kRead));
}

TEST(RoleSetTest, UnionOfRoles) {
  RoleSet roles(Role::kReader);
  roles.Add(Role::kVerifier);
  EXPECT_TRUE(roles.Allows(Permission::kRead));
  EXPECT_TRUE(roles.Allows(Permission::kVerify));
  EXPECT_FALSE(roles.Allows(Permission::kChangeState));
  EXPECT_EQ(roles.ToString(), "reader,verifier");
}

TEST(ParseRoleTest, ExactNamesOnly) {
  EXPECT_EQ(ParseRole("operator"), Role::kOperator);
  EXPECT_EQ(ParseRole("Operator"), std::nullopt);
  EXPECT_EQ(ParseRole(""), std::nullopt);
}

TEST(CredentialTableTest, AuthenticatesBySecretAndMergesRoles) {
  const std::string contents =
      absl::StrCat("# operators\n", HexSha256("s3cret-a"), " operator alice@example.com\n", "\n",
                   "  ", HexSha256("s3cret-a"), "\treader   alice@example.com  \n",
                   HexSha256("s3cret-b"), " verifier spiffe://cluster/ns/edge/sa/gateway\n");
  absl::StatusOr<CredentialTable> table = CredentialTable::Parse(contents);
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->size(), 2);
  const Identity* alice = table->Authenticate("s3cret-a");
  ASSERT_NE(alice, nullptr);
  EXPECT_EQ(alice->principal, "alice@example.com");
  EXPECT_EQ(alice->roles.ToString(), "operator,reader");
  const Identity* gateway = table->Authenticate("s3cret-b");
  ASSERT_NE(gateway, nullptr);
  EXPECT_EQ(gateway->principal, "spiffe://cluster/ns/edge/sa/gateway");
  EXPECT_EQ(table->RolesOf("alice@example.com").ToString(), "operator,reader");
  EXPECT_EQ(table->RolesOf("spiffe://cluster/ns/edge/sa/gateway").ToString(), "verifier");
  EXPECT_TRUE(table->RolesOf("mallory").empty());
  EXPECT_EQ(table->Authenticate("s3cret-c"), nullptr);
  EXPECT_EQ(table->Authenticate(""), nullptr);
}

TEST(CredentialTableTest, RefusesBadLinesNamingTheLineNotItsContent) {
  const std::string hash = HexSha256("x");
  const struct {
    std::string contents;
    std::string expected;
  } cases[] = {
      {absl::StrCat(hash, " admin\n"), "line 1: expected 3 fields"},
      {absl::StrCat("#\n", hash, " admin a b\n"), "line 2: expected 3 fields"},
      {"abcd admin root\n", "line 1: the first field must be 64 hex digits"},
      {absl::StrCat(hash, " root root\n"), "line 1: unknown role"},
      {absl::StrCat(hash, " admin r\xc3\xb6ot\n"), "line 1: the principal must be"},
      {absl::StrCat(hash, " admin " + std::string(257, 'a') + "\n"),
       "line 1: the principal must be"},
      {absl::StrCat(hash, " admin alice\n", hash, " reader bob\n"),
       "line 2: this secret already belongs to another principal"},
  };
  for (const auto& c : cases) {
    absl::StatusOr<CredentialTable> table = CredentialTable::Parse(c.contents);
    ASSERT_FALSE(table.ok()) << c.contents;
    EXPECT_EQ(table.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(ErrorReason(table.status()), "INVALID_CREDENTIALS_FILE");
    EXPECT_NE(table.status().message().find(c.expected), std::string::npos)
        << table.status().message();
    EXPECT_EQ(table.status().message().find(hash), std::string::npos);
  }
}

TEST(CredentialTableTest, EmptyFileAuthenticatesNobody) {
  absl::StatusOr<CredentialTable> table = CredentialTable::Parse("# nobody yet\n\n");
  ASSERT_TRUE(table.ok());
  EXPECT_EQ(table->size(), 0);
}

TEST(CredentialTableTest, LoadReadsAFileAndRefusesMissingOrHugeOnes) {
  const std::string path = ::testing::TempDir() + "/credentials";
  {
    std::ofstream file(path);
    file << HexSha256("k") << " admin root\n";
  }
  absl::StatusOr<CredentialTable> table = CredentialTable::Load(path);
  ASSERT_TRUE(table.ok()) << table.status();
  ASSERT_NE(table->Authenticate("k"), nullptr);

  EXPECT_EQ(CredentialTable::Load(path + ".missing").status().code(),
            absl::StatusCode::kFailedPrecondition);
  {
    std::ofstream file(path);
    file << std::string(CredentialTable::kMaxFileBytes + 1, '#');
  }
  EXPECT_EQ(CredentialTable::Load(path).status().code(), absl::StatusCode::kFailedPrecondition);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace tokenstatus
