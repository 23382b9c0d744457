#include "server/app/server_config.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <tuple>
#include <utility>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/flag_sources.h"
#include "core/loopback.h"
#include "core/status_util.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051", "host:port to serve gRPC on (port 0: any)");
ABSL_FLAG(std::string, health_listen, "",
          "host:port serving only grpc.health.v1, in plaintext (for probes that cannot speak "
          "TLS); empty: none");
ABSL_FLAG(std::string, metrics_listen, "",
          "host:port serving Prometheus metrics over plain HTTP (GET /metrics); empty: none");
ABSL_FLAG(std::string, redis, "127.0.0.1:6379", "Redis address: host:port or unix:/path");
ABSL_FLAG(std::string, redis_sentinels, "",
          "host:port,... of the Redis Sentinels to ask where the primary is (instead of --redis; "
          "needs --redis_master_name)");
ABSL_FLAG(std::string, redis_master_name, "", "the name the sentinels know the primary by");
ABSL_FLAG(std::string, redis_sentinel_password_file, "",
          "file holding the sentinels' password (or set TOKENSTATUS_REDIS_SENTINEL_PASSWORD)");
ABSL_FLAG(int32_t, min_replicas_acked, 0,
          "replicas that must confirm each change (WAIT) before it is acknowledged (0..16)");
ABSL_FLAG(absl::Duration, replica_ack_timeout, absl::Seconds(1),
          "how long a change waits for --min_replicas_acked confirmations (> 0)");
ABSL_FLAG(absl::Duration, redis_outage_grace, absl::Seconds(10),
          "how long health stays SERVING (reads from the mirror) after Redis became unreachable "
          "(>= 0)");
ABSL_FLAG(std::string, redis_user, "", "Redis ACL user (needs a password)");
ABSL_FLAG(std::string, redis_password_file, "",
          "file holding the Redis password (or set TOKENSTATUS_REDIS_PASSWORD)");
ABSL_FLAG(std::string, redis_key_prefix, "{apitoken}",
          "prefix of every Redis key; must contain a {hash tag}");
ABSL_FLAG(int32_t, redis_connections, 2, "pipelined Redis connections (1..64)");
ABSL_FLAG(absl::Duration, redis_timeout, absl::Seconds(1), "upper bound of every Redis call");
ABSL_FLAG(int64_t, event_retention, 1000000, "events kept in the Redis stream (>= 1)");
ABSL_FLAG(int32_t, max_request_bytes, 65536, "largest request message accepted, in bytes");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(5),
          "how long SIGTERM/SIGINT waits for calls in flight");
ABSL_FLAG(int32_t, max_watchers, 20000, "WatchTokens streams open at once (1..1000000)");
ABSL_FLAG(int32_t, max_watchers_per_connection, 2000,
          "WatchTokens streams open at once per client connection (1..1000000)");
ABSL_FLAG(int32_t, watch_queue_size, 1024,
          "messages queued per WatchTokens stream before it is ended as too slow (16..1000000)");
ABSL_FLAG(int32_t, max_watchers_per_principal, 10000,
          "WatchTokens streams open at once per authenticated principal (1..1000000)");
ABSL_FLAG(int64_t, snapshot_memory_budget, int64_t{64} << 20,
          "bytes all WatchTokens snapshots in progress may hold together (captured token "
          "pointers and one chunk per stream); streams beyond it wait their turn (0: one "
          "snapshot at a time)");
ABSL_FLAG(int32_t, max_snapshots_per_principal, 8,
          "WatchTokens snapshots in progress at once per authenticated principal; its further "
          "streams wait their turn (1..1000000)");
ABSL_FLAG(absl::Duration, snapshot_max_wait, absl::Seconds(30),
          "how long a WatchTokens stream may wait for its snapshot to start before it is "
          "refused with RESOURCE_EXHAUSTED and a retry hint (> 0)");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain to serve TLS with (needs --tls_key)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA bundle; when set, clients must present a certificate it signed (mutual TLS)");
