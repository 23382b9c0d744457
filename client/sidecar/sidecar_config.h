#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/connection.h"
#include "client/token_cache.h"

namespace tokenstatus {

// The effective configuration of token-sidecar.
struct SidecarConfig {
  std::string upstream;  // host:port of tokenstatus-server
  // How the cache connects to the upstream: TLS, client certificate, bearer credential.
  ConnectionOptions connection;
  // Where to serve: "unix:/absolute/path" or "host:port" (port 0: any free port).
  std::string listen;
  // The path of a unix socket `listen` names; empty for TCP.
  std::string unix_socket_path;
  TokenCacheOptions cache;        // account filter, max_staleness, stale policy, backoff
  absl::Duration shutdown_grace;  // how long SIGTERM waits for calls in flight
};

// token-sidecar's flags (Abseil flags, defined in sidecar_config.cc):
//   --upstream          127.0.0.1:50051   host:port of tokenstatus-server
//   --listen            127.0.0.1:50052   unix:/path or host:port to serve on
//   --account           ""                cache only this account's tokens (ACC-NNNN-NNNN)
//   --max_staleness     10s               lookups are stale after this long without news
//   --stale_policy      fail_closed       fail_closed | serve_last_known
//   --reconnect_initial_backoff 100ms     first reconnect delay (jittered, doubling)
//   --reconnect_max_backoff     5s        largest reconnect delay
//   --shutdown_grace    5s                SIGTERM drain time (>= 0)
// The upstream connection, as tokenctl's (client/connection.h):
//   --ca                ""                PEM CA bundle: connect to the upstream over TLS
//   --cert, --key       ""                PEM client certificate and key (mutual TLS)
//   --credentials_file  ""                file whose first line is the bearer credential sent to
//                                         the upstream (else TOKENSTATUS_CREDENTIALS, else none)
// Each flag falls back to the environment variable TOKENSTATUS_SIDECAR_<FLAG NAME IN UPPER
// CASE> (a prefix of its own, so that a sidecar never picks up the server's TOKENSTATUS_LISTEN).

// Sets every flag that has a TOKENSTATUS_SIDECAR_<NAME> environment variable to its value, so
// that command-line flags parsed afterwards override it. Call before absl::ParseCommandLine.
// Returns INVALID_ARGUMENT naming the variable if a value does not parse. Not thread-safe.
absl::Status ApplySidecarEnvironmentDefaults();

// Parses the values the command line gives these flags, so that a malformed one is
// INVALID_ARGUMENT naming the flag (exit 2) instead of absl::ParseCommandLine's exit 1. Call
// after ApplySidecarEnvironmentDefaults and before absl::ParseCommandLine. Not thread-safe.
absl::Status CheckSidecarCommandLineValues(int argc, char** argv);

// The sidecar's flags, their defaults, environment variables and help (for --help).
std::string SidecarFlagsHelp();

// Builds the configuration from the flags (after parsing). INVALID_ARGUMENT with a message
// naming the flag for an invalid value (--upstream not host:port, --listen neither unix:/path
// nor host:port, a bad account id, --stale_policy unknown, durations out of range, unreadable
// connection files, a credential that would cross the network in clear). Never puts the
// credential in a message.
absl::StatusOr<SidecarConfig> LoadSidecarConfig();

// One line describing `config` for the start-up log, in key=value form; the credential only as
// credential=set or credential=unset.
std::string DescribeSidecarConfig(const SidecarConfig& config);

}  // namespace tokenstatus
