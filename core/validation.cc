#include "core/validation.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/types/optional.h"
#include "core/status_util.h"

namespace tokenstatus {
namespace {

absl::Status InvalidField(absl::string_view reason, absl::string_view field,
                          absl::string_view requirement) {
  return MakeError(absl::StatusCode::kInvalidArgument, reason, absl::StrCat(field, requirement),
                   {{"field", field}});
}

// True if `id` is `prefix` followed by 2 or 3 groups of "-NNNN" (N a decimal digit).
bool MatchesIdPattern(absl::string_view id, absl::string_view prefix) {
  if (!absl::ConsumePrefix(&id, prefix)) return false;
  constexpr size_t kGroupLength = 5;  // "-NNNN"
  const size_t groups = id.size() / kGroupLength;
  if (id.size() % kGroupLength != 0 || groups < 2 || groups > 3) return false;
  for (size_t i = 0; i < id.size(); ++i) {
    const bool ok = i % kGroupLength == 0 ? id[i] == '-' : absl::ascii_isdigit(id[i]);
    if (!ok) return false;
  }
  return true;
}

// Returns the number of code points of `text`, or nullopt if it is not valid UTF-8 (overlong
// forms, surrogates and values above U+10FFFF are invalid).
absl::optional<int64_t> CountCodePoints(absl::string_view text) {
  int64_t count = 0;
  size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    size_t length;
    uint32_t code_point;
    if (lead < 0x80) {
      length = 1;
      code_point = lead;
    } else if ((lead & 0xE0) == 0xC0) {
      length = 2;
      code_point = lead & 0x1F;
    } else if ((lead & 0xF0) == 0xE0) {
      length = 3;
      code_point = lead & 0x0F;
    } else if ((lead & 0xF8) == 0xF0) {
      length = 4;
      code_point = lead & 0x07;
    } else {
      return absl::nullopt;
    }
    if (text.size() - i < length) return absl::nullopt;
    for (size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return absl::nullopt;
      code_point = (code_point << 6) | (next & 0x3F);
    }
    static constexpr uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code_point < kMinForLength[length] || code_point > 0x10FFFF ||
        (code_point >= 0xD800 && code_point <= 0xDFFF)) {
      return absl::nullopt;
    }
    i += length;
    ++count;
  }
  return count;
}

// Checks that `text` is valid UTF-8 of min_length..max_length code points.
absl::Status ValidateText(absl::string_view text, absl::string_view field, absl::string_view reason,
                          int min_length, int max_length) {
  const absl::optional<int64_t> length = CountCodePoints(text);
  if (!length.has_value()) return InvalidField(reason, field, " must be valid UTF-8");
  if (*length < min_length || *length > max_length) {
    return InvalidField(reason, field,
                        absl::StrCat(" must have ", min_length, "..", max_length,
                                     " characters (has ", *length, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

bool IsValidTokenId(absl::string_view id) { return MatchesIdPattern(id, "TKN"); }

absl::Status ValidateTokenId(absl::string_view id, absl::string_view field) {
  if (IsValidTokenId(id)) return absl::OkStatus();
  return InvalidField(reason::kInvalidTokenId, field,
                      " must look like TKN-NNNN-NNNN (TKN and 2 or 3 groups of -NNNN)");
}

absl::Status ValidateAccountId(absl::string_view id, absl::string_view field) {
  if (MatchesIdPattern(id, "ACC")) return absl::OkStatus();
  return InvalidField(reason::kInvalidAccountId, field,
                      " must look like ACC-NNNN-NNNN (ACC and 2 or 3 groups of -NNNN)");
}

absl::Status ValidateName(absl::string_view name) {
  return ValidateText(name, "name", reason::kInvalidName, 1, kMaxNameLength);
}

absl::Status ValidateDescription(absl::string_view description) {
  return ValidateText(description, "description", reason::kInvalidDescription, 0,
                      kMaxDescriptionLength);
}

absl::Status ValidateReason(absl::string_view reason) {
  return ValidateText(reason, "reason", reason::kInvalidReason, 0, kMaxReasonLength);
}

absl::StatusOr<std::string> ParseSecretSha256(absl::string_view hex) {
  constexpr size_t kHexLength = 64;
  bool ok = hex.size() == kHexLength;
  for (size_t i = 0; ok && i < hex.size(); ++i) ok = absl::ascii_isxdigit(hex[i]);
  if (!ok) {
    return InvalidField(reason::kInvalidSecretHash, "secret_sha256",
                        " must be 64 hex digits (a SHA-256)");
  }
  return absl::HexStringToBytes(hex);
}

absl::Status ValidateRevision(int64_t revision, absl::string_view field) {
  if (revision >= 0) return absl::OkStatus();
  return InvalidField(reason::kInvalidRevision, field, " must be >= 0 (0 = not set)");
}

absl::StatusOr<int> EffectivePageSize(int32_t requested) {
  if (requested < 0) {
    return InvalidField(
        reason::kInvalidPageSize, "page_size",
        absl::StrCat(" must be >= 0 (0 = ", kDefaultPageSize, ", at most ", kMaxPageSize, ")"));
  }
  if (requested == 0) return kDefaultPageSize;
  return requested > kMaxPageSize ? kMaxPageSize : static_cast<int>(requested);
}

absl::Status ValidateStateFilter(int state, absl::string_view field) {
  if (apitoken::v1::Token::State_IsValid(state)) return absl::OkStatus();
  return InvalidField(reason::kInvalidState, field, " must be a Token.State value (0..3)");
}

}  // namespace tokenstatus
