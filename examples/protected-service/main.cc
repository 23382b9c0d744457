// protected-service: a gRPC service that only answers calls carrying a valid tokenstatus API
// token, in `authorization: Bearer <token>`. The check is TokenAuthProcessor, installed on the
// server's credentials: it answers from a TokenCache (a local copy of every token's state that
// tokenstatus-server keeps current), so no call waits for the network, and a disable reaches it
// within milliseconds. Handlers run only for valid tokens and read which one from the
// AuthContext.
//
// Usage: protected-service --tokenstatus=<server address> [--listen=127.0.0.1:50061]
// The bearer credential this service shows tokenstatus (a principal with the verifier role)
// comes from TOKENSTATUS_CREDENTIALS, never from the command line. It logs
// "listening on <address>" once it serves, and stops on SIGTERM or SIGINT.

#include <csignal>
#include <iostream>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "client/connection.h"
#include "client/token_auth_processor.h"
#include "client/token_cache.h"
#include "echo/v1/echo.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/security/server_credentials.h"

ABSL_FLAG(std::string, tokenstatus, "127.0.0.1:50051", "address of tokenstatus-server");
ABSL_FLAG(std::string, listen, "127.0.0.1:50061", "where this service listens (loopback)");

namespace {

// The handler: the token check already happened; it only reads who called.
class EchoService final : public echo::v1::EchoService::CallbackService {
  grpc::ServerUnaryReactor* Echo(grpc::CallbackServerContext* context,
                                 const echo::v1::EchoRequest* request,
                                 echo::v1::EchoResponse* response) override {
    const auto property = [&](const char* name) {
      const auto values = context->auth_context()->FindPropertyValues(name);
      return values.empty() ? std::string() : std::string(values[0].data(), values[0].size());
    };
    response->set_message(request->message());
    response->set_token_id(property(tokenstatus::TokenAuthProcessor::kTokenIdProperty));
    response->set_account_id(property(tokenstatus::TokenAuthProcessor::kAccountIdProperty));
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);  // before any thread starts

  tokenstatus::ConnectionSources sources;
  sources.address = absl::GetFlag(FLAGS_tokenstatus);
  absl::StatusOr<tokenstatus::ConnectionOptions> connection =
      tokenstatus::LoadConnectionOptions(sources);
  if (!connection.ok()) {
    std::cerr << connection.status().message() << "\n";
    return 2;
  }
  tokenstatus::TokenCacheOptions cache_options;  // every token, with the secret hashes
  absl::StatusOr<std::unique_ptr<tokenstatus::TokenCache>> cache = tokenstatus::TokenCache::Create(
      tokenstatus::OpenChannel(*connection,
                               tokenstatus::TokenCache::ChannelArguments(cache_options)),
      cache_options);
  if (!cache.ok()) {
    std::cerr << cache.status().message() << "\n";
    return 2;
  }

  // Processors run only on secure credentials: local ones (loopback TCP) here, TLS elsewhere.
  std::shared_ptr<grpc::ServerCredentials> credentials =
      grpc::experimental::LocalServerCredentials(LOCAL_TCP);
  credentials->SetAuthMetadataProcessor(
      std::make_shared<tokenstatus::TokenAuthProcessor>(std::move(*cache)));
  EchoService service;
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen), credentials, &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::cerr << "cannot listen on " << absl::GetFlag(FLAGS_listen) << "\n";
    return 2;
  }
  const std::string listen = absl::GetFlag(FLAGS_listen);
  std::cerr << "listening on " << listen.substr(0, listen.rfind(':')) << ":" << port << std::endl;

  int signal = 0;
  sigwait(&stop_signals, &signal);
  server->Shutdown();
  return 0;
}