ABSL_FLAG(std::string, credentials_file, "",
          "bearer credentials: one '<sha256 hex of secret> <role> <principal>' per line; "
          "reloaded on SIGHUP and when its contents change");
ABSL_FLAG(absl::Duration, reload_check_interval, absl::Seconds(5),
          "how often --credentials_file and the TLS files are checked for new contents (a "
          "Kubernetes Secret updated in place, a file rewritten); 0: only SIGHUP reloads the "
          "credentials, and the TLS files are read once (0 or 1s..1h)");
ABSL_FLAG(bool, allow_empty_credentials_file, false,
          "accept a --credentials_file that holds no credential (else it is refused at start and "
          "on a SIGHUP reload: it would lock every caller out)");
ABSL_FLAG(bool, insecure_allow_unauthenticated, false,
          "serve calls without credentials as 'anonymous' with every role (loopback only)");

namespace tokenstatus {
namespace {

constexpr char kEnvPrefix[] = "TOKENSTATUS_";
constexpr char kPasswordEnv[] = "TOKENSTATUS_REDIS_PASSWORD";
constexpr char kSentinelPasswordEnv[] = "TOKENSTATUS_REDIS_SENTINEL_PASSWORD";

absl::Status InvalidConfig(absl::string_view message) {
  return MakeError(absl::StatusCode::kInvalidArgument, reason::kInvalidArgument, message);
}

// True if `text` is a decimal port number 0..65535.
bool IsPort(absl::string_view text) {
  int port = 0;
  return !text.empty() && text.size() <= 5 &&
         std::all_of(text.begin(), text.end(), absl::ascii_isdigit) &&
         absl::SimpleAtoi(text, &port) && port <= 65535;
}

// `listen`, the value of --`flag`, must be host:port.
absl::Status ValidateListen(absl::string_view flag, absl::string_view listen) {
  const size_t colon = listen.rfind(':');
  if (colon == absl::string_view::npos || colon == 0 || !IsPort(listen.substr(colon + 1))) {
    return InvalidConfig(
        absl::StrCat("--", flag, " must be host:port with a port 0..65535, not \"", listen, "\""));
  }
  return absl::OkStatus();
}

// True if `prefix` holds a Redis Cluster hash tag: a '{' followed later by a '}' with at least
// one character between them.
bool HasHashTag(absl::string_view prefix) {
  const size_t open = prefix.find('{');
  if (open == absl::string_view::npos) return false;
  const size_t close = prefix.find('}', open + 1);
  return close != absl::string_view::npos && close > open + 1;
}

// The content of the file `path` given by --`flag`; INVALID_ARGUMENT naming both if it cannot be
// read or is empty.
absl::StatusOr<std::string> ReadFlagFile(absl::string_view flag, const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return InvalidConfig(
        absl::StrCat("--", flag, ": cannot read \"", path, "\": ", std::strerror(errno)));
  }
  std::ostringstream content;
  content << file.rdbuf();
  if (content.str().empty()) {
    return InvalidConfig(absl::StrCat("--", flag, ": \"", path, "\" is empty"));
  }
  return content.str();
}

// Reads a password from `path` (the value of --`flag`): the file's content without its trailing
// line break.
absl::StatusOr<std::string> ReadPasswordFile(absl::string_view flag, const std::string& path) {
  absl::StatusOr<std::string> content = ReadFlagFile(flag, path);
  if (!content.ok()) return content.status();
  std::string password = *std::move(content);
  while (!password.empty() && (password.back() == '\n' || password.back() == '\r')) {
    password.pop_back();
  }
  if (password.empty()) return InvalidConfig(absl::StrCat("--", flag, ": \"", path, "\" is empty"));
  return password;
}

// A password from the file named by --`flag` or from the environment variable `env`, into
// `password`; `source` becomes "file", "env" or "" (neither). INVALID_ARGUMENT if both are set
// or the file cannot be read.
absl::Status LoadPassword(absl::string_view flag, const std::string& path, const char* env,
                          std::string& password, std::string& source) {
  const char* from_env = std::getenv(env);
  if (from_env != nullptr && *from_env == '\0') from_env = nullptr;
  if (!path.empty() && from_env != nullptr) {
    return InvalidConfig(
        absl::StrCat("a password is given twice: set either --", flag, " or ", env));
  }
  if (!path.empty()) {
    absl::StatusOr<std::string> read = ReadPasswordFile(flag, path);
    if (!read.ok()) return read.status();
    password = *std::move(read);
    source = "file";
  } else if (from_env != nullptr) {
    password = from_env;
    source = "env";
  }
  return absl::OkStatus();
}

// Where Redis is: --redis, or --redis_sentinels with --redis_master_name (and the sentinels'
// password), into `config`.
absl::Status LoadRedisTarget(ServerConfig& config) {
  config.redis.address = absl::GetFlag(FLAGS_redis);
  const std::string sentinels = absl::GetFlag(FLAGS_redis_sentinels);
  config.redis.master_name = absl::GetFlag(FLAGS_redis_master_name);
  if (sentinels.empty()) {
    if (config.redis.address.empty()) {
      return InvalidConfig("no Redis: set --redis, or --redis_sentinels and --redis_master_name");
    }
    if (!config.redis.master_name.empty()) {
      return InvalidConfig("--redis_master_name needs --redis_sentinels");
    }
    if (!absl::GetFlag(FLAGS_redis_sentinel_password_file).empty()) {
      return InvalidConfig("--redis_sentinel_password_file needs --redis_sentinels");
    }
    return absl::OkStatus();
  }
  // --redis left at its default counts as not given.
  if (config.redis.address != absl::FindCommandLineFlag("redis")->DefaultValue()) {
    return InvalidConfig(
        "--redis and --redis_sentinels exclude each other: with sentinels, the sentinels say "
        "where the primary is");
  }
  config.redis.address.clear();
  if (config.redis.master_name.empty()) {
    return InvalidConfig("--redis_sentinels needs --redis_master_name");
  }
  for (absl::string_view sentinel : absl::StrSplit(sentinels, ',')) {
    sentinel = absl::StripAsciiWhitespace(sentinel);
    const size_t colon = sentinel.rfind(':');
    if (colon == absl::string_view::npos || colon == 0 || !IsPort(sentinel.substr(colon + 1)) ||
        sentinel.substr(colon + 1) == "0") {
      return InvalidConfig(
          absl::StrCat("--redis_sentinels must be host:port,..., not \"", sentinels, "\""));
    }
    config.redis.sentinels.emplace_back(sentinel);
  }
  return LoadPassword("redis_sentinel_password_file",
                      absl::GetFlag(FLAGS_redis_sentinel_password_file), kSentinelPasswordEnv,
                      config.redis.sentinel_password, config.sentinel_password_source);
}

// `value` of the flag `name` if it is within [min, max], else INVALID_ARGUMENT naming it.
absl::StatusOr<int> InRange(absl::string_view name, int value, int min, int max) {
  if (value < min || value > max) {
    return InvalidConfig(absl::StrCat("--", name, " must be ", min, "..", max, ", not ", value));
  }
  return value;
}

// The watch flags into `options`.
absl::Status LoadWatchOptions(WatchHubOptions& options) {
  constexpr int kMaxCount = 1000000;
  absl::StatusOr<int> value =
      InRange("max_watchers", absl::GetFlag(FLAGS_max_watchers), 1, kMaxCount);
  if (!value.ok()) return value.status();
  options.max_watchers = *value;
  value = InRange("max_watchers_per_connection", absl::GetFlag(FLAGS_max_watchers_per_connection),
                  1, kMaxCount);
  if (!value.ok()) return value.status();
  options.max_watchers_per_connection = *value;
  value = InRange("watch_queue_size", absl::GetFlag(FLAGS_watch_queue_size), 16, kMaxCount);
  if (!value.ok()) return value.status();
  options.queue_size = *value;
  value = InRange("max_watchers_per_principal", absl::GetFlag(FLAGS_max_watchers_per_principal), 1,
                  kMaxCount);
  if (!value.ok()) return value.status();
  options.max_watchers_per_principal = *value;
  value = InRange("max_snapshots_per_principal", absl::GetFlag(FLAGS_max_snapshots_per_principal),
                  1, kMaxCount);
  if (!value.ok()) return value.status();
  options.max_snapshots_per_principal = *value;
  constexpr int64_t kMaxBudget = int64_t{1} << 40;
  options.snapshot_memory_budget = absl::GetFlag(FLAGS_snapshot_memory_budget);
  if (options.snapshot_memory_budget < 0 || options.snapshot_memory_budget > kMaxBudget) {
    return InvalidConfig(absl::StrCat("--snapshot_memory_budget must be 0..", kMaxBudget,
                                      " (bytes), not ", options.snapshot_memory_budget));
  }
  options.snapshot_max_wait = absl::GetFlag(FLAGS_snapshot_max_wait);
  if (options.snapshot_max_wait <= absl::ZeroDuration()) {
    return InvalidConfig("--snapshot_max_wait must be > 0");
  }
  return absl::OkStatus();
}

// The access flags into `access`, checked against the rules in the header.
absl::Status LoadAccessConfig(absl::string_view listen_host, AccessConfig& access) {
  const std::string cert = absl::GetFlag(FLAGS_tls_cert);
  const std::string key = absl::GetFlag(FLAGS_tls_key);
  const std::string client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  if (cert.empty() != key.empty()) {
    return InvalidConfig("--tls_cert and --tls_key go together: set both or neither");
  }
  if (!client_ca.empty() && cert.empty()) {
    return InvalidConfig("--tls_client_ca needs --tls_cert and --tls_key (mutual TLS is TLS)");
  }
  for (auto [flag, path, pem] :
       {std::tuple("tls_cert", &cert, &access.tls_cert_pem),
        std::tuple("tls_key", &key, &access.tls_key_pem),
        std::tuple("tls_client_ca", &client_ca, &access.tls_client_ca_pem)}) {
    if (path->empty()) continue;
    absl::StatusOr<std::string> content = ReadFlagFile(flag, *path);
    if (!content.ok()) return content.status();
    *pem = *std::move(content);
  }
  access.tls_cert_file = cert;
  access.tls_key_file = key;
  access.tls_client_ca_file = client_ca;
  access.reload_check_interval = absl::GetFlag(FLAGS_reload_check_interval);
  if (access.reload_check_interval != absl::ZeroDuration() &&
      (access.reload_check_interval < absl::Seconds(1) ||
       access.reload_check_interval > absl::Hours(1))) {
    return InvalidConfig("--reload_check_interval must be 0 or within 1s..1h");
  }
  access.credentials_file = absl::GetFlag(FLAGS_credentials_file);
  access.allow_empty_credentials_file = absl::GetFlag(FLAGS_allow_empty_credentials_file);
  access.allow_unauthenticated = absl::GetFlag(FLAGS_insecure_allow_unauthenticated);
  const bool loopback = IsLoopbackAddress(listen_host);
  if (access.allow_unauthenticated && !loopback) {
    return InvalidConfig(absl::StrCat(
        "--insecure_allow_unauthenticated is refused on a non-loopback address (--listen host \"",
        listen_host, "\"): anyone who can reach it could disable every token"));
  }
  if (!access.allow_unauthenticated && access.credentials_file.empty() && client_ca.empty()) {
    return InvalidConfig(
        "no way to authenticate callers: set --credentials_file and/or --tls_client_ca "
        "(or, on loopback only, --insecure_allow_unauthenticated)");
  }
  if (!access.credentials_file.empty() && cert.empty() && !loopback) {
    return InvalidConfig(
        "--credentials_file on a non-loopback address needs --tls_cert and --tls_key: bearer "
        "secrets must not cross the network in clear");
  }
  return absl::OkStatus();
}

}  // namespace

