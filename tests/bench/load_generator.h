#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace tokenstatus::bench {

// What each in-flight slot calls in a loop. The etcd modes call etcd's KV service (etcd 3.4's
// etcdserverpb.KV) instead of a TokenService, with the same channels, threads and slots, so that
// etcd is measured by the same client as tokenstatus.
enum class LoadMode {
  kGet,        // GetToken on the slot's own token
  kToggle,     // DisableToken, EnableToken, DisableToken, ... on the slot's own token
  kCreate,     // CreateToken: a new token on every call
  kEtcdRange,  // etcd Range of the slot's own key (linearizable, etcd's default)
  kEtcdPut,    // etcd Put of a new key, with a kEtcdValueBytes value, on every call
  kVerify,     // VerifyToken of the slot's token's secret (the server or token-sidecar)
  kCheck,      // Envoy ext_authz Check with the slot's secret as a bearer (token-sidecar)
};

// The size of every value the etcd modes put.
inline constexpr int kEtcdValueBytes = 128;

// Parses "get", "toggle", "create", "etcd-range", "etcd-put", "verify" or "check";
// INVALID_ARGUMENT otherwise.
absl::StatusOr<LoadMode> ParseLoadMode(absl::string_view text);
// The name ParseLoadMode parses.
absl::string_view LoadModeName(LoadMode mode);

struct LoadOptions {
  std::string target = "127.0.0.1:50051";  // host:port of a TokenService (etcd for etcd modes)
  LoadMode mode = LoadMode::kGet;
  int concurrency = 16;                      // RPCs in flight at any time (one per slot), >= 1
  int connections = 1;                       // gRPC channels, each its own HTTP/2 connection, >= 1
  int threads = 1;                           // completion-queue threads of the client, >= 1
  absl::Duration warmup = absl::Seconds(1);  // load before measuring, not counted
  absl::Duration duration = absl::Seconds(5);  // the measured window
  absl::Duration rpc_timeout = absl::Seconds(5);
  std::string account_id = "ACC-0000-0001";  // owner of the tokens the run creates
  // Where the etcd modes put their keys: "<etcd_prefix><run>/<slot>" for etcd-range,
  // "<etcd_prefix><run>/<slot>/<call>" for etcd-put, where <run> is the run's start time in
  // microseconds since the epoch (so runs against one etcd never share keys).
  std::string etcd_prefix = "/tokenstatus-bench/load/";
  // verify and check: the TokenService that creates the slots' tokens (a token-sidecar target
  // takes no changes); empty = target. The load starts once `target` verifies every one of them
  // as VALID.
  std::string setup_target;
  // Processes whose CPU time over the window is reported (/proc/<pid>/stat); 0 = not measured.
  int server_pid = 0;  // the server under load (tokenstatus, etcd, the no-op server, the sidecar)
  int store_pid = 0;   // the server's store (Redis)
};

// The measured window of one run.
struct LoadReport {
  int64_t requests = 0;                       // successful RPCs completed inside the window
  int64_t errors = 0;                         // failed RPCs, warmup included
  std::string first_error;                    // "<code>: <message>" of the first failure, if any
  double requests_per_second = 0;             // requests / window
  absl::Duration p50 = absl::ZeroDuration();  // latency of the successful RPCs in the window
  absl::Duration p99 = absl::ZeroDuration();
  // The load generator's own CPU use (user + system time of the whole process during the
  // window) divided by the window: 100 = one core busy.
  double client_cpu_percent = 0;
  // CPU time over the window of this process, of options.server_pid and of options.store_pid
  // (zero when not measured): divided by the requests, the cost of one request in each.
  absl::Duration client_cpu = absl::ZeroDuration();
  absl::Duration server_cpu = absl::ZeroDuration();
  absl::Duration store_cpu = absl::ZeroDuration();
};

// Opens `connections` channels to `target` (waiting until they are connected); for get and toggle
// creates one token per slot with CreateToken (so toggling slots never race: each DisableToken
// and EnableToken succeeds), for etcd-range puts one key per slot; then keeps `concurrency` RPCs
// in flight for warmup + duration and measures the window. An etcd Range that finds no key
// counts as a failed RPC (NOT_FOUND). Errors: INVALID_ARGUMENT for options out of range;
// UNAVAILABLE if a channel does not connect within rpc_timeout; the status of a failed setup
// call. Failed load RPCs are counted in the report, not returned. Blocks the calling thread for
// the whole run.
absl::StatusOr<LoadReport> RunLoad(const LoadOptions& options);

// One line of space-separated key=value pairs (mode, concurrency, connections, requests,
// errors, rps, p50_us, p99_us, client_cpu_pct, client_us_per_request, server_us_per_request,
// store_us_per_request; the last three 0 when not measured or no request completed), for scripts.
std::string FormatReport(const LoadOptions& options, const LoadReport& report);

}  // namespace tokenstatus::bench
