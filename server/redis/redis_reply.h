#pragma once

#include <hiredis/hiredis.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace tokenstatus {

// The translation of hiredis outcomes (transport failures, error replies, unexpected reply
// shapes) into absl::Status, and typed views of hiredis replies. Every function is pure and
// thread-safe; views point into the reply and are valid only as long as it is.

// UNAVAILABLE / STORE_UNAVAILABLE "redis unavailable: <detail>": Redis cannot be reached, the
// connection dropped, or no reply came in time.
absl::Status RedisUnavailable(absl::string_view detail);

// The status for a Redis error reply with text `message` (e.g. "WRONGTYPE Operation against a
// key ..."). Error codes that mean "try again later" (LOADING, BUSY, MASTERDOWN, TRYAGAIN,
// READONLY, CLUSTERDOWN, NOREPLICAS) give UNAVAILABLE / STORE_UNAVAILABLE; every other error
// INTERNAL / STORE_ERROR. The message is kept (it never holds a credential: AUTH errors are not
// echoed by Redis).
absl::Status RedisErrorToStatus(absl::string_view message);

// The first word of an error reply's text, skipping the generic "ERR " prefix that Redis puts
// before Lua error replies without a code: "ERR TOKEN_NOT_FOUND x" and "TOKEN_NOT_FOUND x" both
// give "TOKEN_NOT_FOUND".
absl::string_view ErrorCode(absl::string_view message);

// The text after ErrorCode(message) and the space that follows it ("" if none).
absl::string_view ErrorDetail(absl::string_view message);

// Whether `reply` is an error reply whose ErrorCode is `code`.
bool IsErrorReply(const redisReply& reply, absl::string_view code);

// The outcome of a command as a status: a failed outcome (UNAVAILABLE) passes through, an error
// reply becomes RedisErrorToStatus(its text), any other reply is returned unchanged.
absl::StatusOr<const redisReply*> CheckReply(absl::StatusOr<const redisReply*> reply);

// INTERNAL / STORE_ERROR "unexpected redis reply: <what>", for replies of an unexpected shape.
absl::Status UnexpectedReply(absl::string_view what);

// The bytes of a STRING, STATUS or ERROR reply; "" for any other type.
absl::string_view ReplyText(const redisReply& reply);

// The value of an INTEGER reply, or of a STRING reply holding a decimal integer.
// UnexpectedReply otherwise.
absl::StatusOr<int64_t> ReplyInteger(const redisReply& reply);

// The elements of an ARRAY reply; UnexpectedReply for any other type.
absl::StatusOr<absl::Span<const redisReply* const>> ReplyArray(const redisReply& reply);

// The elements of an ARRAY reply of STRING/STATUS replies (e.g. HGETALL's flat field/value
// list); UnexpectedReply for any other shape.
absl::StatusOr<std::vector<absl::string_view>> ReplyStrings(const redisReply& reply);

// ReplyStrings, copied: for strings kept after the reply is freed.
absl::StatusOr<std::vector<std::string>> ReplyStringCopies(const redisReply& reply);

}  // namespace tokenstatus
