// tokenctl health.

#include <iostream>
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/token_client.h"
#include "client/tokenctl/commands.h"
#include "client/tokenctl/exit_code.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/client_context.h"

namespace tokenstatus::tokenctl {
namespace {

constexpr absl::Duration kHealthDeadline = absl::Seconds(3);

// Prints the serving status of `service` ("" for the server as a whole); exit 0 only when it is
// SERVING (a container healthcheck or a script may rely on that), kExitRefused otherwise.
int RunHealth(const CommandEnv& env, const std::string& service) {
  std::unique_ptr<grpc::health::v1::Health::Stub> stub =
      grpc::health::v1::Health::NewStub(env.open_channel());
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + kHealthDeadline));
  const grpc::Status status = stub->Check(&context, request, &response);
  if (!status.ok()) {
    return ReportError(FromGrpcStatus(status), env.options.server);
  }
  std::cout << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status()) << "\n";
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING ? kExitOk
                                                                             : kExitRefused;
}

}  // namespace

void AddHealthCommand(CommandSet& commands) {
  auto service = std::make_shared<std::string>();
  CLI::App* sub = commands.Add(
      "health", "Ask grpc.health.v1 whether the server serves (exit 0 only when SERVING)",
      [service](const CommandEnv& env) { return RunHealth(env, *service); });
  sub->add_option("--service", *service,
                  "Service to ask about: empty (the default) for the server as a whole, or "
                  "apitoken.v1.TokenService");
}

}  // namespace tokenstatus::tokenctl
