// tokenstatus-noop-server: serves NoopTokenService (the gRPC ceiling for the benchmark).
// Logs "listening on <host>:<port>" once serving; SIGTERM or SIGINT stops it, exit code 0.

#include <pthread.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/log.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "tests/bench/noop_token_service.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50052", "host:port to listen on (port 0: any free)");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // Debian's Abseil is built without NDEBUG, so absl::Mutex (which gRPC uses too) tracks lock
  // order for deadlock detection on every lock by default: a large cost per RPC.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  using tokenstatus::Log;
  using tokenstatus::LogLevel;

  // Blocked before gRPC starts its threads, so only sigwait below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const std::string listen = absl::GetFlag(FLAGS_listen);
  tokenstatus::bench::NoopTokenService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    Log(LogLevel::kError, absl::StrCat("event=listen_failed address=", listen));
    return 1;
  }
  Log(LogLevel::kInfo,
      absl::StrCat("listening on ", listen.substr(0, listen.rfind(':')), ":", port));

  int signal = 0;
  sigwait(&signals, &signal);
  Log(LogLevel::kInfo, absl::StrCat("event=shutdown signal=", strsignal(signal)));
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}
