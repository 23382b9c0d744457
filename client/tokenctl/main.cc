// tokenctl: the operator CLI of tokenstatus. See commands.h and `tokenctl --help`.

#include <memory>

#include "CLI/CLI.hpp"
#include "client/token_client.h"
#include "client/tokenctl/argument_checks.h"
#include "client/tokenctl/command_set.h"
#include "client/tokenctl/commands.h"
#include "client/tokenctl/exit_code.h"
#include "client/tokenctl/interrupts.h"
#include "client/tokenctl/server_channel.h"

namespace tokenstatus::tokenctl {
namespace {

void AddGlobalOptions(CLI::App& app, GlobalOptions& options) {
  app.add_option("--server", options.server, "Server address host:port")
      ->envname("TOKENSTATUS_SERVER")
      ->default_val(kDefaultServerAddress);
  app.add_flag("--json", options.json, "Print protobuf JSON (list: one page per line)");
}

int Main(int argc, char** argv) {
  BlockInterrupts();  // before any thread starts (see interrupts.h)
  CLI::App app("tokenctl: manage API tokens of a tokenstatus server", "tokenctl");
  app.fallthrough();   // global options may also follow the command
  app.allow_extras();  // refused below without echoing them (one may be a secret)
  app.require_subcommand(1);
  GlobalOptions options;
  AddGlobalOptions(app, options);
  CommandSet commands(app);
  AddCreateCommand(commands);
  AddReadCommands(commands);
  AddChangeCommands(commands);
  AddVerifyCommand(commands);
  AddWatchCommand(commands);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {  // CLI11 reports through exceptions
    return app.exit(error) == 0 ? kExitOk : kExitUsage;
  }
  if (!app.remaining(true).empty()) {
    return UsageError(UnexpectedArgumentsMessage(app.remaining(true)));
  }
  if (commands.SelectedInterrupts() == CommandSet::Interrupts::kDefault) UnblockInterrupts();
  const CommandEnv env{.options = options, .connect = [&options] {
                         return std::make_unique<TokenClient>(OpenServerChannel(options.server));
                       }};
  return commands.SelectedAction()(env);
}

}  // namespace
}  // namespace tokenstatus::tokenctl

int main(int argc, char** argv) { return tokenstatus::tokenctl::Main(argc, argv); }
