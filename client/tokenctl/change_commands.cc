// tokenctl enable, disable and delete.

#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/tokenctl/argument_checks.h"
#include "client/tokenctl/commands.h"
#include "client/tokenctl/exit_code.h"
#include "client/tokenctl/output.h"
#include "client/tokenctl/terminal_input.h"

namespace tokenstatus::tokenctl {
namespace {

using apitoken::v1::DeleteTokenRequest;
using apitoken::v1::DeleteTokenResponse;
using apitoken::v1::DisableTokenRequest;
using apitoken::v1::DisableTokenResponse;
using apitoken::v1::EnableTokenRequest;
using apitoken::v1::EnableTokenResponse;

// One of the three state changes: Request/Response are its RPC's messages.
template <typename Request, typename Response>
struct ChangeKind {
  const char* command;      // "disable"
  const char* description;  // for --help
  const char* verb;         // "Disable", in the confirmation question
  const char* done;         // "disabled", in the outcome line
  bool confirm;             // ask unless --yes
  absl::StatusOr<ChangeResult> (TokenClient::*call)(const Request&);
};

// The command line of a change.
struct ChangeArgs {
  std::string token_id;
  std::string reason;
  bool yes = false;
};

template <typename Request, typename Response>
int RunChange(const CommandEnv& env, const ChangeKind<Request, Response>& kind,
              const ChangeArgs& args) {
  if (kind.confirm && !args.yes &&
      !Confirm(absl::StrCat(kind.verb, " token ", args.token_id, "?"))) {
    return UsageError(absl::StrCat("token ", args.token_id, " not ", kind.done,
                                   ": not confirmed (pass --yes to skip the confirmation)"));
  }
  Request request;
  request.set_token_id(args.token_id);
  request.set_reason(args.reason);
  absl::StatusOr<ChangeResult> result = (env.connect().get()->*kind.call)(request);
  if (!result.ok()) return ReportError(result.status(), env.options.server);
  if (env.options.json) {
    Response response;
    *response.mutable_token() = result->token;
    PrintJson(std::cout, response);
    if (result->already_in_state) PrintChange(std::cerr, result->token, kind.done, true);
  } else {
    PrintChange(std::cout, result->token, kind.done, result->already_in_state);
  }
  return kExitOk;
}

template <typename Request, typename Response>
void AddChangeCommand(CommandSet& commands, const ChangeKind<Request, Response>& kind) {
  auto args = std::make_shared<ChangeArgs>();
  CLI::App* sub = commands.Add(kind.command, kind.description, [kind, args](const CommandEnv& env) {
    return RunChange(env, kind, *args);
  });
  sub->add_option("TKN", args->token_id, "Token id")->required()->check(TokenIdCheck());
  sub->add_option("--reason", args->reason, "Why (recorded with the change)");
  sub->add_flag("--yes,-y", args->yes,
                kind.confirm ? "Do not ask for confirmation" : "Accepted; nothing is asked");
}

}  // namespace

void AddChangeCommands(CommandSet& commands) {
  AddChangeCommand(commands, ChangeKind<EnableTokenRequest, EnableTokenResponse>{
                                 "enable", "Enable a DISABLED token", "Enable", "enabled", false,
                                 &TokenClient::Enable});
  AddChangeCommand(commands, ChangeKind<DisableTokenRequest, DisableTokenResponse>{
                                 "disable", "Disable an ACTIVE token (asks unless --yes)",
                                 "Disable", "disabled", true, &TokenClient::Disable});
  AddChangeCommand(commands, ChangeKind<DeleteTokenRequest, DeleteTokenResponse>{
                                 "delete", "Delete a token for good (asks unless --yes)", "Delete",
                                 "deleted", true, &TokenClient::Delete});
}

}  // namespace tokenstatus::tokenctl
