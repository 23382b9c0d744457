#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/list_query.h"

namespace tokenstatus {

// The filters of a listing. A page token is valid only with the filters it was made for.
struct PageFilter {
  Token::State state = Token::STATE_UNSPECIFIED;
  std::string account_id;
  bool show_deleted = false;
};

// Opaque page tokens: base64url (no padding) of a payload followed by the first 16 bytes of
// HMAC-SHA256(key, payload). The payload's first byte says what it continues:
//   ListTokens (1):       1 | state (1) | show_deleted (1) | len + account_id | len + last id
//   ListTokenEvents (2):  2 | len + token id | len + revision (decimal)
// so neither kind is accepted in place of the other. The key is a constant compiled into the
// server, so every replica accepts every replica's tokens. The MAC detects tampering and
// corruption, and the embedded filters (token id) detect a token reused with other filters
// (another token). It is not an access control: a forged cursor only skips ahead in a listing
// the caller may read anyway, so a key known to everyone who has the source grants nothing.
// Thread-safe, pure functions.

// Returns the page token that continues a listing with `filter` after `last_id`. `last_id` and
// filter.account_id are valid ids (core/validation.h), so each fits its length byte.
std::string EncodePageToken(absl::string_view last_id, const PageFilter& filter);

// Returns the last id of `page_token`, or INVALID_ARGUMENT / INVALID_PAGE_TOKEN (field
// "page_token") if it is malformed, tampered with, of an unknown version, or was made for other
// filters than `filter`.
absl::StatusOr<std::string> DecodePageToken(absl::string_view page_token, const PageFilter& filter);

// Returns the page token that continues the history of `token_id` (a valid id) with the
// changes below `before_revision` (> 0).
std::string EncodeHistoryPageToken(absl::string_view token_id, int64_t before_revision);

// Returns the revision of `page_token` (> 0), below which the history of `token_id` continues,
// or INVALID_ARGUMENT / INVALID_PAGE_TOKEN (field "page_token") if it is malformed, tampered
// with, of another kind or version, or was made for another token than `token_id`.
absl::StatusOr<int64_t> DecodeHistoryPageToken(absl::string_view page_token,
                                               absl::string_view token_id);

}  // namespace tokenstatus
