// tokenstatus-server: the TokenService over Redis, with health checking and reflection.
//
// Start-up: flags (with TOKENSTATUS_* environment fallbacks) -> two Redis clients (connect and
// reconnect by themselves; the second, one connection, carries only the event tailer's
// blocking reads) -> token mirror, watch hub, event tailer (loads the mirror, then follows the
// event stream) -> gRPC server. Redis is --redis, or the primary that --redis_sentinels name
// (followed across failovers). Health ("" and apitoken.v1.TokenService): HealthPublisher
// (SERVING once the mirror has loaded, while Redis is reachable or has not been for more than
// --redis_outage_grace). SIGTERM/SIGINT: watch streams end with UNAVAILABLE (clients resume
// elsewhere), the other calls drain for --shutdown_grace, then the tailer, the store and Redis
// stop; exit 0. SIGHUP, and a change of its contents
// (checked every --reload_check_interval), reload --credentials_file (a file that does not
// parse, or holds no credential without --allow_empty_credentials_file, keeps the old
// credentials); changed TLS files are picked up by new handshakes. --help prints the flags and
// exits 0. Exit 2 for an invalid configuration, 1 if the server cannot listen.

#include <signal.h>

#include <iostream>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/flag_sources.h"
#include "core/log.h"
#include "core/process_signals.h"
#include "server/app/server_app.h"
#include "server/app/server_config.h"

namespace tokenstatus {
namespace {

constexpr int kExitBadConfig = 2;
constexpr int kExitCannotServe = 1;

int Run(int argc, char** argv, const sigset_t& handled_signals) {
  if (std::optional<int> exit_code = ParseProgramFlags(argc, argv, ServerFlags())) {
    return *exit_code;
  }
  absl::StatusOr<ServerConfig> config = LoadServerConfig();
  if (!config.ok()) {
    std::cerr << "tokenstatus-server: " << config.status().message() << "\n";
    return kExitBadConfig;
  }
  Log(LogLevel::kInfo, DescribeConfig(*config));
  if (config->access.allow_unauthenticated) {
    Log(LogLevel::kWarning,
        absl::StrCat("event=insecure_mode warning=\"--insecure_allow_unauthenticated: any "
                     "caller that reaches ",
                     config->listen,
                     " without credentials acts as anonymous with every role and may disable "
                     "every token; for development on this machine only\""));
  }
  absl::StatusOr<std::unique_ptr<ServerApp>> app = ServerApp::Start(*std::move(config));
  if (!app.ok()) {
    if (absl::IsUnavailable(app.status())) return kExitCannotServe;
    std::cerr << "tokenstatus-server: " << app.status().message() << "\n";
    return kExitBadConfig;
  }
  (*app)->Run(handled_signals);
  app->reset();
  Log(LogLevel::kInfo, "event=stopped");
  return 0;
}

}  // namespace
}  // namespace tokenstatus

int main(int argc, char** argv) {
  // Debian's Abseil is built without NDEBUG, so absl::Mutex (ours and gRPC's) would run its
  // deadlock detector on every lock: 5-8% of the server's CPU under load.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // SIGTERM/SIGINT stop the server, SIGHUP reloads the credentials: one thread sigwaits.
  const sigset_t handled_signals = tokenstatus::BlockSignalsForSigwait({SIGTERM, SIGINT, SIGHUP});
  return tokenstatus::Run(argc, argv, handled_signals);
}
