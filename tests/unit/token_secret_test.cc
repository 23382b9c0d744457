#include "core/token_secret.h"

#include <set>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/validation.h"
#include "gtest/gtest.h"

namespace tokenstatus {
namespace {

TEST(TokenSecretTest, GeneratedIdsAreValidAndUseEveryDigit) {
  std::set<std::string> ids;
  std::set<char> digits;
  for (int i = 0; i < 200; ++i) {
    absl::StatusOr<std::string> id = GenerateTokenId();
    ASSERT_TRUE(id.ok()) << id.status();
    ASSERT_EQ(id->size(), 13u);
    ASSERT_TRUE(IsValidTokenId(*id)) << *id;
    ids.insert(*id);
    for (char c : id->substr(4)) digits.insert(c);
  }
  EXPECT_GE(ids.size(), 199u);    // 10^8 ids: a repeat among 200 is a one-in-500k event
  EXPECT_EQ(digits.size(), 11u);  // '0'..'9' and '-'
}

TEST(TokenSecretTest, GeneratedSecretHasTheDocumentedForm) {
  absl::StatusOr<std::string> secret = GenerateSecret("TKN-1234-5678");
  ASSERT_TRUE(secret.ok()) << secret.status();
  const std::string prefix = "idt:TKN-1234-5678:";
  ASSERT_EQ(secret->substr(0, prefix.size()), prefix);
  const std::string opaque = secret->substr(prefix.size());
  EXPECT_EQ(opaque.size(), 43u);
  std::string raw;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(opaque, &raw));
  EXPECT_EQ(raw.size(), 32u);
  EXPECT_EQ(ParseSecret(*secret), "TKN-1234-5678");
  EXPECT_NE(*GenerateSecret("TKN-1234-5678"), *secret);
}

TEST(TokenSecretTest, ParseSecretAcceptsOnlyTheSecretForm) {
  const std::string opaque16(16, 'a');
  EXPECT_EQ(ParseSecret("idt:TKN-1234-5678:" + opaque16), "TKN-1234-5678");
  EXPECT_EQ(ParseSecret("idt:TKN-1234-5678-0000:Az09_-" + std::string(10, 'x')),
            "TKN-1234-5678-0000");
  EXPECT_EQ(ParseSecret("idt:TKN-1234-5678:" + std::string(256, 'b')), "TKN-1234-5678");
  for (const std::string& bad : std::vector<std::string>{
           "",
           "idt:",
           "idt:TKN-1234-5678",
           "idt:TKN-1234-5678:",
           "idt:TKN-1234-5678:" + std::string(15, 'a'),
           "idt:TKN-1234-5678:" + std::string(257, 'a'),
           "idt:TKN-1234-5678:" + opaque16 + "+",
           "idt:TKN-1234-5678:" + opaque16 + ":",
           "idt:TKN-1234-5678:" + opaque16 + "=",
           "IDT:TKN-1234-5678:" + opaque16,
           "idt:TKN-1234:" + opaque16,
           "idt:ACC-1234-5678:" + opaque16,
           "xidt:TKN-1234-5678:" + opaque16,
           "Bearer idt:TKN-1234-5678:" + opaque16,
       }) {
    EXPECT_FALSE(ParseSecret(bad).has_value()) << bad;
  }
}

TEST(TokenSecretTest, Sha256MatchesTheStandardVectors) {
  EXPECT_EQ(absl::BytesToHexString(Sha256("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(absl::BytesToHexString(Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(TokenSecretTest, ConstantTimeEquals) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
  EXPECT_FALSE(ConstantTimeEquals(std::string("a\0b", 3), std::string("a\0c", 3)));
}

TEST(TokenSecretTest, EpochsAreFreshHex) {
  absl::StatusOr<std::string> a = GenerateEpoch();
  absl::StatusOr<std::string> b = GenerateEpoch();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), 32u);
  EXPECT_EQ(a->find_first_not_of("0123456789abcdef"), std::string::npos) << *a;
  EXPECT_NE(*a, *b);
}

}  // namespace
}  // namespace tokenstatus
