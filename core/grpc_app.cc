#include "core/grpc_app.h"

#include <signal.h>
#include <string.h>

#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/log.h"
#include "core/status_util.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"

namespace tokenstatus {

GrpcApp::~GrpcApp() {
  for (const std::unique_ptr<grpc::Server>& server : servers_) server->Shutdown();
}

absl::StatusOr<GrpcApp::Listening> GrpcApp::Listen(
    const std::string& address, std::shared_ptr<grpc::ServerCredentials> credentials,
    absl::string_view flag, absl::FunctionRef<void(grpc::ServerBuilder&)> configure) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address, std::move(credentials), &port);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  configure(builder);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {  // gRPC reports port 0 for an address it could not bind
    Log(LogLevel::kError, absl::StrCat("event=listen_failed ", flag, "=", address));
    return MakeError(absl::StatusCode::kUnavailable, reason::kInternal,
                     absl::StrCat("cannot listen on ", address));
  }
  servers_.push_back(std::move(server));
  return Listening{servers_.back().get(), port};
}

void GrpcApp::Serve(const sigset_t& signals, Hooks hooks) {
  std::thread signal_thread([&] {
    int signal_number = 0;
    while (sigwait(&signals, &signal_number) == 0 && signal_number == SIGHUP) {
      if (hooks.on_reload) hooks.on_reload();
    }
    Log(LogLevel::kInfo, absl::StrCat("event=shutdown signal=", sigabbrev_np(signal_number),
                                      " grace=", absl::FormatDuration(shutdown_grace_)));
    if (hooks.on_stop) hooks.on_stop();
    const auto deadline = absl::ToChronoTime(absl::Now() + shutdown_grace_);
    for (const std::unique_ptr<grpc::Server>& server : servers_) server->Shutdown(deadline);
  });
  if (!servers_.empty()) servers_.front()->Wait();
  signal_thread.join();
}

}  // namespace tokenstatus