const ProgramFlags& ServerFlags() {
  static const ProgramFlags* const flags = new ProgramFlags{
      .program = "tokenstatus-server",
      .usage =
          "Serves apitoken.v1.TokenService over Redis. Flags fall back to TOKENSTATUS_<FLAG> "
          "environment variables; the Redis password comes from --redis_password_file or "
          "TOKENSTATUS_REDIS_PASSWORD, the sentinels' from --redis_sentinel_password_file "
          "or TOKENSTATUS_REDIS_SENTINEL_PASSWORD.",
      .env_prefix = kEnvPrefix,
      .names = FlagNamesDefinedIn(__FILE__)};
  return *flags;
}

absl::Status ApplyEnvironmentDefaults() {
  return ApplyFlagEnvironment(kEnvPrefix, ServerFlags().names);
}

absl::Status CheckCommandLineValues(int argc, char** argv) {
  return CheckFlagValues(argc, argv, ServerFlags().names);
}

absl::StatusOr<ServerConfig> LoadServerConfig() {
  ServerConfig config;
  config.listen = absl::GetFlag(FLAGS_listen);
  if (absl::Status status = ValidateListen("listen", config.listen); !status.ok()) return status;
  config.health_listen = absl::GetFlag(FLAGS_health_listen);
  if (!config.health_listen.empty()) {
    if (absl::Status status = ValidateListen("health_listen", config.health_listen); !status.ok()) {
      return status;
    }
  }
  config.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  if (!config.metrics_listen.empty()) {
    if (absl::Status status = ValidateListen("metrics_listen", config.metrics_listen);
        !status.ok()) {
      return status;
    }
  }

  if (absl::Status status = LoadRedisTarget(config); !status.ok()) return status;
  config.redis.user = absl::GetFlag(FLAGS_redis_user);
  config.redis.connections = absl::GetFlag(FLAGS_redis_connections);
  if (config.redis.connections < 1 || config.redis.connections > 64) {
    return InvalidConfig(
        absl::StrCat("--redis_connections must be 1..64, not ", config.redis.connections));
  }
  if (absl::Status status =
          LoadPassword("redis_password_file", absl::GetFlag(FLAGS_redis_password_file),
                       kPasswordEnv, config.redis.password, config.redis_password_source);
      !status.ok()) {
    return status;
  }
  config.store.min_replicas_acked = absl::GetFlag(FLAGS_min_replicas_acked);
  if (config.store.min_replicas_acked < 0 || config.store.min_replicas_acked > 16) {
    return InvalidConfig(
        absl::StrCat("--min_replicas_acked must be 0..16, not ", config.store.min_replicas_acked));
  }
  config.store.replica_ack_timeout = absl::GetFlag(FLAGS_replica_ack_timeout);
  if (config.store.replica_ack_timeout <= absl::ZeroDuration()) {
    return InvalidConfig("--replica_ack_timeout must be > 0");
  }
  config.redis_outage_grace = absl::GetFlag(FLAGS_redis_outage_grace);
  if (config.redis_outage_grace < absl::ZeroDuration()) {
    return InvalidConfig("--redis_outage_grace must be >= 0");
  }

  config.store.key_prefix = absl::GetFlag(FLAGS_redis_key_prefix);
  if (!HasHashTag(config.store.key_prefix)) {
    return InvalidConfig(
        absl::StrCat("--redis_key_prefix must contain a {hash tag}, e.g. "
                     "{apitoken}, not \"",
                     config.store.key_prefix, "\""));
  }
  config.store.call_timeout = absl::GetFlag(FLAGS_redis_timeout);
  if (config.store.call_timeout <= absl::ZeroDuration()) {
    return InvalidConfig("--redis_timeout must be > 0");
  }
  config.redis.connect_timeout = config.store.call_timeout;
  config.store.event_retention = absl::GetFlag(FLAGS_event_retention);
  if (config.store.event_retention < 1) {
    return InvalidConfig(
        absl::StrCat("--event_retention must be >= 1, not ", config.store.event_retention));
  }
  config.max_request_bytes = absl::GetFlag(FLAGS_max_request_bytes);
  if (config.max_request_bytes < 1024 || config.max_request_bytes > 64 * 1024 * 1024) {
    return InvalidConfig(
        absl::StrCat("--max_request_bytes must be 1024..67108864, not ", config.max_request_bytes));
  }
  config.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  if (config.shutdown_grace < absl::ZeroDuration()) {
    return InvalidConfig("--shutdown_grace must be >= 0");
  }
  if (absl::Status status = LoadWatchOptions(config.watch); !status.ok()) return status;
  const std::string listen_host = config.listen.substr(0, config.listen.rfind(':'));
  if (absl::Status status = LoadAccessConfig(listen_host, config.access); !status.ok()) {
    return status;
  }
  return config;
}

