// token-sidecar: serves GetToken, ListTokens and VerifyToken of apitoken.v1.TokenService from a
// local TokenCache that follows one tokenstatus-server (--upstream) with WatchTokens; one per
// host, for every local service that checks tokens. Changes are refused (UNIMPLEMENTED, naming
// the upstream). See client/sidecar/sidecar_service.h for the answers and
// client/sidecar/sidecar_config.h for the flags.
//
// Start-up: flags (TOKENSTATUS_SIDECAR_* environment fallbacks) -> the cache (connects and
// reconnects by itself) -> a stale unix socket file removed -> gRPC server with health and
// reflection -> "listening on <address>". Health is SERVING while the cache is fresh.
// SIGTERM/SIGINT: health NOT_SERVING, reads waiting for a revision fail, the other calls drain
// for --shutdown_grace, the cache stops; exit 0. Exit 2 for an invalid configuration, 1 if the
// sidecar cannot listen.

#include <pthread.h>
#include <signal.h>

#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/connection.h"
#include "client/sidecar/cache_health.h"
#include "client/sidecar/sidecar_config.h"
#include "client/sidecar/sidecar_service.h"
#include "client/sidecar/unix_socket.h"
#include "client/token_cache.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpc/health/v1/health.pb.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "server/common/flag_sources.h"
#include "server/common/log.h"
#include "server/common/process_signals.h"

namespace tokenstatus {
namespace {

constexpr int kExitBadConfig = 2;
constexpr int kExitCannotServe = 1;

// The address the sidecar serves on, for the "listening on" line: `listen` itself for a unix
// socket, host:<bound port> for TCP.
std::string ListeningAddress(const SidecarConfig& config, int port) {
  if (!config.unix_socket_path.empty()) return config.listen;
  return absl::StrCat(config.listen.substr(0, config.listen.rfind(':')), ":", port);
}

int Run(int argc, char** argv, const sigset_t& stop_signals) {
  absl::SetProgramUsageMessage(
      "Serves GetToken, ListTokens and VerifyToken of apitoken.v1.TokenService from a local "
      "cache of --upstream. Flags fall back to TOKENSTATUS_SIDECAR_<FLAG> environment "
      "variables.");
  if (HelpRequested(argc, argv)) {
    std::cout << absl::ProgramUsageMessage() << "\n\nFlags:\n" << SidecarFlagsHelp();
    return 0;
  }
  absl::Status flags = ApplySidecarEnvironmentDefaults();
  if (flags.ok()) flags = CheckSidecarCommandLineValues(argc, argv);
  if (!flags.ok()) {
    std::cerr << "token-sidecar: " << flags.message() << "\n";
    return kExitBadConfig;
  }
  absl::ParseCommandLine(argc, argv);
  absl::StatusOr<SidecarConfig> config = LoadSidecarConfig();
  if (!config.ok()) {
    std::cerr << "token-sidecar: " << config.status().message() << "\n";
    return kExitBadConfig;
  }
  Log(LogLevel::kInfo, DescribeSidecarConfig(*config));

  // As in the server: reflection describes the error details and the health service.
  google::rpc::Status::descriptor();
  google::rpc::ErrorInfo::descriptor();
  grpc::health::v1::HealthCheckRequest::descriptor();

  absl::StatusOr<std::unique_ptr<TokenCache>> cache = TokenCache::Create(
      OpenChannel(config->connection, TokenCache::ChannelArguments(config->cache)), config->cache);
  if (!cache.ok()) {
    std::cerr << "token-sidecar: " << cache.status().message() << "\n";
    return kExitBadConfig;
  }
  if (!config->unix_socket_path.empty()) {
    if (absl::Status status = PrepareUnixSocket(config->unix_socket_path); !status.ok()) {
      Log(LogLevel::kError, absl::StrCat("event=listen_failed listen=", config->listen, " error=\"",
                                         status.message(), "\""));
      return kExitCannotServe;
    }
  }
  auto service = std::make_unique<SidecarService>(
      **cache, SidecarServiceOptions{.upstream = config->upstream,
                                     .stale_policy = config->cache.stale_policy});

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(config->listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(service.get());
  // As in the server: a second sidecar on a taken TCP port fails instead of sharing it.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    Log(LogLevel::kError, absl::StrCat("event=listen_failed listen=", config->listen));
    return kExitCannotServe;
  }
  auto health = std::make_unique<CacheHealth>(**cache, server->GetHealthCheckService());
  Log(LogLevel::kInfo, absl::StrCat("listening on ", ListeningAddress(*config, port)));

  std::thread signal_thread([&] {
    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);
    Log(LogLevel::kInfo, absl::StrCat("event=shutdown signal=", sigabbrev_np(signal_number),
                                      " grace=", absl::FormatDuration(config->shutdown_grace)));
    health->Shutdown();
    service->Shutdown();
    server->Shutdown(absl::ToChronoTime(absl::Now() + config->shutdown_grace));
  });
  server->Wait();
  signal_thread.join();
  // Every call has finished: the server, the cache's listeners, then the cache (its threads
  // stop), and the socket file.
  health.reset();
  server.reset();
  service.reset();
  cache->reset();
  if (!config->unix_socket_path.empty()) RemoveUnixSocket(config->unix_socket_path);
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
