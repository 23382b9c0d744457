// tokenstatus-cache-e2e-bench: N TokenCaches in this process (over M connections) follow one
// server; K DisableToken calls, one after the other, each on a fresh ACTIVE token; for each,
// the time from the call's reply to the moment every cache has reported the change. Prints one
// key=value line (see FormatCacheE2eReport). Exit code 0 when every disable reached every cache
// (and each cache's Check agreed), 1 otherwise, 2 for bad flags or a failed setup.

#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/log.h"
#include "tests/bench/cache_e2e_bench.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "host:port of tokenstatus-server");
ABSL_FLAG(int, caches, 100, "TokenCaches in this process");
ABSL_FLAG(int, connections, 10, "gRPC channels (separate HTTP/2 connections) the caches share");
ABSL_FLAG(int, disables, 100, "DisableToken calls, one after the other, each on a fresh token");
ABSL_FLAG(std::string, sidecar, "",
          "a token-sidecar following the same server: time each disable to its first denying "
          "ext_authz Check (empty: not measured)");
ABSL_FLAG(absl::Duration, arrival_timeout, absl::Seconds(30),
          "how long the caches may take to sync, and each disable to reach every cache");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // Off, as in noop_server.cc: Debian's Abseil checks lock order on every absl::Mutex lock.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  using tokenstatus::Log;
  using tokenstatus::LogLevel;
  namespace bench = tokenstatus::bench;

  bench::CacheE2eBenchOptions options;
  options.target = absl::GetFlag(FLAGS_target);
  options.caches = absl::GetFlag(FLAGS_caches);
  options.connections = absl::GetFlag(FLAGS_connections);
  options.disables = absl::GetFlag(FLAGS_disables);
  options.arrival_timeout = absl::GetFlag(FLAGS_arrival_timeout);
  options.sidecar = absl::GetFlag(FLAGS_sidecar);

  absl::StatusOr<bench::CacheE2eBenchReport> report = bench::RunCacheE2eBench(options);
  if (!report.ok()) {
    Log(LogLevel::kError, report.status().ToString());
    return 2;
  }
  std::printf("%s\n", bench::FormatCacheE2eReport(options, *report).c_str());
  if (report->complete != report->disables || report->check_mismatches > 0) {
    Log(LogLevel::kError,
        absl::StrCat("complete=", report->complete, " of ", report->disables,
                     " missing=", report->missing, " check_mismatches=", report->check_mismatches));
    return 1;
  }
  return 0;
}
