// tokenctl history.

#include <iostream>
#include <memory>

#include "client/tokenctl/argument_checks.h"
#include "client/tokenctl/commands.h"
#include "client/tokenctl/exit_code.h"
#include "client/tokenctl/output.h"
#include "core/validation.h"

namespace tokenstatus::tokenctl {
namespace {

using apitoken::v1::ListTokenEventsRequest;
using apitoken::v1::ListTokenEventsResponse;

// Prints every page as it arrives: newest first throughout.
int RunHistory(const CommandEnv& env, ListTokenEventsRequest request) {
  std::unique_ptr<TokenClient> client = env.connect();
  do {
    absl::StatusOr<ListTokenEventsResponse> page = client->ListEvents(request);
    if (!page.ok()) return ReportError(page.status(), env.options.server);
    if (env.options.json) {
      PrintJson(std::cout, *page);
    } else {
      for (const auto& event : page->events()) PrintEvent(std::cout, event);
    }
    request.set_page_token(page->next_page_token());
  } while (!request.page_token().empty());
  return kExitOk;
}

}  // namespace

void AddHistoryCommand(CommandSet& commands) {
  auto request = std::make_shared<ListTokenEventsRequest>();
  CLI::App* sub = commands.Add(
      "history", "Show a token's changes, newest first (within the server's event retention)",
      [request](const CommandEnv& env) { return RunHistory(env, *request); });
  sub->add_option_function<std::string>(
         "TKN", [request](const std::string& v) { request->set_token_id(v); }, "Token id")
      ->required()
      ->check(TokenIdCheck());
  sub->add_option_function<int>(
         "--page-size", [request](const int& v) { request->set_page_size(v); },
         "Events per request (1..1000; default: the server's)")
      ->check(CLI::Range(1, kMaxPageSize));
}

}  // namespace tokenstatus::tokenctl
