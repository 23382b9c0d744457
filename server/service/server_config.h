#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
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

// The server's flags (Abseil flags, defined in server_config.cc):
//   --listen               127.0.0.1:50051  host:port to serve gRPC on (port 0: pick one)
//   --redis                127.0.0.1:6379   host:port or unix:/path of Redis
//   --redis_sentinels      ""               host:port,... of Redis Sentinels: follow the primary
//                                           they name (instead of --redis, which must then be
//                                           left at its default; needs --redis_master_name)
//   --redis_master_name    ""               the primary's name at the sentinels
//   --redis_sentinel_password_file ""       file holding the sentinels' password (or
//                                           TOKENSTATUS_REDIS_SENTINEL_PASSWORD)
//   --min_replicas_acked   0                replicas that must confirm a change (WAIT) before it
//                                           is acknowledged (0..16); else REPLICATION_UNCONFIRMED
//   --replica_ack_timeout  1s               how long a change waits for them (> 0)
//   --redis_outage_grace   10s              health stays SERVING this long after Redis became
//                                           unreachable, then NOT_SERVING until it is back (>= 0)
//   --redis_user           ""               ACL user (needs a password)
//   --redis_password_file  ""               file holding the Redis password (one line)
//   --redis_key_prefix     {apitoken}       prefix of every key; must contain a {hash tag}
//   --redis_connections    2                pipelined Redis connections (1..64)
//   --redis_timeout        1s               upper bound of every Redis call (> 0)
//   --event_retention      1000000          events kept in the stream (>= 1)
//   --max_request_bytes    65536            largest request accepted (1 KiB .. 64 MiB)
//   --shutdown_grace       5s               SIGTERM drain time (>= 0)
//   --max_watchers         20000            WatchTokens streams open at once (1..1000000)
//   --max_watchers_per_connection 2000      ... per client connection (1..1000000)
//   --watch_queue_size     1024             messages queued per watch stream (16..1000000)
//   --max_watchers_per_principal 10000      ... per authenticated principal (1..1000000)
//   --snapshot_memory_budget 67108864       bytes the WatchTokens snapshots in progress may hold
//                                           together (0..2^40; see WatchHubOptions)
//   --max_snapshots_per_principal 8         snapshots in progress per principal (1..1000000)
//   --snapshot_max_wait    30s              a stream's longest wait for its snapshot (> 0)
//   --tls_cert, --tls_key  ""               PEM certificate chain and private key: serve TLS
//   --tls_client_ca        ""               PEM CA bundle: require client certificates (mTLS)
//   --credentials_file     ""               bearer credentials (server/auth/credential_table.h)
//   --reload_check_interval 5s              how often the credentials and TLS files are checked
//                                           for new contents (0: never; else 1s..1h)
//   --allow_empty_credentials_file false    accept a credentials file with no credential (else
//                                           refused at start and on a SIGHUP reload)
//   --health_listen        ""               host:port serving only grpc.health.v1, in plaintext
//                                           (probes that cannot speak TLS, e.g. the kubelet's)
//   --insecure_allow_unauthenticated false  calls without credentials act as "anonymous" with
//                                           every role; refused unless --listen is loopback
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

// The server's flags, their defaults, environment variables and help (for --help).
std::string ServerFlagsHelp();

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
