#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tokenstatus::bench {

struct CacheE2eBenchOptions {
  std::string target = "127.0.0.1:50051";          // host:port of a tokenstatus-server
  int caches = 100;                                // TokenCaches in this process, >= 1
  int connections = 10;                            // gRPC channels they share round robin, >= 1
  int disables = 100;                              // DisableToken calls, one after the other, >= 1
  absl::Duration rpc_timeout = absl::Seconds(10);  // deadline of each unary RPC
  // How long the caches may take to sync, and each disable to reach every cache.
  absl::Duration arrival_timeout = absl::Seconds(30);
  std::string account_id = "ACC-0000-0003";  // owner of the tokens the run creates
  // A token-sidecar following the same server (gRPC target), or empty: after each disable's
  // reply, its Envoy ext_authz Check is called with the token's secret until it denies.
  std::string sidecar;
};

struct CacheE2eBenchReport {
  absl::Duration setup = absl::ZeroDuration();  // starting the caches until all had the tokens
  int64_t disables = 0;                         // DisableToken calls acknowledged
  int64_t complete = 0;  // disables that every cache reported (OnChange) in time
  int64_t missing = 0;   // (cache, disable) pairs not reported within arrival_timeout
  // (cache, disable) pairs whose TokenCache::Check did not say DISABLED once reported.
  int64_t check_mismatches = 0;
  // From the DisableToken reply at the client to the moment the last of all caches reported the
  // change (its OnChange listener ran), over the complete disables; 0 when every cache had it
  // before the reply arrived (the server acknowledges once its own mirror has the change, so the
  // caches' streams often deliver it first).
  absl::Duration p50 = absl::ZeroDuration();
  absl::Duration p99 = absl::ZeroDuration();
  absl::Duration max = absl::ZeroDuration();
  // The reference measured in the same run: the DisableToken call itself (start to reply).
  absl::Duration call_p50 = absl::ZeroDuration();
  absl::Duration call_p99 = absl::ZeroDuration();
  absl::Duration call_max = absl::ZeroDuration();
  // With a sidecar: disables its Check denied within arrival_timeout, and the time from the
  // DisableToken reply to the first denying Check answer (what Envoy in front of an API sees).
  int64_t sidecar_denied = 0;
  absl::Duration sidecar_p50 = absl::ZeroDuration();
  absl::Duration sidecar_p99 = absl::ZeroDuration();
  absl::Duration sidecar_max = absl::ZeroDuration();
};

// Opens `connections` channels to `target` (waiting until each is connected), creates
// `disables` ACTIVE tokens, starts `caches` TokenCaches (round robin over the channels; every
// token, secret hashes included) with a change listener each, and waits until every cache holds
// the tokens. Then, for each token in turn: DisableToken, and wait until every cache's listener
// has reported the DISABLED event (and its Check says DISABLED) before the next. Errors:
// INVALID_ARGUMENT for options out of range; UNAVAILABLE if a channel does not connect;
// DEADLINE_EXCEEDED if the caches do not sync within arrival_timeout; the status of a failed
// unary call. Disables that do not reach every cache are counted in the report. With a sidecar,
// each token is first allowed by its Check (the setup waits for that), and after each reply
// Check is called until it denies (before the caches are waited for).
absl::StatusOr<CacheE2eBenchReport> RunCacheE2eBench(const CacheE2eBenchOptions& options);

// One line of space-separated key=value pairs (caches, connections, disables, complete,
// missing, check_mismatches, setup_ms, p50_us, p99_us, max_us, call_p50_us, call_p99_us,
// call_max_us, sidecar_denied, sidecar_p50_us, sidecar_p99_us, sidecar_max_us), for scripts.
std::string FormatCacheE2eReport(const CacheE2eBenchOptions& options,
                                 const CacheE2eBenchReport& report);

}  // namespace tokenstatus::bench
