// token-sidecar: serves GetToken, ListTokens and VerifyToken of apitoken.v1.TokenService, and
// Envoy's ext_authz Check (envoy.service.auth.v3.Authorization), from a local TokenCache that
// follows one tokenstatus-server (--upstream) with WatchTokens; one per host, for every local
// service and proxy that checks tokens. Changes are refused (UNIMPLEMENTED, naming the upstream).
// See client/sidecar/sidecar_service.h and ext_authz_answer.h for the answers and
// client/sidecar/sidecar_config.h for the flags.
//
// Start-up: flags (TOKENSTATUS_SIDECAR_* environment fallbacks) -> the cache (connects and
// reconnects by itself) -> a stale unix socket file removed -> gRPC server with health and
// reflection -> "listening on <address>". Health is SERVING while the cache is fresh.
// SIGTERM/SIGINT: health NOT_SERVING, reads waiting for a revision fail, the other calls drain
// for --shutdown_grace, the cache stops; exit 0. Exit 2 for an invalid configuration, 1 if the
// sidecar cannot listen.

#include <signal.h>

#include <iostream>
#include <memory>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "client/sidecar/sidecar_app.h"
#include "client/sidecar/sidecar_config.h"
#include "core/flag_sources.h"
#include "core/log.h"
#include "core/process_signals.h"

namespace tokenstatus {
namespace {

constexpr int kExitBadConfig = 2;
constexpr int kExitCannotServe = 1;

int Run(int argc, char** argv, const sigset_t& stop_signals) {
  if (std::optional<int> exit_code = ParseProgramFlags(argc, argv, SidecarFlags())) {
    return *exit_code;
  }
  absl::StatusOr<SidecarConfig> config = LoadSidecarConfig();
  if (!config.ok()) {
    std::cerr << "token-sidecar: " << config.status().message() << "\n";
    return kExitBadConfig;
  }
  Log(LogLevel::kInfo, DescribeSidecarConfig(*config));
  absl::StatusOr<std::unique_ptr<SidecarApp>> app = SidecarApp::Start(*std::move(config));
  if (!app.ok()) {
    if (absl::IsUnavailable(app.status())) return kExitCannotServe;
    std::cerr << "token-sidecar: " << app.status().message() << "\n";
    return kExitBadConfig;
  }
  (*app)->Run(stop_signals);
  app->reset();
  Log(LogLevel::kInfo, "event=stopped");
  return 0;
}

}  // namespace
}  // namespace tokenstatus

int main(int argc, char** argv) {
  // As in the server: Debian's Abseil would run its deadlock detector on every lock.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const sigset_t stop_signals = tokenstatus::BlockSignalsForSigwait({SIGTERM, SIGINT});
  return tokenstatus::Run(argc, argv, stop_signals);
}
