#include "core/validation.h"

#include <string>

#include "core/status_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tokenstatus {
namespace {

using ::testing::HasSubstr;

// Expects INVALID_ARGUMENT with `reason`, {"field": field}, and a message naming the field.
void ExpectInvalid(const absl::Status& status, absl::string_view reason, absl::string_view field) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  const google::rpc::ErrorInfo info = ErrorInfoOf(status);
  EXPECT_EQ(info.reason(), reason);
  EXPECT_EQ(info.metadata().at("field"), field);
  EXPECT_THAT(std::string(status.message()), HasSubstr(std::string(field)));
}

// `count` copies of `unit`.
std::string Repeat(absl::string_view unit, int count) {
  std::string out;
  for (int i = 0; i < count; ++i) out.append(unit.data(), unit.size());
  return out;
}

TEST(ValidationTest, AcceptsTokenIdsWithTwoOrThreeGroups) {
  EXPECT_TRUE(IsValidTokenId("TKN-1234-5678"));
  EXPECT_TRUE(IsValidTokenId("TKN-0000-0000-9999"));
  EXPECT_TRUE(ValidateTokenId("TKN-1234-5678").ok());
}

TEST(ValidationTest, RejectsMalformedTokenIds) {
  for (const char* id :
       {"", "TKN", "TKN-1234", "TKN-1234-567", "TKN-1234-56789", "TKN-1234-5678-",
        "TKN-1234-5678-1234-5678", "tkn-1234-5678", "ACC-1234-5678", "TKN_1234-5678",
        "TKN-12a4-5678", "TKN-1234-5678 ", " TKN-1234-5678", "TKN--234-5678", "TKN-1234-5678\n"}) {
    EXPECT_FALSE(IsValidTokenId(id)) << id;
    ExpectInvalid(ValidateTokenId(id), reason::kInvalidTokenId, "token_id");
  }
  ExpectInvalid(ValidateTokenId("x", "other_field"), reason::kInvalidTokenId, "other_field");
}

TEST(ValidationTest, AccountIds) {
  EXPECT_TRUE(ValidateAccountId("ACC-1234-5678").ok());
  EXPECT_TRUE(ValidateAccountId("ACC-1234-5678-0001").ok());
  for (const char* id :
       {"", "ACC-1234", "TKN-1234-5678", "ACC-1234-5678-0001-0002", "ACC-12345678"}) {
    ExpectInvalid(ValidateAccountId(id), reason::kInvalidAccountId, "account_id");
  }
}

TEST(ValidationTest, NameCountsCodePointsNotBytes) {
  EXPECT_TRUE(ValidateName("a").ok());
  EXPECT_TRUE(ValidateName(Repeat("a", kMaxNameLength)).ok());
  EXPECT_TRUE(ValidateName(Repeat("\xC3\xA9", kMaxNameLength)).ok());          // é: 2 bytes
  EXPECT_TRUE(ValidateName(Repeat("\xF0\x9F\x94\x91", kMaxNameLength)).ok());  // key emoji: 4
  ExpectInvalid(ValidateName(""), reason::kInvalidName, "name");
  ExpectInvalid(ValidateName(Repeat("a", kMaxNameLength + 1)), reason::kInvalidName, "name");
  ExpectInvalid(ValidateName(Repeat("\xC3\xA9", kMaxNameLength + 1)), reason::kInvalidName, "name");
  EXPECT_THAT(std::string(ValidateName("").message()), HasSubstr("1..200"));
}

TEST(ValidationTest, RejectsInvalidUtf8) {
  for (const char* text : {
           "\x80",              // continuation without a lead
           "\xC3",              // truncated
           "\xC0\x80",          // overlong NUL
           "\xE0\x80\xAF",      // overlong '/'
           "\xED\xA0\x80",      // surrogate U+D800
           "\xF4\x90\x80\x80",  // above U+10FFFF
           "\xF8\x88\x80\x80\x80",
           "ok\xFF",
       }) {
    ExpectInvalid(ValidateName(text), reason::kInvalidName, "name");
    ExpectInvalid(ValidateDescription(text), reason::kInvalidDescription, "description");
    ExpectInvalid(ValidateReason(text), reason::kInvalidReason, "reason");
  }
  EXPECT_TRUE(ValidateName("\xF4\x8F\xBF\xBF").ok());  // U+10FFFF, the last code point
}

TEST(ValidationTest, DescriptionAndReasonLimits) {
  EXPECT_TRUE(ValidateDescription("").ok());
  EXPECT_TRUE(ValidateDescription(Repeat("d", kMaxDescriptionLength)).ok());
  ExpectInvalid(ValidateDescription(Repeat("d", kMaxDescriptionLength + 1)),
                reason::kInvalidDescription, "description");
  EXPECT_TRUE(ValidateReason("").ok());
  EXPECT_TRUE(ValidateReason(Repeat("r", kMaxReasonLength)).ok());
  ExpectInvalid(ValidateReason(Repeat("r", kMaxReasonLength + 1)), reason::kInvalidReason,
                "reason");
  EXPECT_THAT(std::string(ValidateReason(Repeat("r", 1001)).message()), HasSubstr("1000"));
}

TEST(ValidationTest, SecretSha256IsHexOfEitherCase) {
  const std::string lower(64, 'a');
  absl::StatusOr<std::string> bytes = ParseSecretSha256(lower);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(*bytes, std::string(32, '\xAA'));
  absl::StatusOr<std::string> mixed = ParseSecretSha256("00FF10ab" + std::string(56, '0'));
  ASSERT_TRUE(mixed.ok()) << mixed.status();
  EXPECT_EQ(mixed->substr(0, 4), std::string("\x00\xFF\x10\xAB", 4));
  for (const std::string& hex : {std::string(), std::string(63, 'a'), std::string(65, 'a'),
                                 std::string(63, 'a') + "g", std::string(32, '\xAA')}) {
    ExpectInvalid(ParseSecretSha256(hex).status(), reason::kInvalidSecretHash, "secret_sha256");
  }
}

TEST(ValidationTest, Revisions) {
  EXPECT_TRUE(ValidateRevision(0, "min_revision").ok());
  EXPECT_TRUE(ValidateRevision(7, "min_revision").ok());
  ExpectInvalid(ValidateRevision(-1, "expected_revision"), reason::kInvalidRevision,
                "expected_revision");
}

TEST(ValidationTest, PageSizes) {
  EXPECT_EQ(*EffectivePageSize(0), kDefaultPageSize);
  EXPECT_EQ(*EffectivePageSize(1), 1);
  EXPECT_EQ(*EffectivePageSize(kMaxPageSize), kMaxPageSize);
  EXPECT_EQ(*EffectivePageSize(kMaxPageSize + 1), kMaxPageSize);
  EXPECT_EQ(*EffectivePageSize(2147483647), kMaxPageSize);
  ExpectInvalid(EffectivePageSize(-1).status(), reason::kInvalidPageSize, "page_size");
}

TEST(ValidationTest, StateFilter) {
  for (int state = 0; state <= 3; ++state) EXPECT_TRUE(ValidateStateFilter(state).ok()) << state;
  ExpectInvalid(ValidateStateFilter(4), reason::kInvalidState, "state");
  ExpectInvalid(ValidateStateFilter(-1), reason::kInvalidState, "state");
}

}  // namespace
}  // namespace tokenstatus
