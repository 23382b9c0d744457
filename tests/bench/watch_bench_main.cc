// tokenstatus-watchbench: opens N WatchTokens streams over M connections, waits until all are
// SYNCED, then makes alternating DisableToken / EnableToken calls on one token, spaced apart, and
// measures the time from each change's call to its arrival at every watcher; with --server=etcd
// the same with etcd Watch streams and Puts of one key (see WatchServer). Prints one key=value
// line (see FormatWatchReport). Exit code 0 when every change reached every
// watcher exactly once and in order, 1 otherwise, 2 for bad flags or a failed setup.

#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/log.h"
#include "tests/bench/watch_bench.h"

ABSL_FLAG(std::string, server, "tokenstatus",
          "tokenstatus (WatchTokens, DisableToken/EnableToken) or etcd (Watch, Put)");
ABSL_FLAG(std::string, target, "127.0.0.1:50051", "host:port of the server");
ABSL_FLAG(int, watchers, 1000, "watch streams");
ABSL_FLAG(int, connections, 10, "gRPC channels (separate HTTP/2 connections)");
ABSL_FLAG(int, changes, 50, "changes to one token (etcd: Puts of one key)");
ABSL_FLAG(absl::Duration, interval, absl::Milliseconds(20), "time between two changes' starts");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(1), "idle time after all streams are SYNCED");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Seconds(30),
          "how long to wait for all streams to sync, and for the last change to arrive");
ABSL_FLAG(int, server_pid, 0, "the server's process id, to report its RSS per watcher");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // Off, as in noop_server.cc: Debian's Abseil checks lock order on every absl::Mutex lock.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  using tokenstatus::Log;
  using tokenstatus::LogLevel;
  namespace bench = tokenstatus::bench;

  absl::StatusOr<bench::WatchServer> server = bench::ParseWatchServer(absl::GetFlag(FLAGS_server));
  if (!server.ok()) {
    Log(LogLevel::kError, server.status().ToString());
    return 2;
  }
  bench::WatchBenchOptions options;
  options.server = *server;
  options.target = absl::GetFlag(FLAGS_target);
  options.watchers = absl::GetFlag(FLAGS_watchers);
  options.connections = absl::GetFlag(FLAGS_connections);
  options.changes = absl::GetFlag(FLAGS_changes);
  options.interval = absl::GetFlag(FLAGS_interval);
  options.warmup = absl::GetFlag(FLAGS_warmup);
  options.drain_timeout = absl::GetFlag(FLAGS_drain_timeout);
  options.server_pid = absl::GetFlag(FLAGS_server_pid);

  absl::StatusOr<bench::WatchBenchReport> report = bench::RunWatchBench(options);
  if (!report.ok()) {
    Log(LogLevel::kError, report.status().ToString());
    return 2;
  }
  std::printf("%s\n", bench::FormatWatchReport(options, *report).c_str());
  if (report->delivered != report->expected || report->duplicates > 0 || report->out_of_order > 0 ||
      report->ended > 0) {
    Log(LogLevel::kError,
        absl::StrCat("delivered=", report->delivered, " of ", report->expected,
                     " duplicates=", report->duplicates, " out_of_order=", report->out_of_order,
                     " ended=", report->ended, " first_end=\"", report->first_end, "\""));
    return 1;
  }
  return 0;
}
