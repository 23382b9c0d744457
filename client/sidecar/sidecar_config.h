#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/connection.h"
#include "client/sidecar/ext_authz_answer.h"
#include "client/token_cache.h"
#include "core/flag_sources.h"

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
  // "" or "host:port": Prometheus metrics over plain HTTP.
  std::string metrics_listen;
  TokenCacheOptions cache;  // account filter, max_staleness, stale policy, backoff
  // Envoy ext_authz Check: the credential header, the headers an allowed request gets, whether
  // the credential is stripped (the --authz_* flags).
  ExtAuthzOptions authz;
  absl::Duration shutdown_grace;  // how long SIGTERM waits for calls in flight
};

// token-sidecar's flags are the ABSL_FLAG definitions in sidecar_config.cc (`token-sidecar
// --help` lists them); the upstream connection's are tokenctl's (client/connection.h). Each
// falls back to the environment variable TOKENSTATUS_SIDECAR_<FLAG NAME IN UPPER CASE> (a
// prefix of its own, so that a sidecar never picks up the server's TOKENSTATUS_LISTEN).
const ProgramFlags& SidecarFlags();

// Builds the configuration from the flags (after parsing). INVALID_ARGUMENT with a message
// naming the flag for an invalid value (--upstream not host:port, --listen neither unix:/path
// nor host:port, a bad account id, --stale_policy unknown, durations out of range, unreadable
// connection files, a credential that would cross the network in clear, an --authz_*_header that
// is not a header name). Never puts the credential in a message.
absl::StatusOr<SidecarConfig> LoadSidecarConfig();

// One line describing `config` for the start-up log, in key=value form; the credential only as
// credential=set or credential=unset.
std::string DescribeSidecarConfig(const SidecarConfig& config);

}  // namespace tokenstatus
