#pragma once

#include "absl/strings/string_view.h"

namespace tokenstatus {

enum class LogLevel { kInfo, kWarning, kError };

// Writes one line "<RFC 3339 UTC time> <LEVEL> <message>" to stderr with a single write(2), so
// lines from different threads never interleave. Messages are logfmt-style key=value pairs,
// e.g. Log(LogLevel::kInfo, "event=token_changed token=TKN-1234-5678 revision=42").
// Never pass a secret (token secret, password, bearer credential). Thread-safe.
void Log(LogLevel level, absl::string_view message);

}  // namespace tokenstatus
