#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "client/token_client.h"

namespace tokenstatus::tokenctl {

// The server tokenctl talks to when neither --server nor TOKENSTATUS_SERVER is given: the
// default --listen of tokenstatus-server (server/app/server_config.h).
inline constexpr char kDefaultServerAddress[] = "127.0.0.1:50051";

// The options every command shares (tokenctl [--server ADDR] [--json] [--ca FILE] [--cert FILE
// --key FILE] [--credentials-file FILE] COMMAND). Each falls back to an environment variable
// (TOKENSTATUS_SERVER, _CA, _CERT, _KEY, _CREDENTIALS_FILE); the bearer credential itself is
// never a flag value: it is read from --credentials-file or TOKENSTATUS_CREDENTIALS
// (client/connection.h).
struct GlobalOptions {
  std::string server;  // --server, else TOKENSTATUS_SERVER, else kDefaultServerAddress
  bool json = false;   // --json: protobuf JSON instead of tables and sentences
  std::string ca;      // --ca: PEM CA bundle to verify the server with (TLS)
  std::string cert;    // --cert / --key: client certificate (mutual TLS)
  std::string key;
  std::string credentials_file;  // --credentials-file: bearer credential (first line)
};

// What a command runs with.
struct CommandEnv {
  const GlobalOptions& options;
  // Opens the channel to options.server and returns a client on it. A command calls it only
  // once it is ready to talk to the server (watch first sets up its signal handling, which
  // must precede every gRPC thread).
  std::function<std::unique_ptr<TokenClient>()> connect;
  // Opens the channel to options.server, for a command that calls another service on it
  // (health). The same rule as `connect`.
  std::function<std::shared_ptr<grpc::Channel>()> open_channel;
};

// What a command does once its command line has parsed: returns the exit code (ExitCode).
using CommandAction = std::function<int(const CommandEnv&)>;

// The subcommands of one CLI11 app. Each Add*Command function (commands.h) adds a subcommand
// whose options it binds to state captured by its action. Not thread-safe (one CLI parse).
class CommandSet {
 public:
  // Whether a command handles SIGINT/SIGTERM itself (they stay blocked while it runs) or lets
  // them end the process (the default).
  enum class Interrupts { kDefault, kHandled };

  // `app` must outlive the set.
  explicit CommandSet(CLI::App& app) : app_(app) {}

  // Adds subcommand `name` with `description`; `action` runs if it is the one given. Returns
  // the subcommand so the caller can add its options.
  CLI::App* Add(const std::string& name, const std::string& description, CommandAction action,
                Interrupts interrupts = Interrupts::kDefault);

  // After a successful parse: the parsed subcommand's action and its Interrupts mode. The
  // app requires exactly one subcommand, so there is one.
  const CommandAction& SelectedAction() const;
  Interrupts SelectedInterrupts() const;

 private:
  struct Entry {
    CLI::App* app;
    CommandAction action;
    Interrupts interrupts;
  };
  const Entry& Selected() const;

  CLI::App& app_;
  std::vector<Entry> entries_;
};

}  // namespace tokenstatus::tokenctl
