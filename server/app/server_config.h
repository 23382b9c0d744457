#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/flag_sources.h"
#include "server/redis/redis_client.h"
#include "server/store/redis_token_store.h"
#include "server/watch/watch_hub.h"

namespace tokenstatus {

// How callers are authenticated (server/auth/authenticator.h) and the transport is secured.
struct AccessConfig {
  // PEM contents of --tls_cert, --tls_key, --tls_client_ca (empty: not set). With a client CA
  // every client must present a certificate it signed (mutual TLS).
  std::string tls_cert_pem;
  std::string tls_key_pem;
  std::string tls_client_ca_pem;
  // Their paths, "" if not set: with a reload_check_interval the server reads them again when
  // they change (a renewed certificate).
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  // --credentials_file (bearer credentials; reloaded on SIGHUP and, with a
  // reload_check_interval, when its contents change), "" if not set.
  std::string credentials_file;
  // --reload_check_interval: how often the credentials and TLS files are checked for new
  // contents; zero: never (SIGHUP still reloads the credentials).
  absl::Duration reload_check_interval = absl::Seconds(5);
  // --allow_empty_credentials_file: a credentials file that holds no credential (empty, or only
  // blank lines and comments) is accepted. Without it such a file is refused like one that does
  // not parse (at start: exit 2; on a reload: the previous credentials stay), since it would
  // lock every bearer caller (and every certificate's principal) out.
  bool allow_empty_credentials_file = false;
  // --insecure_allow_unauthenticated: calls without credentials act as "anonymous" with every
  // role. Only on a loopback --listen address.
  bool allow_unauthenticated = false;
};

// The effective configuration of tokenstatus-server.
struct ServerConfig {
  std::string listen;                    // "host:port"; port 0 = any free port
  std::string health_listen;             // "" or "host:port": plaintext grpc.health.v1 only
  std::string metrics_listen;            // "" or "host:port": Prometheus metrics over HTTP
  RedisClientOptions redis;              // address, user, password, connections
  RedisTokenStoreOptions store;          // key prefix, event retention, call timeout
  WatchHubOptions watch;                 // watcher limits, per-stream queue size
  int max_request_bytes = 0;             // largest request message accepted
  absl::Duration shutdown_grace;         // how long SIGTERM waits for calls in flight
  std::string redis_password_source;     // "file", "env" or "" (unset); for the start-up log
  std::string sentinel_password_source;  // the same for the sentinels' password
  // How long health stays SERVING after Redis became unreachable (see HealthPublisher).
  absl::Duration redis_outage_grace;
  AccessConfig access;  // TLS, credentials, unauthenticated access
};

// The server's flags are the ABSL_FLAG definitions in server_config.cc: `tokenstatus-server
// --help` lists each with its default, environment variable and rule.
// Callers must be able to authenticate: --credentials_file or --tls_client_ca is required
// unless --insecure_allow_unauthenticated. Bearer secrets never cross a network in clear:
// --credentials_file on a non-loopback --listen needs --tls_cert.
// Each flag falls back to the environment variable TOKENSTATUS_<FLAG NAME IN UPPER CASE>. The
// password itself is never a flag: it comes from --redis_password_file, or from the
// environment variable TOKENSTATUS_REDIS_PASSWORD.

// Sets every flag that has a TOKENSTATUS_<NAME> environment variable to its value, so that
// command-line flags parsed afterwards override it. Call before absl::ParseCommandLine. Returns
// INVALID_ARGUMENT naming the variable if a value does not parse. Not thread-safe (flags).
absl::Status ApplyEnvironmentDefaults();

// Parses the values the command line gives the server's flags ("--name=value", "--name value",
// one or two dashes) into the flags, so that a malformed value is reported here as
// INVALID_ARGUMENT naming the flag, rather than by absl::ParseCommandLine, which exits with 1.
// Call after ApplyEnvironmentDefaults and before absl::ParseCommandLine (which then parses the
// same values again, and everything else). Not thread-safe (flags).
absl::Status CheckCommandLineValues(int argc, char** argv);

// The server's flags (every ABSL_FLAG of server_config.cc), its name and usage line.
const ProgramFlags& ServerFlags();

// Builds the configuration from the flags (after parsing) and reads the password and the TLS
// files. Returns INVALID_ARGUMENT with a message naming the flag for an invalid value, an
// unreadable password or TLS file, a password given both by file and by its environment
// variable, --redis set (not to its default) together with --redis_sentinels, --redis set to ""
// without sentinels, sentinels without a master name (or the reverse), or an access
// configuration the rules above refuse.
absl::StatusOr<ServerConfig> LoadServerConfig();

// One line describing `config` for the start-up log, in key=value form; the password only as
// password=set or password=unset.
std::string DescribeConfig(const ServerConfig& config);

}  // namespace tokenstatus
