#include "client/sidecar/sidecar_app.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "client/connection.h"
#include "client/sidecar/unix_socket.h"
#include "core/log.h"
#include "core/metrics/process_metrics.h"
#include "core/status_util.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpc/health/v1/health.pb.h"

namespace tokenstatus {
namespace {

// The address the sidecar serves on, for the "listening on" line: `listen` itself for a unix
// socket, host:<bound port> for TCP.
std::string ListeningAddress(const SidecarConfig& config, int port) {
  if (!config.unix_socket_path.empty()) return config.listen;
  return absl::StrCat(config.listen.substr(0, config.listen.rfind(':')), ":", port);
}

}  // namespace

SidecarApp::SocketFile::~SocketFile() {
  if (!path.empty()) RemoveUnixSocket(path);
}

SidecarApp::SidecarApp(SidecarConfig config)
    : config_(std::move(config)),
      decisions_(metrics_.AddCounter("tokenstatus_sidecar_decisions_total",
                                     "Answers of VerifyToken and Envoy's Check, by whether they "
                                     "allowed the token.",
                                     {"rpc", "result"})),
      grpc_(config_.shutdown_grace) {}

absl::StatusOr<std::unique_ptr<SidecarApp>> SidecarApp::Start(SidecarConfig config) {
  std::unique_ptr<SidecarApp> app(new SidecarApp(std::move(config)));
  const SidecarConfig& cfg = app->config_;
  // As in the server: reflection describes the error details and the health service.
  google::rpc::Status::descriptor();
  google::rpc::ErrorInfo::descriptor();
  grpc::health::v1::HealthCheckRequest::descriptor();

  absl::StatusOr<std::unique_ptr<TokenCache>> cache = TokenCache::Create(
      OpenChannel(cfg.connection, TokenCache::ChannelArguments(cfg.cache)), cfg.cache);
  if (!cache.ok()) return cache.status();
  app->cache_ = *std::move(cache);
  // Without --metrics_listen nothing is recorded (metrics cost nothing when off).
  const bool metrics_on = !cfg.metrics_listen.empty();
  if (metrics_on) {
    app->cache_metrics_ = std::make_unique<TokenCacheMetrics>(*app->cache_, app->metrics_);
  }
  if (!cfg.unix_socket_path.empty()) {
    if (absl::Status status = PrepareUnixSocket(cfg.unix_socket_path); !status.ok()) {
      Log(LogLevel::kError, absl::StrCat("event=listen_failed listen=", cfg.listen, " error=\"",
                                         status.message(), "\""));
      return MakeError(absl::StatusCode::kUnavailable, reason::kInternal, status.message());
    }
    app->socket_file_.path = cfg.unix_socket_path;
  }
  app->service_ = std::make_unique<SidecarService>(
      *app->cache_, SidecarServiceOptions{.upstream = cfg.upstream,
                                          .stale_policy = cfg.cache.stale_policy,
                                          .decisions = metrics_on ? &app->decisions_ : nullptr,
                                          .calls = metrics_on ? &app->grpc_metrics_ : nullptr});
  app->ext_authz_ = std::make_unique<ExtAuthzService>(*app->service_, cfg.authz);
  absl::StatusOr<GrpcApp::Listening> listening = app->grpc_.Listen(
      cfg.listen, grpc::InsecureServerCredentials(), "listen", [&](grpc::ServerBuilder& builder) {
        builder.RegisterService(app->service_.get());
        builder.RegisterService(app->ext_authz_.get());
      });
  if (!listening.ok()) return listening.status();
  app->health_ =
      std::make_unique<CacheHealth>(*app->cache_, listening->server->GetHealthCheckService());
  Log(LogLevel::kInfo, absl::StrCat("listening on ", ListeningAddress(cfg, listening->port)));
  if (metrics_on) {
    metrics::AddProcessMetrics(app->metrics_, "token-sidecar");
    for (const char* rpc : {"VerifyToken", "Check"}) {
      for (const char* result : {"allow", "deny"}) app->decisions_.With({rpc, result});
    }
    absl::StatusOr<std::unique_ptr<metrics::MetricsEndpoint>> endpoint =
        metrics::MetricsEndpoint::Start(cfg.metrics_listen, app->metrics_);
    if (!endpoint.ok()) return endpoint.status();
    app->metrics_endpoint_ = *std::move(endpoint);
  }
  return app;
}

void SidecarApp::Run(const sigset_t& signals) {
  grpc_.Serve(signals, {.on_reload = nullptr, .on_stop = [this] {
                          health_->Shutdown();
                          service_->Shutdown();
                        }});
}

}  // namespace tokenstatus
