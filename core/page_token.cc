#include "core/page_token.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdint>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/types/optional.h"
#include "core/status_util.h"
#include "core/token_secret.h"
#include "core/validation.h"

namespace tokenstatus {
namespace {

// The first payload byte: the kind (and version) of a page token.
constexpr uint8_t kVersion = 1;         // ListTokens
constexpr uint8_t kHistoryVersion = 2;  // ListTokenEvents
constexpr size_t kMacLength = 16;
// Not a secret (see the header): it only makes the MAC specific to this service.
constexpr char kMacKey[] = "tokenstatus.apitoken.v1/page-token/v1";

std::string Mac(absl::string_view payload) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), kMacKey, sizeof(kMacKey) - 1,
       reinterpret_cast<const unsigned char*>(payload.data()), payload.size(), digest, &length);
  return std::string(reinterpret_cast<const char*>(digest), kMacLength);
}

void AppendString(absl::string_view value, std::string* out) {
  out->push_back(static_cast<char>(value.size()));
  out->append(value.data(), value.size());
}

// Reads a length-prefixed string written by AppendString from the front of `in`.
absl::optional<std::string> ConsumeString(absl::string_view* in) {
  if (in->empty()) return absl::nullopt;
  const size_t length = static_cast<uint8_t>(in->front());
  if (in->size() < 1 + length) return absl::nullopt;
  std::string value(in->substr(1, length));
  in->remove_prefix(1 + length);
  return value;
}

absl::Status InvalidPageToken(absl::string_view why) {
  return MakeError(absl::StatusCode::kInvalidArgument, reason::kInvalidPageToken,
                   absl::StrCat("page_token ", why), {{"field", "page_token"}});
}

// The page token of `payload`: base64url of payload | MAC.
std::string Seal(std::string payload) {
  payload.append(Mac(payload));
  return absl::WebSafeBase64Escape(payload);
}

// The payload of `page_token` (at least `min_payload` bytes) if it is canonical base64url and
// its MAC matches; INVALID_PAGE_TOKEN otherwise.
absl::StatusOr<std::string> Open(absl::string_view page_token, size_t min_payload) {
  std::string bytes;
  // Only the canonical encoding is accepted, so no two strings name the same token.
  if (!absl::WebSafeBase64Unescape(page_token, &bytes) ||
      absl::WebSafeBase64Escape(bytes) != page_token || bytes.size() < min_payload + kMacLength) {
    return InvalidPageToken("is malformed; pass next_page_token unchanged");
  }
  const absl::string_view payload(bytes.data(), bytes.size() - kMacLength);
  if (!ConstantTimeEquals(Mac(payload), absl::string_view(bytes).substr(payload.size()))) {
    return InvalidPageToken("is corrupt or was altered; pass next_page_token unchanged");
  }
  bytes.resize(payload.size());
  return bytes;
}

}  // namespace

std::string EncodePageToken(absl::string_view last_id, const PageFilter& filter) {
  std::string payload;
  payload.push_back(static_cast<char>(kVersion));
  payload.push_back(static_cast<char>(filter.state));
  payload.push_back(filter.show_deleted ? 1 : 0);
  AppendString(filter.account_id, &payload);
  AppendString(last_id, &payload);
  return Seal(std::move(payload));
}

absl::StatusOr<std::string> DecodePageToken(absl::string_view page_token,
                                            const PageFilter& filter) {
  absl::StatusOr<std::string> opened = Open(page_token, 3);
  if (!opened.ok()) return opened.status();
  absl::string_view payload = *opened;
  const auto version = static_cast<uint8_t>(payload[0]);
  const auto state = static_cast<uint8_t>(payload[1]);
  const auto show_deleted = static_cast<uint8_t>(payload[2]);
  payload.remove_prefix(3);
  absl::optional<std::string> account_id = ConsumeString(&payload);
  absl::optional<std::string> last_id = ConsumeString(&payload);
  if (version != kVersion || !account_id.has_value() || !last_id.has_value() || !payload.empty() ||
      !IsValidTokenId(*last_id)) {
    return InvalidPageToken("is not understood by this server");
  }
  if (state != filter.state || (show_deleted != 0) != filter.show_deleted ||
      *account_id != filter.account_id) {
    return InvalidPageToken(
        "was made for other filters; repeat state, account_id and show_deleted of the first "
        "request");
  }
  return *std::move(last_id);
}

std::string EncodeHistoryPageToken(absl::string_view token_id, int64_t before_revision) {
  std::string payload;
  payload.push_back(static_cast<char>(kHistoryVersion));
  AppendString(token_id, &payload);
  AppendString(absl::StrCat(before_revision), &payload);
  return Seal(std::move(payload));
}

absl::StatusOr<int64_t> DecodeHistoryPageToken(absl::string_view page_token,
                                               absl::string_view token_id) {
  absl::StatusOr<std::string> opened = Open(page_token, 1);
  if (!opened.ok()) return opened.status();
  absl::string_view payload = *opened;
  const auto version = static_cast<uint8_t>(payload[0]);
  payload.remove_prefix(1);
  absl::optional<std::string> id = ConsumeString(&payload);
  absl::optional<std::string> revision_text = ConsumeString(&payload);
  int64_t revision = 0;
  if (version != kHistoryVersion || !id.has_value() || !revision_text.has_value() ||
      !payload.empty() || !IsValidTokenId(*id) || !absl::SimpleAtoi(*revision_text, &revision) ||
      revision <= 0) {
    return InvalidPageToken("is not understood by this server");
  }
  if (*id != token_id) {
    return InvalidPageToken("was made for another token; repeat token_id of the first request");
  }
  return revision;
}

}  // namespace tokenstatus
