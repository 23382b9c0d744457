#pragma once

#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"

namespace tokenstatus {

// The life of a process that serves gRPC, shared by tokenstatus-server and token-sidecar: its
// servers, started with the settings every server here shares, and the way it stops.
//
//   GrpcApp app(config.shutdown_grace);
//   absl::StatusOr<GrpcApp::Listening> listening =
//       app.Listen(config.listen, credentials, "listen", [&](grpc::ServerBuilder& builder) {
//     builder.RegisterService(&service);
//   });
//   ...
//   app.Serve(signals, {.on_reload = ..., .on_stop = ...});  // until SIGTERM or SIGINT
//
// Owned as the last member of the program's application class (ServerApp, SidecarApp), whose
// members are declared in start-up order: the servers then stop before anything their calls
// use is destroyed. Thread-compatible (Serve runs on the main thread).
class GrpcApp {
 public:
  struct Hooks {
    // SIGHUP (if it is among the signals): reload what can be reloaded. On the signal thread.
    absl::AnyInvocable<void()> on_reload;
    // SIGTERM/SIGINT, before the servers stop taking calls: end what never ends by itself
    // (watch streams), mark the process unhealthy. On the signal thread.
    absl::AnyInvocable<void()> on_stop;
  };

  explicit GrpcApp(absl::Duration shutdown_grace) : shutdown_grace_(shutdown_grace) {}
  ~GrpcApp();  // shuts down every server still running

  GrpcApp(const GrpcApp&) = delete;
  GrpcApp& operator=(const GrpcApp&) = delete;

  // A server Listen started (owned by the GrpcApp) and the port it is bound to.
  struct Listening {
    grpc::Server* server;
    int port;  // the port asked for, or the one picked for port 0 (for a unix socket: not 0)
  };

  // Starts a server on `address` with the health checking service, reflection, SO_REUSEPORT
  // off (a second server on a taken port fails instead of silently sharing its traffic) and
  // what `configure` adds (services, channel arguments). UNAVAILABLE if it cannot listen
  // (logged as event=listen_failed <flag>=<address>). The first server started is the main one:
  // Serve returns once it has stopped.
  absl::StatusOr<Listening> Listen(const std::string& address,
                                   std::shared_ptr<grpc::ServerCredentials> credentials,
                                   absl::string_view flag,
                                   absl::FunctionRef<void(grpc::ServerBuilder&)> configure);

  // Serves until one of `signals` (blocked by BlockSignalsForSigwait) other than SIGHUP
  // arrives: then logs event=shutdown, runs hooks.on_stop, gives the calls in flight
  // shutdown_grace, and returns once every call has finished. SIGHUP runs hooks.on_reload.
  void Serve(const sigset_t& signals, Hooks hooks);

 private:
  const absl::Duration shutdown_grace_;
  std::vector<std::unique_ptr<grpc::Server>> servers_;
};

}  // namespace tokenstatus
