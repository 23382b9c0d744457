// tokenctl get and list.

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "client/tokenctl/argument_checks.h"
#include "client/tokenctl/commands.h"
#include "client/tokenctl/exit_code.h"
#include "client/tokenctl/output.h"
#include "core/validation.h"

namespace tokenstatus::tokenctl {
namespace {

using apitoken::v1::GetTokenRequest;
using apitoken::v1::GetTokenResponse;
using apitoken::v1::ListTokensRequest;
using apitoken::v1::ListTokensResponse;
using apitoken::v1::Token;

// The Token.State named by --state (checked by CLI11 to be one of the three, any case).
Token::State StateFilter(const std::string& name) {
  Token::State state = Token::STATE_UNSPECIFIED;
  Token::State_Parse(absl::StrCat("STATE_", absl::AsciiStrToUpper(name)), &state);
  return state;
}

int RunGet(const CommandEnv& env, const GetTokenRequest& request) {
  absl::StatusOr<GetTokenResponse> got = env.connect()->Get(request);
  if (!got.ok()) return ReportError(got.status(), env.options.server);
  if (env.options.json) {
    PrintJson(std::cout, *got);
  } else {
    PrintTokenDetails(std::cout, got->token());
  }
  return kExitOk;
}

// Lists every page; with --json prints each page as it arrives, else one table at the end.
int RunList(const CommandEnv& env, ListTokensRequest request) {
  std::unique_ptr<TokenClient> client = env.connect();
  std::vector<Token> tokens;
  do {
    absl::StatusOr<ListTokensResponse> page = client->List(request);
    if (!page.ok()) return ReportError(page.status(), env.options.server);
    if (env.options.json) PrintJson(std::cout, *page);
    tokens.insert(tokens.end(), page->tokens().begin(), page->tokens().end());
    request.set_page_token(page->next_page_token());
  } while (!request.page_token().empty());
  if (!env.options.json) PrintTokenTable(std::cout, tokens);
  return kExitOk;
}

void AddGetCommand(CommandSet& commands) {
  auto request = std::make_shared<GetTokenRequest>();
  CLI::App* sub = commands.Add("get", "Show one token",
                               [request](const CommandEnv& env) { return RunGet(env, *request); });
  sub->add_option_function<std::string>(
         "TKN", [request](const std::string& v) { request->set_token_id(v); }, "Token id")
      ->required()
      ->check(TokenIdCheck());
}

void AddListCommand(CommandSet& commands) {
  auto request = std::make_shared<ListTokensRequest>();
  CLI::App* sub =
      commands.Add("list", "List tokens (ACTIVE and DISABLED unless --state), all pages",
                   [request](const CommandEnv& env) { return RunList(env, *request); });
  sub->add_option_function<std::string>(
         "--state", [request](const std::string& v) { request->set_state(StateFilter(v)); },
         "Only tokens in this state")
      ->check(CLI::IsMember({"active", "disabled", "deleted"}, CLI::ignore_case));
  sub->add_option_function<std::string>(
         "--account", [request](const std::string& v) { request->set_account_id(v); },
         "Only tokens of this account")
      ->check(AccountIdCheck());
  sub->add_option_function<int>(
         "--page-size", [request](const int& v) { request->set_page_size(v); },
         "Tokens per request (1..1000; default: the server's)")
      ->check(CLI::Range(1, kMaxPageSize));
}

}  // namespace

void AddReadCommands(CommandSet& commands) {
  AddGetCommand(commands);
  AddListCommand(commands);
}

}  // namespace tokenstatus::tokenctl
