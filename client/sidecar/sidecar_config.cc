#include "client/sidecar/sidecar_config.h"

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/flag_sources.h"
#include "core/status_util.h"
#include "core/validation.h"

ABSL_FLAG(std::string, upstream, "127.0.0.1:50051", "host:port of tokenstatus-server");
ABSL_FLAG(std::string, listen, "127.0.0.1:50052",
          "where to serve: unix:/absolute/path or host:port (port 0: any)");
ABSL_FLAG(std::string, metrics_listen, "",
          "host:port serving Prometheus metrics over plain HTTP (GET /metrics); empty: none");
ABSL_FLAG(std::string, account, "", "cache only the tokens of this account (ACC-NNNN-NNNN)");
ABSL_FLAG(absl::Duration, max_staleness, absl::Seconds(10),
          "lookups are stale when nothing was heard from the server for this long (>= 100ms)");
ABSL_FLAG(std::string, stale_policy, "fail_closed",
          "while stale: fail_closed (reads fail with UNAVAILABLE) or serve_last_known");
ABSL_FLAG(absl::Duration, reconnect_initial_backoff, absl::Milliseconds(100),
          "first reconnect delay (jittered, doubling up to --reconnect_max_backoff)");
ABSL_FLAG(absl::Duration, reconnect_max_backoff, absl::Seconds(5), "largest reconnect delay");
ABSL_FLAG(std::string, ca, "", "PEM CA bundle: connect to the upstream over TLS");
ABSL_FLAG(std::string, cert, "",
          "PEM client certificate for the upstream (mutual TLS; needs --key)");
ABSL_FLAG(std::string, key, "", "PEM key of --cert");
ABSL_FLAG(std::string, credentials_file, "",
          "file whose first line is the bearer credential sent to the upstream (else "
          "TOKENSTATUS_CREDENTIALS)");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(5),
          "how long SIGTERM/SIGINT waits for calls in flight");
ABSL_FLAG(std::string, authz_header, "authorization",
          "ext_authz Check: the request header with the credential (authorization: \"Bearer "
          "<secret>\"; any other header, e.g. x-api-key: the bare secret)");
ABSL_FLAG(bool, authz_strip_credential, true,
          "ext_authz Check: remove the credential header from allowed requests");
ABSL_FLAG(std::string, authz_token_id_header, "x-token-id",
          "ext_authz Check: the upstream request header set to the token's id");
ABSL_FLAG(std::string, authz_account_id_header, "x-account-id",
          "ext_authz Check: the upstream request header set to the token's account");

namespace tokenstatus {
namespace {

constexpr char kEnvPrefix[] = "TOKENSTATUS_SIDECAR_";
constexpr char kUnixScheme[] = "unix:";

absl::Status InvalidConfig(absl::string_view message) {
  return MakeError(absl::StatusCode::kInvalidArgument, reason::kInvalidArgument, message);
}

// True if `address` is host:port with a non-empty host and a port 0..65535 (1..65535 unless
// `allow_zero`).
bool IsHostPort(absl::string_view address, bool allow_zero) {
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) return false;
  const absl::string_view port_text = address.substr(colon + 1);
  int port = 0;
  return !port_text.empty() && port_text.size() <= 5 &&
         std::all_of(port_text.begin(), port_text.end(), absl::ascii_isdigit) &&
         absl::SimpleAtoi(port_text, &port) && port <= 65535 && (allow_zero || port > 0);
}

// Sets `name` to the lower-cased `value` of --`flag` if it is a header name (letters, digits,
// '-', '_', '.').
absl::Status SetHeaderName(absl::string_view flag, absl::string_view value, std::string& name) {
  const bool valid = !value.empty() && std::all_of(value.begin(), value.end(), [](char c) {
    return absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.';
  });
  if (!valid) {
    return InvalidConfig(absl::StrCat("--", flag, " must be a header name, not \"", value, "\""));
  }
  name = absl::AsciiStrToLower(value);
  return absl::OkStatus();
}

}  // namespace

const ProgramFlags& SidecarFlags() {
  static const ProgramFlags* const flags = new ProgramFlags{
      .program = "token-sidecar",
      .usage =
          "Serves GetToken, ListTokens and VerifyToken of apitoken.v1.TokenService, and "
          "Envoy's ext_authz Check (envoy.service.auth.v3.Authorization), from a local cache "
          "of --upstream. Flags fall back to TOKENSTATUS_SIDECAR_<FLAG> environment variables.",
      .env_prefix = kEnvPrefix,
      .names = FlagNamesDefinedIn(__FILE__)};
  return *flags;
}

