#pragma once

#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace tokenstatus::tokenctl {

// Reading the operator's answers from stdin. Not thread-safe (stdin, the terminal's mode).

// Writes "<question> [y/N] " to stderr and reads one line from stdin. True only for "y" or
// "yes" (any case, surrounding blanks ignored); false for anything else, an empty line, or EOF
// (so piped input without a "y" refuses).
bool Confirm(absl::string_view question);

// Reads a secret: the first line of stdin without surrounding blanks. On a terminal, first
// writes "Secret: " to stderr and turns off echo while the line is typed. nullopt if stdin
// holds no non-blank line. The secret is never echoed or logged.
std::optional<std::string> ReadSecret();

}  // namespace tokenstatus::tokenctl
