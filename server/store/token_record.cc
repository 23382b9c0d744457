#include "server/store/token_record.h"

#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/status_util.h"
#include "core/token_state.h"
#include "google/protobuf/util/time_util.h"

namespace tokenstatus {
namespace {

using google::protobuf::util::TimeUtil;

constexpr size_t kSha256Size = 32;

absl::Status BadRecord(absl::string_view message) {
  return MakeError(absl::StatusCode::kInternal, reason::kStoreError,
                   absl::StrCat("malformed token record: ", message));
}

absl::Status BadField(absl::string_view field, absl::string_view value) {
  return BadRecord(
      absl::StrCat("field ", field, " has the value \"", absl::CHexEscape(value), "\""));
}

bool ParseState(absl::string_view name, Token::State* state) {
  for (Token::State candidate :
       {Token::STATE_ACTIVE, Token::STATE_DISABLED, Token::STATE_DELETED}) {
    if (name == StateName(candidate)) {
      *state = candidate;
      return true;
    }
  }
  return false;
}

bool ParseEventType(absl::string_view name, TokenEvent::Type* type) {
  constexpr std::pair<absl::string_view, TokenEvent::Type> kTypes[] = {
      {"CREATED", TokenEvent::TYPE_CREATED},
      {"ENABLED", TokenEvent::TYPE_ENABLED},
      {"DISABLED", TokenEvent::TYPE_DISABLED},
      {"DELETED", TokenEvent::TYPE_DELETED},
  };
  for (const auto& [type_name, value] : kTypes) {
    if (name == type_name) {
      *type = value;
      return true;
    }
  }
  return false;
}

bool ParseMillis(absl::string_view value, google::protobuf::Timestamp* timestamp) {
  int64_t millis = 0;
  if (!absl::SimpleAtoi(value, &millis) || millis < 0) return false;
  *timestamp = TimeUtil::MillisecondsToTimestamp(millis);
  return true;
}

bool ParseSha256Hex(absl::string_view hex, std::string* raw) {
  if (hex.size() != 2 * kSha256Size) return false;
  for (char c : hex) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  *raw = absl::HexStringToBytes(hex);
  return true;
}

// The fields every record must have, one bit each.
enum RequiredField : unsigned {
  kId = 1 << 0,
  kAccount = 1 << 1,
  kState = 1 << 2,
  kRevision = 1 << 3,
  kCreate = 1 << 4,
  kUpdate = 1 << 5,
};
constexpr unsigned kAllRequired = kId | kAccount | kState | kRevision | kCreate | kUpdate;

// Sets the Token field named `field` from `value`. Returns false if `value` does not parse;
// ignores unknown fields. `seen` collects the RequiredField bits of the fields found.
bool SetField(absl::string_view field, absl::string_view value, Token& token, unsigned& seen) {
  if (field == "id") {
    token.set_id(std::string(value));
    seen |= kId;
  } else if (field == "account_id") {
    token.set_account_id(std::string(value));
    seen |= kAccount;
  } else if (field == "name") {
    token.set_name(std::string(value));
  } else if (field == "description") {
    token.set_description(std::string(value));
  } else if (field == "state") {
    Token::State state = Token::STATE_UNSPECIFIED;
    if (!ParseState(value, &state)) return false;
    token.set_state(state);
    seen |= kState;
  } else if (field == "revision") {
    int64_t revision = 0;
    if (!absl::SimpleAtoi(value, &revision) || revision <= 0) return false;
    token.set_revision(revision);
    seen |= kRevision;
  } else if (field == "create_time") {
    if (!ParseMillis(value, token.mutable_create_time())) return false;
    seen |= kCreate;
  } else if (field == "update_time") {
    if (!ParseMillis(value, token.mutable_update_time())) return false;
    seen |= kUpdate;
  } else if (field == "updated_by") {
    token.set_updated_by(std::string(value));
  } else if (field == "state_reason") {
    token.set_state_reason(std::string(value));
  } else if (field == "secret_sha256") {
    if (!ParseSha256Hex(value, token.mutable_secret_sha256())) return false;
  }
  return true;
}

// Parses `fields` into `token`; for an event (`event` non-null, `token` its token) also its
// `type` and `chain`, and its `prev` into `*prev` if non-null.
absl::Status ParseFields(absl::Span<const absl::string_view> fields, Token& token,
                         TokenEvent* event, std::string* prev) {
  if (fields.size() % 2 != 0) return BadRecord("odd number of field/value elements");
  unsigned seen = 0;
  bool has_type = false;
  for (size_t i = 0; i < fields.size(); i += 2) {
    const absl::string_view field = fields[i];
    const absl::string_view value = fields[i + 1];
    if (event != nullptr && field == "type") {
      TokenEvent::Type type = TokenEvent::TYPE_UNSPECIFIED;
      if (!ParseEventType(value, &type)) return BadField(field, value);
      event->set_type(type);
      has_type = true;
    } else if (event != nullptr && field == "chain") {
      event->set_chain(std::string(value));
    } else if (event != nullptr && field == "prev") {
      if (prev != nullptr) *prev = std::string(value);
    } else if (!SetField(field, value, token, seen)) {
      return BadField(field, value);
    }
  }
  if (seen != kAllRequired) {
    return BadRecord("missing one of id, account_id, state, revision, create_time, update_time");
  }
  if (event != nullptr && !has_type) return BadRecord("event without a type");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Token::State> StateFromField(absl::string_view value) {
  Token::State state = Token::STATE_UNSPECIFIED;
  if (!ParseState(value, &state)) return BadField("state", value);
  return state;
}

std::string Sha256ToHex(absl::string_view raw) { return absl::BytesToHexString(raw); }

absl::StatusOr<Token> TokenFromFields(absl::Span<const absl::string_view> fields) {
  Token token;
  if (absl::Status status = ParseFields(fields, token, nullptr, nullptr); !status.ok()) {
    return status;
  }
  return token;
}

absl::StatusOr<TokenEvent> TokenEventFromFields(absl::Span<const absl::string_view> fields,
                                                std::string* prev) {
  TokenEvent event;
  if (absl::Status status = ParseFields(fields, *event.mutable_token(), &event, prev);
      !status.ok()) {
    return status;
  }
  return event;
}

}  // namespace tokenstatus
