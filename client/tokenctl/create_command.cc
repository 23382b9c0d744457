// tokenctl create.

#include <iostream>
#include <memory>

#include "client/tokenctl/argument_checks.h"
#include "client/tokenctl/commands.h"
#include "client/tokenctl/exit_code.h"
#include "client/tokenctl/output.h"

namespace tokenstatus::tokenctl {
namespace {

int RunCreate(const CommandEnv& env, const apitoken::v1::CreateTokenRequest& request) {
  absl::StatusOr<apitoken::v1::CreateTokenResponse> created = env.connect()->Create(request);
  if (!created.ok()) return ReportError(created.status(), env.options.server);
  if (env.options.json) {
    PrintJson(std::cout, *created);
  } else {
    PrintCreated(std::cout, *created);
  }
  return kExitOk;
}

}  // namespace

void AddCreateCommand(CommandSet& commands) {
  auto request = std::make_shared<apitoken::v1::CreateTokenRequest>();
  CLI::App* sub = commands.Add(
      "create", "Create a token (ACTIVE); prints its secret, the only time it is shown",
      [request](const CommandEnv& env) { return RunCreate(env, *request); });
  sub->add_option_function<std::string>(
         "--account", [request](const std::string& v) { request->set_account_id(v); },
         "Owning account")
      ->required()
      ->check(AccountIdCheck());
  sub->add_option_function<std::string>(
         "--name", [request](const std::string& v) { request->set_name(v); }, "Name (1..200)")
      ->required();
  sub->add_option_function<std::string>(
      "--description", [request](const std::string& v) { request->set_description(v); },
      "Description (0..2000)");
}

}  // namespace tokenstatus::tokenctl
