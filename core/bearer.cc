#include "core/bearer.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace tokenstatus {

namespace {
constexpr absl::string_view kBearerScheme = "bearer ";
}  // namespace

std::optional<absl::string_view> BearerCredential(absl::string_view header_value) {
  if (!absl::StartsWithIgnoreCase(header_value, kBearerScheme)) return std::nullopt;
  const absl::string_view credential =
      absl::StripAsciiWhitespace(header_value.substr(kBearerScheme.size()));
  if (credential.empty()) return std::nullopt;
  return credential;
}

}  // namespace tokenstatus
