#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "server/store/token_store.h"

namespace tokenstatus {

// The Redis representation of tokens: the record hash `<prefix>:t:<id>` and the event stream
// entries hold flat field/value lists with these fields (all values are strings):
//   id, account_id, name, description,
//   state          ACTIVE | DISABLED | DELETED (StateName, core/token_state.h),
//   revision       decimal,
//   create_time, update_time   milliseconds since the Unix epoch, decimal,
//   updated_by, state_reason,
//   secret_sha256  64 lowercase hex digits;
// an event entry has, in addition, `type`: CREATED | ENABLED | DISABLED | DELETED, and the
// history marks `prev` and `chain` (server/store/redis_scripts.h; absent in events written
// before marks existed).
// Unknown fields are ignored. All functions are pure and thread-safe.

// Parses a stored state (the value of a record's `state` field): the inverse of StateName.
// INTERNAL / STORE_ERROR for any other value, "" included.
absl::StatusOr<Token::State> StateFromField(absl::string_view value);

// The stored form of a 32-byte SHA-256: 64 lowercase hex digits.
std::string Sha256ToHex(absl::string_view raw);

// Parses a flat field/value list (field, value, field, value, ...) into a Token.
// INTERNAL / STORE_ERROR if the list has an odd length, lacks id, account_id, state, revision,
// create_time or update_time, or holds a value that does not parse.
absl::StatusOr<Token> TokenFromFields(absl::Span<const absl::string_view> fields);

// Parses an event entry's flat field/value list (`type`, `chain` and the token's fields) into a
// TokenEvent, and its `prev` mark into `*prev` if `prev` is non-null (left as it is when the
// entry has none). Errors as TokenFromFields, and for a missing or unknown type.
absl::StatusOr<TokenEvent> TokenEventFromFields(absl::Span<const absl::string_view> fields,
                                                std::string* prev = nullptr);

}  // namespace tokenstatus
