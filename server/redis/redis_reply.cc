#include "server/redis/redis_reply.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/status_util.h"

namespace tokenstatus {
namespace {

// Error codes after which the same command may succeed later without any change by the caller.
constexpr absl::string_view kTransientErrorCodes[] = {
    "LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "READONLY", "CLUSTERDOWN", "NOREPLICAS",
};

// `message` without the generic "ERR " prefix.
absl::string_view WithoutErrPrefix(absl::string_view message) {
  constexpr absl::string_view kErrPrefix = "ERR ";
  if (absl::StartsWith(message, kErrPrefix)) message.remove_prefix(kErrPrefix.size());
  return message;
}

}  // namespace

absl::Status RedisUnavailable(absl::string_view detail) {
  return MakeError(absl::StatusCode::kUnavailable, reason::kStoreUnavailable,
                   absl::StrCat("redis unavailable: ", detail));
}

absl::Status RedisErrorToStatus(absl::string_view message) {
  const absl::string_view code = ErrorCode(message);
  for (absl::string_view transient : kTransientErrorCodes) {
    if (code == transient) {
      return MakeError(absl::StatusCode::kUnavailable, reason::kStoreUnavailable,
                       absl::StrCat("redis unavailable: ", message));
    }
  }
  return MakeError(absl::StatusCode::kInternal, reason::kStoreError,
                   absl::StrCat("redis error: ", message));
}

absl::string_view ErrorCode(absl::string_view message) {
  message = WithoutErrPrefix(message);
  return message.substr(0, message.find(' '));
}

absl::string_view ErrorDetail(absl::string_view message) {
  message = WithoutErrPrefix(message);
  const size_t space = message.find(' ');
  return space == absl::string_view::npos ? absl::string_view() : message.substr(space + 1);
}

bool IsErrorReply(const redisReply& reply, absl::string_view code) {
  return reply.type == REDIS_REPLY_ERROR && ErrorCode(ReplyText(reply)) == code;
}

absl::StatusOr<const redisReply*> CheckReply(absl::StatusOr<const redisReply*> reply) {
  if (reply.ok() && (*reply)->type == REDIS_REPLY_ERROR) {
    return RedisErrorToStatus(ReplyText(**reply));
  }
  return reply;
}

absl::Status UnexpectedReply(absl::string_view what) {
  return MakeError(absl::StatusCode::kInternal, reason::kStoreError,
                   absl::StrCat("unexpected redis reply: ", what));
}

absl::string_view ReplyText(const redisReply& reply) {
  switch (reply.type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
      return absl::string_view(reply.str, reply.len);
    default:
      return absl::string_view();
  }
}

absl::StatusOr<int64_t> ReplyInteger(const redisReply& reply) {
  if (reply.type == REDIS_REPLY_INTEGER) return static_cast<int64_t>(reply.integer);
  int64_t value = 0;
  if (reply.type == REDIS_REPLY_STRING && absl::SimpleAtoi(ReplyText(reply), &value)) {
    return value;
  }
  return UnexpectedReply(absl::StrCat("expected an integer, got reply type ", reply.type));
}

absl::StatusOr<absl::Span<const redisReply* const>> ReplyArray(const redisReply& reply) {
  if (reply.type != REDIS_REPLY_ARRAY) {
    return UnexpectedReply(absl::StrCat("expected an array, got reply type ", reply.type));
  }
  return absl::Span<const redisReply* const>(reply.element, reply.elements);
}

absl::StatusOr<std::vector<absl::string_view>> ReplyStrings(const redisReply& reply) {
  absl::StatusOr<absl::Span<const redisReply* const>> elements = ReplyArray(reply);
  if (!elements.ok()) return elements.status();
  std::vector<absl::string_view> strings;
  strings.reserve(elements->size());
  for (const redisReply* element : *elements) {
    if (element->type != REDIS_REPLY_STRING && element->type != REDIS_REPLY_STATUS) {
      return UnexpectedReply(
          absl::StrCat("expected an array of strings, got element type ", element->type));
    }
    strings.push_back(ReplyText(*element));
  }
  return strings;
}

absl::StatusOr<std::vector<std::string>> ReplyStringCopies(const redisReply& reply) {
  absl::StatusOr<std::vector<absl::string_view>> strings = ReplyStrings(reply);
  if (!strings.ok()) return strings.status();
  return std::vector<std::string>(strings->begin(), strings->end());
}

}  // namespace tokenstatus
