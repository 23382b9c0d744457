// tokenctl watch.

#include <cstdint>
#include <iostream>
#include <memory>

#include "client/tokenctl/commands.h"
#include "client/tokenctl/exit_code.h"
#include "client/tokenctl/interrupts.h"
#include "client/tokenctl/output.h"
#include "grpcpp/client_context.h"

namespace tokenstatus::tokenctl {
namespace {

using apitoken::v1::TokenEvent;
using apitoken::v1::WatchTokensRequest;
using apitoken::v1::WatchTokensResponse;

// Prints the events of `response` (one line each). Snapshots are not asked for and PROGRESS
// carries no event; a RESET is reported on stderr. Returns whether it was a RESET.
bool PrintWatchResponse(const WatchTokensResponse& response, bool json) {
  for (const TokenEvent& event : response.events()) {
    if (json) {
      PrintJson(std::cout, event);
    } else {
      PrintEvent(std::cout, event);
    }
  }
  if (response.kind() != WatchTokensResponse::KIND_RESET) return false;
  std::cerr << "tokenctl: the server cannot replay the changes after this revision (trimmed "
               "history, another epoch, or a revision ahead of it); run watch without --since "
               "or with a more recent one\n";
  return true;
}

// The exit code of a stream that ended with `status` (not interrupted).
int EndOfWatch(const grpc::Status& status, bool reset, const CommandEnv& env) {
  absl::Status ended = FromGrpcStatus(status);
  if (!ended.ok()) return ReportError(ended, env.options.server);
  if (!reset) std::cerr << "tokenctl: the server ended the watch\n";
  return kExitRefused;
}

// Streams until SIGINT/SIGTERM (exit 0) or the stream ends.
int RunWatch(const CommandEnv& env, int64_t since) {
  grpc::ClientContext context;
  InterruptWatcher interrupts([&context] { context.TryCancel(); });
  std::unique_ptr<TokenClient> client = env.connect();
  WatchTokensRequest request;
  request.set_since_revision(since);
  std::unique_ptr<grpc::ClientReader<WatchTokensResponse>> reader =
      client->Watch(&context, request);
  WatchTokensResponse response;
  bool reset = false;
  while (reader->Read(&response)) reset = PrintWatchResponse(response, env.options.json) || reset;
  const grpc::Status status = reader->Finish();
  if (interrupts.interrupted()) return kExitOk;
  return EndOfWatch(status, reset, env);
}

}  // namespace

void AddWatchCommand(CommandSet& commands) {
  auto since = std::make_shared<int64_t>(0);
  CLI::App* sub = commands.Add(
      "watch", "Print every change, one line each, until interrupted (Ctrl-C, SIGTERM)",
      [since](const CommandEnv& env) { return RunWatch(env, *since); },
      CommandSet::Interrupts::kHandled);
  sub->add_option("--since", *since,
                  "Replay the changes after this revision first (default: only new changes)")
      ->check(CLI::NonNegativeNumber);
}

}  // namespace tokenstatus::tokenctl
