// tokenctl verify.

#include <iostream>
#include <optional>
#include <string>

#include "client/tokenctl/commands.h"
#include "client/tokenctl/exit_code.h"
#include "client/tokenctl/output.h"
#include "client/tokenctl/terminal_input.h"

namespace tokenstatus::tokenctl {
namespace {

// The answer is printed whatever it is (VALID, DISABLED, NOT_FOUND, ...): exit 0.
int RunVerify(const CommandEnv& env) {
  std::optional<std::string> secret = ReadSecret();
  if (!secret.has_value()) return UsageError("no secret on stdin (verify reads it from stdin)");
  apitoken::v1::VerifyTokenRequest request;
  request.set_secret(*std::move(secret));
  absl::StatusOr<apitoken::v1::VerifyTokenResponse> answer = env.connect()->Verify(request);
  if (!answer.ok()) return ReportError(answer.status(), env.options.server);
  if (env.options.json) {
    PrintJson(std::cout, *answer);
  } else {
    PrintVerifyResult(std::cout, *answer);
  }
  return kExitOk;
}

}  // namespace

void AddVerifyCommand(CommandSet& commands) {
  commands.Add("verify", "Check a token secret read from stdin (never an argument)", RunVerify);
}

}  // namespace tokenstatus::tokenctl
