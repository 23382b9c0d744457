#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace tokenstatus {

// Where a program's Abseil flags come from besides the command line, and an early check of the
// command line's values, shared by tokenstatus-server and token-sidecar. Not thread-safe (flags).

// The names of the flags defined (ABSL_FLAG) in `file`, sorted: pass __FILE__ from the file
// that defines a program's flags. Its ABSL_FLAG lines are then the program's one flag table.
std::vector<std::string> FlagNamesDefinedIn(absl::string_view file);

// Sets every flag of `names` that has an environment variable `<env_prefix><NAME IN UPPER
// CASE>` to its value, so that command-line flags parsed afterwards override it. Call before
// absl::ParseCommandLine. INVALID_ARGUMENT naming the variable if a value does not parse.
absl::Status ApplyFlagEnvironment(absl::string_view env_prefix,
                                  absl::Span<const std::string> names);

// Parses the values the command line gives the flags of `names` ("--name=value", "--name value",
// "--name" for a bool; one or two dashes) into the flags, so that a malformed value is reported
// as INVALID_ARGUMENT naming the flag (the program exits 2) rather than by
// absl::ParseCommandLine, which exits with 1. Call after ApplyFlagEnvironment and before
// absl::ParseCommandLine (which then parses the same values again, and everything else).
absl::Status CheckFlagValues(int argc, char** argv, absl::Span<const std::string> names);

// True if the command line asks for help ("--help", "-help" or "-h"). The program then prints
// FlagsHelp and exits 0, before absl::ParseCommandLine (whose --help lists only the flags
// defined in the main file, and exits 1).
bool HelpRequested(int argc, char** argv);

// One entry per flag of `names`, in that order: "--name (default: D; env: <env_prefix>NAME)"
// and its help text on the next line.
std::string FlagsHelp(absl::string_view env_prefix, absl::Span<const std::string> names);

// A program's flags: its name and usage line (for --help and errors), the prefix of their
// environment variables, and their names (FlagNamesDefinedIn).
struct ProgramFlags {
  std::string program;
  std::string usage;
  std::string env_prefix;
  std::vector<std::string> names;
};

// The flag steps every program here takes before it reads its configuration: --help prints the
// usage and FlagsHelp and returns 0; the environment, then the command line's values of
// `flags` are applied (ApplyFlagEnvironment, CheckFlagValues), an error printed as
// "<program>: <message>" returning 2; then absl::ParseCommandLine. Returns the exit code to exit
// with now, or nullopt to go on. Call once, first in main (after signals are blocked).
std::optional<int> ParseProgramFlags(int argc, char** argv, const ProgramFlags& flags);

}  // namespace tokenstatus
