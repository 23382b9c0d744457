// tokenstatus-loadgen: keeps N GetToken, DisableToken/EnableToken, CreateToken or VerifyToken
// RPCs in flight against a TokenService (or token-sidecar), N Envoy ext_authz Check RPCs against
// token-sidecar, or N etcd Range or Put RPCs against etcd, and prints one key=value line
// (see FormatReport). Exit code 0 when every RPC
// succeeded, 1 when any failed, 2 for bad flags or a failed setup.

#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/log.h"
#include "tests/bench/load_generator.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "host:port of the TokenService (or etcd)");
ABSL_FLAG(std::string, mode, "get",
          "get (GetToken), toggle (DisableToken/EnableToken), create (CreateToken), etcd-range "
          "(etcd Range), etcd-put (etcd Put of a new key each call), verify (VerifyToken) or check "
          "(Envoy ext_authz Check, against token-sidecar)");
ABSL_FLAG(int, concurrency, 16, "RPCs in flight");
ABSL_FLAG(int, connections, 1, "gRPC channels (separate HTTP/2 connections)");
ABSL_FLAG(int, threads, 1, "client completion-queue threads");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(5), "measured time");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(1), "load before measuring");
ABSL_FLAG(absl::Duration, rpc_timeout, absl::Seconds(5), "deadline of each RPC");
ABSL_FLAG(std::string, setup_target, "",
          "verify and check: the TokenService that creates the tokens (empty: --target)");
ABSL_FLAG(int, server_pid, 0,
          "the server's process id, to report its CPU time per request (0: not measured)");
ABSL_FLAG(int, store_pid, 0,
          "its store's (Redis's) process id, to report its CPU time per request (0: not measured)");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // Off, as in noop_server.cc: Debian's Abseil checks lock order on every absl::Mutex lock.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  using tokenstatus::Log;
  using tokenstatus::LogLevel;
  namespace bench = tokenstatus::bench;

  absl::StatusOr<bench::LoadMode> mode = bench::ParseLoadMode(absl::GetFlag(FLAGS_mode));
  if (!mode.ok()) {
    Log(LogLevel::kError, mode.status().ToString());
    return 2;
  }
  bench::LoadOptions options;
  options.target = absl::GetFlag(FLAGS_target);
  options.mode = *mode;
  options.concurrency = absl::GetFlag(FLAGS_concurrency);
  options.connections = absl::GetFlag(FLAGS_connections);
  options.threads = absl::GetFlag(FLAGS_threads);
  options.duration = absl::GetFlag(FLAGS_duration);
  options.warmup = absl::GetFlag(FLAGS_warmup);
  options.rpc_timeout = absl::GetFlag(FLAGS_rpc_timeout);
  options.setup_target = absl::GetFlag(FLAGS_setup_target);
  options.server_pid = absl::GetFlag(FLAGS_server_pid);
  options.store_pid = absl::GetFlag(FLAGS_store_pid);

  absl::StatusOr<bench::LoadReport> report = bench::RunLoad(options);
  if (!report.ok()) {
    Log(LogLevel::kError, report.status().ToString());
    return 2;
  }
  std::printf("%s\n", bench::FormatReport(options, *report).c_str());
  if (report->errors > 0) {
    Log(LogLevel::kError,
        absl::StrCat("errors=", report->errors, " first=\"", report->first_error, "\""));
    return 1;
  }
  return 0;
}
