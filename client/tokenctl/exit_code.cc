#include "client/tokenctl/exit_code.h"

#include <iostream>

#include "absl/strings/str_cat.h"
#include "core/status_util.h"

namespace tokenstatus::tokenctl {

int ReportError(const absl::Status& status, absl::string_view server_address) {
  const bool unreachable = status.code() == absl::StatusCode::kUnavailable ||
                           status.code() == absl::StatusCode::kDeadlineExceeded;
  const std::string code = absl::StatusCodeToString(status.code());
  const std::string reason = ErrorReason(status);
  std::cerr << "tokenctl: " << status.message() << " (" << code;
  if (reason != code) std::cerr << ", reason " << reason;
  std::cerr << ")\n";
  if (unreachable) {
    std::cerr << "tokenctl: cannot reach the server at " << server_address
              << " (set --server or TOKENSTATUS_SERVER)\n";
    return kExitUnreachable;
  }
  return kExitRefused;
}

int UsageError(absl::string_view message) {
  std::cerr << "tokenctl: " << message << "\n";
  return kExitUsage;
}

}  // namespace tokenstatus::tokenctl
