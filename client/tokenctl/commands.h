#pragma once

#include "client/tokenctl/command_set.h"

namespace tokenstatus::tokenctl {

// Each function adds one subcommand (or a family) to `commands`; see `tokenctl COMMAND --help`.
// Every command prints protobuf JSON with --json (output.h), a table or a sentence otherwise,
// and returns an ExitCode (exit_code.h).

// create --account ACC --name NAME [--description D]: prints the id and the secret (once).
void AddCreateCommand(CommandSet& commands);

// get TKN: the token's details. list [--state S] [--account ACC] [--page-size N]: every page,
// following next_page_token; with --json one ListTokensResponse per line (JSON Lines).
void AddReadCommands(CommandSet& commands);

// enable|disable|delete TKN [--reason R] [--yes]: disable and delete ask for confirmation
// unless --yes; prints "Token TKN-1234-5678 disabled (revision 42)".
void AddChangeCommands(CommandSet& commands);

// verify: reads the secret from stdin and prints the VerifyToken answer.
void AddVerifyCommand(CommandSet& commands);

// watch [--since REV]: one line per change until SIGINT/SIGTERM.
void AddWatchCommand(CommandSet& commands);

// history TKN [--page-size N]: the token's changes, newest first (one line each: revision,
// time, event, principal, reason), every page; with --json one ListTokenEventsResponse per
// line.
void AddHistoryCommand(CommandSet& commands);

// health [--service S]: prints the grpc.health.v1 serving status (SERVING, NOT_SERVING, ...);
// exit 0 only when SERVING. Against --health_listen (plaintext) it needs no credentials.
void AddHealthCommand(CommandSet& commands);

}  // namespace tokenstatus::tokenctl