absl::StatusOr<SidecarConfig> LoadSidecarConfig() {
  SidecarConfig config;
  config.upstream = absl::GetFlag(FLAGS_upstream);
  if (!IsHostPort(config.upstream, /*allow_zero=*/false)) {
    return InvalidConfig(absl::StrCat("--upstream must be host:port with a port 1..65535, not \"",
                                      config.upstream, "\""));
  }
  absl::StatusOr<ConnectionOptions> connection =
      LoadConnectionOptions({.address = config.upstream,
                             .ca_file = absl::GetFlag(FLAGS_ca),
                             .cert_file = absl::GetFlag(FLAGS_cert),
                             .key_file = absl::GetFlag(FLAGS_key),
                             .credentials_file = absl::GetFlag(FLAGS_credentials_file)});
  if (!connection.ok()) return connection.status();
  config.connection = *std::move(connection);
  config.listen = absl::GetFlag(FLAGS_listen);
  if (absl::StartsWith(config.listen, kUnixScheme)) {
    config.unix_socket_path = config.listen.substr(std::size(kUnixScheme) - 1);
    if (!absl::StartsWith(config.unix_socket_path, "/")) {
      return InvalidConfig(
          absl::StrCat("--listen=unix: needs an absolute path, not \"", config.listen, "\""));
    }
  } else if (!IsHostPort(config.listen, /*allow_zero=*/true)) {
    return InvalidConfig(absl::StrCat(
        "--listen must be unix:/absolute/path or host:port with a port 0..65535, not \"",
        config.listen, "\""));
  }
  config.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  if (!config.metrics_listen.empty() && !IsHostPort(config.metrics_listen, /*allow_zero=*/true)) {
    return InvalidConfig(
        absl::StrCat("--metrics_listen must be host:port with a port 0..65535, "
                     "not \"",
                     config.metrics_listen, "\""));
  }
  config.cache.account_id = absl::GetFlag(FLAGS_account);
  if (!config.cache.account_id.empty()) {
    if (absl::Status status = ValidateAccountId(config.cache.account_id); !status.ok()) {
      return InvalidConfig(absl::StrCat("--account: ", status.message()));
    }
  }
  config.cache.include_secret_hash = true;  // VerifyToken is computed locally
  config.cache.max_staleness = absl::GetFlag(FLAGS_max_staleness);
  if (config.cache.max_staleness < absl::Milliseconds(100)) {
    return InvalidConfig("--max_staleness must be >= 100ms");
  }
  const std::string policy = absl::GetFlag(FLAGS_stale_policy);
  if (policy == "fail_closed") {
    config.cache.stale_policy = StalePolicy::kFailClosed;
  } else if (policy == "serve_last_known") {
    config.cache.stale_policy = StalePolicy::kServeLastKnown;
  } else {
    return InvalidConfig(absl::StrCat(
        "--stale_policy must be fail_closed or serve_last_known, not \"", policy, "\""));
  }
  config.cache.initial_backoff = absl::GetFlag(FLAGS_reconnect_initial_backoff);
  config.cache.max_backoff = absl::GetFlag(FLAGS_reconnect_max_backoff);
  if (config.cache.initial_backoff <= absl::ZeroDuration() ||
      config.cache.max_backoff < config.cache.initial_backoff) {
    return InvalidConfig("--reconnect_initial_backoff must be > 0 and <= --reconnect_max_backoff");
  }
  config.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  if (config.shutdown_grace < absl::ZeroDuration()) {
    return InvalidConfig("--shutdown_grace must be >= 0");
  }
  if (absl::Status status = SetHeaderName("authz_header", absl::GetFlag(FLAGS_authz_header),
                                          config.authz.credential_header);
      !status.ok()) {
    return status;
  }
  if (absl::Status status =
          SetHeaderName("authz_token_id_header", absl::GetFlag(FLAGS_authz_token_id_header),
                        config.authz.token_id_header);
      !status.ok()) {
    return status;
  }
  if (absl::Status status =
          SetHeaderName("authz_account_id_header", absl::GetFlag(FLAGS_authz_account_id_header),
                        config.authz.account_id_header);
      !status.ok()) {
    return status;
  }
  config.authz.strip_credential = absl::GetFlag(FLAGS_authz_strip_credential);
  return config;
}

std::string DescribeSidecarConfig(const SidecarConfig& config) {
  return absl::StrCat(
      "event=config upstream=", config.upstream,
      " tls=", config.connection.tls_ca_pem.empty() ? "off" : "on",
      " client_cert=", config.connection.tls_cert_pem.empty() ? "unset" : "set",
      " credential=", config.connection.bearer_secret.empty() ? "unset" : "set",
      " listen=", config.listen,
      " metrics_listen=", config.metrics_listen.empty() ? "-" : config.metrics_listen,
      " account=", config.cache.account_id.empty() ? "-" : config.cache.account_id,
      " max_staleness=", absl::FormatDuration(config.cache.max_staleness), " stale_policy=",
      config.cache.stale_policy == StalePolicy::kFailClosed ? "fail_closed" : "serve_last_known",
      " reconnect_initial_backoff=", absl::FormatDuration(config.cache.initial_backoff),
      " reconnect_max_backoff=", absl::FormatDuration(config.cache.max_backoff),
      " shutdown_grace=", absl::FormatDuration(config.shutdown_grace),
      " authz_header=", config.authz.credential_header,
      " authz_strip_credential=", config.authz.strip_credential ? "true" : "false",
      " authz_token_id_header=", config.authz.token_id_header,
      " authz_account_id_header=", config.authz.account_id_header);
}

}  // namespace tokenstatus