std::string DescribeConfig(const ServerConfig& config) {
  return absl::StrCat(
      "event=config listen=", config.listen,
      " health_listen=", config.health_listen.empty() ? "-" : config.health_listen,
      " metrics_listen=", config.metrics_listen.empty() ? "-" : config.metrics_listen,
      " redis=", config.redis.address.empty() ? "-" : config.redis.address, " redis_sentinels=",
      config.redis.sentinels.empty() ? "-" : absl::StrJoin(config.redis.sentinels, ","),
      " redis_master_name=", config.redis.master_name.empty() ? "-" : config.redis.master_name,
      " sentinel_password=", config.redis.sentinel_password.empty() ? "unset" : "set",
      config.sentinel_password_source.empty()
          ? ""
          : absl::StrCat(" sentinel_password_from=", config.sentinel_password_source),
      " min_replicas_acked=", config.store.min_replicas_acked,
      " replica_ack_timeout=", absl::FormatDuration(config.store.replica_ack_timeout),
      " redis_outage_grace=", absl::FormatDuration(config.redis_outage_grace),
      " redis_user=", config.redis.user.empty() ? "-" : config.redis.user,
      " password=", config.redis.password.empty() ? "unset" : "set",
      config.redis_password_source.empty()
          ? ""
          : absl::StrCat(" password_from=", config.redis_password_source),
      " redis_key_prefix=", config.store.key_prefix,
      " redis_connections=", config.redis.connections,
      " redis_timeout=", absl::FormatDuration(config.store.call_timeout),
      " event_retention=", config.store.event_retention,
      " max_request_bytes=", config.max_request_bytes,
      " shutdown_grace=", absl::FormatDuration(config.shutdown_grace),
      " max_watchers=", config.watch.max_watchers,
      " max_watchers_per_connection=", config.watch.max_watchers_per_connection,
      " watch_queue_size=", config.watch.queue_size,
      " max_watchers_per_principal=", config.watch.max_watchers_per_principal,
      " snapshot_memory_budget=", config.watch.snapshot_memory_budget,
      " max_snapshots_per_principal=", config.watch.max_snapshots_per_principal,
      " snapshot_max_wait=", absl::FormatDuration(config.watch.snapshot_max_wait), " tls=",
      config.access.tls_cert_pem.empty()        ? "off"
      : config.access.tls_client_ca_pem.empty() ? "on"
                                                : "mutual",
      " credentials_file=",
      config.access.credentials_file.empty() ? "-" : config.access.credentials_file,
      " allow_empty_credentials_file=", config.access.allow_empty_credentials_file,
      " reload_check_interval=", absl::FormatDuration(config.access.reload_check_interval),
      " allow_unauthenticated=", config.access.allow_unauthenticated);
}

}  // namespace tokenstatus
