#pragma once

#include <signal.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "client/sidecar/cache_health.h"
#include "client/sidecar/ext_authz_service.h"
#include "client/sidecar/sidecar_config.h"
#include "client/sidecar/sidecar_service.h"
#include "client/token_cache.h"
#include "client/token_cache_metrics.h"
#include "core/grpc_app.h"
#include "core/metrics/grpc_server_metrics.h"
#include "core/metrics/metrics_endpoint.h"
#include "core/metrics/registry.h"

namespace tokenstatus {

// token-sidecar, started and stopped as one object:
//
//   the cache (connects to --upstream and reconnects by itself) -> a stale unix socket file
//   removed -> SidecarService, and ExtAuthzService verifying through it -> the gRPC server
//   (both services, health, reflection) -> health from the cache's freshness -> the metrics
//   endpoint (--metrics_listen). The metrics registry comes first of all.
//
// The members are declared in that order, so they are destroyed in the reverse one: health
// stops reporting before the server goes, the server before the services, ExtAuthzService
// before the SidecarService it verifies with, that one (and its cache listener) before the
// cache, and the socket file is removed last.
class SidecarApp {
 public:
  // Starts everything `config` describes. Errors: INVALID_ARGUMENT for cache options it refuses
  // (exit 2); UNAVAILABLE if it cannot listen (exit 1). Logs "listening on <address>" once it
  // serves.
  static absl::StatusOr<std::unique_ptr<SidecarApp>> Start(SidecarConfig config);

  SidecarApp(const SidecarApp&) = delete;
  SidecarApp& operator=(const SidecarApp&) = delete;

  // Serves until SIGTERM or SIGINT (among `signals`): health turns NOT_SERVING, reads waiting
  // for a revision fail, the other calls drain for --shutdown_grace.
  void Run(const sigset_t& signals);

 private:
  explicit SidecarApp(SidecarConfig config);

  // Removes the unix socket file the sidecar served on, when it goes.
  struct SocketFile {
    std::string path;  // empty: none (TCP, or not created yet)
    ~SocketFile();
  };

  const SidecarConfig config_;
  // Declared before everything that records into it; the endpoint last (scrapes stop first).
  metrics::Registry metrics_;
  metrics::GrpcServerMetrics grpc_metrics_{metrics_};
  metrics::Family<metrics::Counter>& decisions_;
  SocketFile socket_file_;
  std::unique_ptr<TokenCache> cache_;
  std::unique_ptr<TokenCacheMetrics> cache_metrics_;
  std::unique_ptr<SidecarService> service_;
  std::unique_ptr<ExtAuthzService> ext_authz_;
  GrpcApp grpc_;
  std::unique_ptr<CacheHealth> health_;
  std::unique_ptr<metrics::MetricsEndpoint> metrics_endpoint_;
};

}  // namespace tokenstatus
