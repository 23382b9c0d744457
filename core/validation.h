#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "apitoken/v1/token_service.pb.h"

namespace tokenstatus {

// The domain's field rules. Every check returns OK or INVALID_ARGUMENT with a field-specific
// ErrorInfo reason (core/status_util.h), a message naming the field and its limit, and
// ErrorInfo metadata {"field": "<proto field name>"}. The offending value is never echoed: it
// may be large, and a caller may have pasted a secret into the wrong field.
// All functions are pure and thread-safe.

// Length limits, in Unicode code points.
inline constexpr int kMaxNameLength = 200;
inline constexpr int kMaxDescriptionLength = 2000;
inline constexpr int kMaxReasonLength = 1000;

// ListTokens page sizes.
inline constexpr int kDefaultPageSize = 100;
inline constexpr int kMaxPageSize = 1000;

// True if `id` matches ^TKN(-[0-9]{4}){2,3}$.
bool IsValidTokenId(absl::string_view id);

// INVALID_TOKEN_ID unless IsValidTokenId(id). `field` names the request field in the error.
absl::Status ValidateTokenId(absl::string_view id, absl::string_view field = "token_id");

// INVALID_ACCOUNT_ID unless `id` matches ^ACC(-[0-9]{4}){2,3}$.
absl::Status ValidateAccountId(absl::string_view id, absl::string_view field = "account_id");

// INVALID_NAME unless `name` is valid UTF-8 of 1..kMaxNameLength code points.
absl::Status ValidateName(absl::string_view name);

// INVALID_DESCRIPTION unless `description` is valid UTF-8 of 0..kMaxDescriptionLength code
// points.
absl::Status ValidateDescription(absl::string_view description);

// INVALID_REASON unless `reason` is valid UTF-8 of 0..kMaxReasonLength code points.
absl::Status ValidateReason(absl::string_view reason);

// Returns the 32 raw bytes encoded by `hex` (64 hex digits, either case), else
// INVALID_SECRET_SHA256 with field "secret_sha256".
absl::StatusOr<std::string> ParseSecretSha256(absl::string_view hex);

// INVALID_REVISION if `revision` is negative (0 means "not set" in every request).
absl::Status ValidateRevision(int64_t revision, absl::string_view field);

// Returns the page size to serve for a requested one: 0 -> kDefaultPageSize, larger than
// kMaxPageSize -> kMaxPageSize; negative -> INVALID_PAGE_SIZE with field "page_size".
absl::StatusOr<int> EffectivePageSize(int32_t requested);

// INVALID_STATE unless `state` is a value of Token.State (proto3 enums may carry unknown
// numbers). `field` names the request field.
absl::Status ValidateStateFilter(int state, absl::string_view field = "state");

}  // namespace tokenstatus
