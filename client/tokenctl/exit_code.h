#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tokenstatus::tokenctl {

// tokenctl's exit codes.
enum ExitCode : int {
  kExitOk = 0,           // done
  kExitRefused = 1,      // the server refused (its message and ErrorInfo reason are printed)
  kExitUsage = 2,        // bad command line, unconfirmed change, no secret on stdin
  kExitUnreachable = 3,  // the server cannot be reached (UNAVAILABLE or DEADLINE_EXCEEDED after
                         // the client's retries)
};

// Prints "tokenctl: <message> (<CODE>, reason <REASON>)" for the failed call `status` to
// stderr (without the reason when it only repeats the code), and for an unreachable server also
// which address was tried. Returns kExitUnreachable for UNAVAILABLE and DEADLINE_EXCEEDED, else
// kExitRefused. `status` must not be OK.
int ReportError(const absl::Status& status, absl::string_view server_address);

// Prints "tokenctl: <message>" to stderr and returns kExitUsage.
int UsageError(absl::string_view message);

}  // namespace tokenstatus::tokenctl
