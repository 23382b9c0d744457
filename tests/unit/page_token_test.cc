#include "core/page_token.h"

#include <cstdint>
#include <limits>
#include <string>

#include "absl/strings/escaping.h"
#include "core/status_util.h"
#include "gtest/gtest.h"

namespace tokenstatus {
namespace {

template <typename T>
void ExpectInvalidPageToken(const absl::StatusOr<T>& decoded) {
  ASSERT_FALSE(decoded.ok()) << "decoded to " << *decoded;
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(decoded.status()), reason::kInvalidPageToken);
  EXPECT_EQ(ErrorInfoOf(decoded.status()).metadata().at("field"), "page_token");
}

const PageFilter kFilter{Token::STATE_DISABLED, "ACC-1111-2222", true};

TEST(PageTokenTest, RoundTrips) {
  for (const PageFilter& filter :
       {PageFilter{}, kFilter, PageFilter{Token::STATE_DELETED, "", false},
        PageFilter{Token::STATE_UNSPECIFIED, "ACC-1111-2222-3333", true}}) {
    for (const char* id : {"TKN-0000-0000", "TKN-1234-5678-9012"}) {
      const std::string token = EncodePageToken(id, filter);
      EXPECT_EQ(token.find_first_not_of(
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                std::string::npos)
          << token;
      absl::StatusOr<std::string> decoded = DecodePageToken(token, filter);
      ASSERT_TRUE(decoded.ok()) << decoded.status();
      EXPECT_EQ(*decoded, id);
    }
  }
}

TEST(PageTokenTest, RejectsEveryBitFlip) {
  const std::string token = EncodePageToken("TKN-1234-5678", kFilter);
  std::string bytes;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(token, &bytes));
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string flipped = bytes;
      flipped[i] = static_cast<char>(flipped[i] ^ (1 << bit));
      SCOPED_TRACE(testing::Message() << "byte " << i << " bit " << bit);
      ExpectInvalidPageToken(DecodePageToken(absl::WebSafeBase64Escape(flipped), kFilter));
    }
  }
}

TEST(PageTokenTest, RejectsEveryCharacterChangeTruncationAndExtension) {
  const std::string token = EncodePageToken("TKN-1234-5678", kFilter);
  const std::string alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/.";
  for (size_t i = 0; i < token.size(); ++i) {
    for (char c : alphabet) {
      if (c == token[i]) continue;
      std::string changed = token;
      changed[i] = c;
      SCOPED_TRACE(changed);
      ExpectInvalidPageToken(DecodePageToken(changed, kFilter));
    }
    ExpectInvalidPageToken(DecodePageToken(token.substr(0, i), kFilter));
  }
  ExpectInvalidPageToken(DecodePageToken(token + "A", kFilter));
  ExpectInvalidPageToken(DecodePageToken(token + "=", kFilter));
  ExpectInvalidPageToken(DecodePageToken("not a page token", kFilter));
}

TEST(PageTokenTest, RejectsAnotherFilter) {
  const std::string token = EncodePageToken("TKN-1234-5678", kFilter);
  PageFilter other_state = kFilter;
  other_state.state = Token::STATE_ACTIVE;
  PageFilter other_account = kFilter;
  other_account.account_id = "ACC-1111-2223";
  PageFilter no_account = kFilter;
  no_account.account_id.clear();
  PageFilter other_deleted = kFilter;
  other_deleted.show_deleted = false;
  for (const PageFilter& filter : {other_state, other_account, no_account, other_deleted}) {
    absl::StatusOr<std::string> decoded = DecodePageToken(token, filter);
    ExpectInvalidPageToken(decoded);
    EXPECT_NE(decoded.status().message().find("filters"), absl::string_view::npos);
  }
}

TEST(HistoryPageTokenTest, RoundTrips) {
  for (const char* id : {"TKN-0000-0000", "TKN-1234-5678-9012"}) {
    for (int64_t revision : {int64_t{1}, int64_t{42}, std::numeric_limits<int64_t>::max()}) {
      const std::string token = EncodeHistoryPageToken(id, revision);
      EXPECT_EQ(token.find_first_not_of(
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                std::string::npos)
          << token;
      absl::StatusOr<int64_t> decoded = DecodeHistoryPageToken(token, id);
      ASSERT_TRUE(decoded.ok()) << decoded.status();
      EXPECT_EQ(*decoded, revision);
    }
  }
}

TEST(HistoryPageTokenTest, RejectsEveryBitFlipTruncationAndExtension) {
  const std::string token = EncodeHistoryPageToken("TKN-1234-5678", 1234);
  std::string bytes;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(token, &bytes));
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string flipped = bytes;
      flipped[i] = static_cast<char>(flipped[i] ^ (1 << bit));
      SCOPED_TRACE(testing::Message() << "byte " << i << " bit " << bit);
      ExpectInvalidPageToken(
          DecodeHistoryPageToken(absl::WebSafeBase64Escape(flipped), "TKN-1234-5678"));
    }
  }
  for (size_t i = 0; i < token.size(); ++i) {
    ExpectInvalidPageToken(DecodeHistoryPageToken(token.substr(0, i), "TKN-1234-5678"));
  }
  ExpectInvalidPageToken(DecodeHistoryPageToken(token + "A", "TKN-1234-5678"));
  ExpectInvalidPageToken(DecodeHistoryPageToken("not a page token", "TKN-1234-5678"));
}

TEST(HistoryPageTokenTest, RejectsAnotherToken) {
  const std::string token = EncodeHistoryPageToken("TKN-1234-5678", 1234);
  for (const char* other : {"TKN-1234-5679", "TKN-1234-5678-0000", ""}) {
    absl::StatusOr<int64_t> decoded = DecodeHistoryPageToken(token, other);
    ExpectInvalidPageToken(decoded);
    EXPECT_NE(decoded.status().message().find("another token"), absl::string_view::npos)
        << decoded.status();
  }
}

TEST(HistoryPageTokenTest, NeitherKindPassesForTheOther) {
  // A listing's token whose last id is the token asked about, and the other way round.
  ExpectInvalidPageToken(
      DecodeHistoryPageToken(EncodePageToken("TKN-1234-5678", PageFilter{}), "TKN-1234-5678"));
  ExpectInvalidPageToken(DecodePageToken(EncodeHistoryPageToken("TKN-1234-5678", 7), PageFilter{}));
}

}  // namespace
}  // namespace tokenstatus
