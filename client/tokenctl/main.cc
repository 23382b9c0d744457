// tokenctl: the operator CLI of tokenstatus. See commands.h and `tokenctl --help`.

#include <memory>

#include "CLI/CLI.hpp"
#include "client/connection.h"
#include "client/token_client.h"
#include "client/tokenctl/argument_checks.h"
#include "client/tokenctl/command_set.h"
#include "client/tokenctl/commands.h"
#include "client/tokenctl/exit_code.h"
#include "client/tokenctl/interrupts.h"

namespace tokenstatus::tokenctl {
namespace {

void AddGlobalOptions(CLI::App& app, GlobalOptions& options) {
  app.add_option("--server", options.server, "Server address host:port")
      ->envname("TOKENSTATUS_SERVER")
      ->default_val(kDefaultServerAddress);
  app.add_flag("--json", options.json, "Print protobuf JSON (list: one page per line)");
  app.add_option("--ca", options.ca, "PEM CA bundle to verify the server with: use TLS")
      ->envname("TOKENSTATUS_CA");
  app.add_option("--cert", options.cert, "PEM client certificate (mutual TLS; needs --key)")
      ->envname("TOKENSTATUS_CERT");
  app.add_option("--key", options.key, "PEM private key of --cert")->envname("TOKENSTATUS_KEY");
  app.add_option("--credentials-file", options.credentials_file,
                 "File whose first line is the bearer credential (else the environment "
                 "variable TOKENSTATUS_CREDENTIALS holds it)")
      ->envname("TOKENSTATUS_CREDENTIALS_FILE");
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
  AddHistoryCommand(commands);
  AddHealthCommand(commands);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {  // CLI11 reports through exceptions
    return app.exit(error) == 0 ? kExitOk : kExitUsage;
  }
  if (!app.remaining(true).empty()) {
    return UsageError(UnexpectedArgumentsMessage(app.remaining(true)));
  }
  if (commands.SelectedInterrupts() == CommandSet::Interrupts::kDefault) UnblockInterrupts();
  absl::StatusOr<ConnectionOptions> connection =
      LoadConnectionOptions({.address = options.server,
                             .ca_file = options.ca,
                             .cert_file = options.cert,
                             .key_file = options.key,
                             .credentials_file = options.credentials_file});
  if (!connection.ok()) return UsageError(connection.status().message());
  const CommandEnv env{
      .options = options,
      .connect = [&connection] { return std::make_unique<TokenClient>(OpenChannel(*connection)); },
      .open_channel = [&connection] { return OpenChannel(*connection); }};
  return commands.SelectedAction()(env);
}

}  // namespace
}  // namespace tokenstatus::tokenctl

int main(int argc, char** argv) { return tokenstatus::tokenctl::Main(argc, argv); }
