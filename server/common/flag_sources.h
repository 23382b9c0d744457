#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace tokenstatus {

// Where a program's Abseil flags come from besides the command line, and an early check of the
// command line's values, shared by tokenstatus-server and token-sidecar. Not thread-safe (flags).

// Sets every flag of `names` that has an environment variable `<env_prefix><NAME IN UPPER
// CASE>` to its value, so that command-line flags parsed afterwards override it. Call before
// absl::ParseCommandLine. INVALID_ARGUMENT naming the variable if a value does not parse.
absl::Status ApplyFlagEnvironment(absl::string_view env_prefix,
                                  absl::Span<const char* const> names);

// Parses the values the command line gives the flags of `names` ("--name=value", "--name value",
// "--name" for a bool; one or two dashes) into the flags, so that a malformed value is reported
// as INVALID_ARGUMENT naming the flag (the program exits 2) rather than by
// absl::ParseCommandLine, which exits with 1. Call after ApplyFlagEnvironment and before
// absl::ParseCommandLine (which then parses the same values again, and everything else).
absl::Status CheckFlagValues(int argc, char** argv, absl::Span<const char* const> names);

}  // namespace tokenstatus
