#pragma once

#include <optional>

#include "absl/strings/string_view.h"

namespace tokenstatus {

// The credential of an `authorization` header value of the form "Bearer <credential>" (the
// scheme case-insensitive, RFC 6750), surrounding whitespace stripped; nullopt for any other
// form or an empty credential. Pure; never logs the value.
std::optional<absl::string_view> BearerCredential(absl::string_view header_value);

}  // namespace tokenstatus
