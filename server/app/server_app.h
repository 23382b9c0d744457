#pragma once

#include <signal.h>

#include <atomic>
#include <memory>

#include "absl/status/statusor.h"
#include "core/file_change_watcher.h"
#include "core/grpc_app.h"
#include "core/metrics/grpc_server_metrics.h"
#include "core/metrics/metrics_endpoint.h"
#include "core/metrics/registry.h"
#include "server/app/server_config.h"
#include "server/auth/authenticator.h"
#include "server/mirror/event_tailer.h"
#include "server/mirror/token_mirror.h"
#include "server/redis/redis_client.h"
#include "server/service/health_publisher.h"
#include "server/service/token_service.h"
#include "server/store/redis_token_store.h"
#include "server/watch/watch_hub.h"

namespace tokenstatus {

// tokenstatus-server, started and stopped as one object:
//
//   two Redis clients (the second, one connection, carries only the event tailer's blocking
//   reads) -> store -> mirror -> watch hub -> event tailer (loads the mirror, then follows the
//   event stream) -> TokenService -> gRPC servers (--listen, and --health_listen) -> the
//   credentials file watcher -> the metrics endpoint (--metrics_listen). The metrics registry
//   and its instruments come first of all.
//
// The members are declared in that order, so they are destroyed in the reverse one: the
// servers stop before the service and the tailer (the mirror's only writer) go, the tailer
// before the hub it feeds through the mirror, the hub before the mirror and the store, and the
// store before the clients. Health (HealthPublisher) outlives everything that reports to it.
class ServerApp {
 public:
  // Starts everything `config` describes. Errors: INVALID_ARGUMENT for a credentials file that
  // cannot be loaded or Redis options the client refuses (exit 2); UNAVAILABLE if a server
  // cannot listen (exit 1). Logs "listening on <host:port>" once it serves.
  static absl::StatusOr<std::unique_ptr<ServerApp>> Start(ServerConfig config);

  ServerApp(const ServerApp&) = delete;
  ServerApp& operator=(const ServerApp&) = delete;

  // Serves until SIGTERM or SIGINT (among `signals`): watch streams end with UNAVAILABLE,
  // health turns NOT_SERVING, the other calls drain for --shutdown_grace. SIGHUP, and a change
  // of the credentials file's contents, reload the credentials (a file that does not load
  // keeps the old ones).
  void Run(const sigset_t& signals);

 private:
  explicit ServerApp(ServerConfig config);

  // With --metrics_listen: the mirror's gauges read at scrape time, the process metrics, and
  // the endpoint. UNAVAILABLE if it cannot listen. Without, nothing is recorded at all (the
  // instruments exist, but no component is given them): metrics cost nothing when off.
  absl::Status StartMetrics();
  bool metrics_on() const { return !config_.metrics_listen.empty(); }

  // Loads --credentials_file into authenticator_ (nothing to do without one). `reload` is the
  // reload's number (0 at start, where a bad file is an error), `cause` what triggered it.
  bool LoadCredentials(int reload, absl::string_view cause);

  // The hub as the mirror's listener, unsubscribed when this goes (before the hub does).
  struct HubSubscription {
    TokenMirror* mirror = nullptr;
    ~HubSubscription() {
      if (mirror != nullptr) mirror->SetListener(nullptr);
    }
  };

  const ServerConfig config_;
  // Declared before everything that records into it; MetricsEndpoint (which reads the
  // components at scrape time) last, so scrapes stop first.
  metrics::Registry metrics_;
  metrics::GrpcServerMetrics grpc_metrics_{metrics_};
  RedisMetrics redis_metrics_{metrics_};
  ChangeMetrics change_metrics_{metrics_};
  WatchMetrics watch_metrics_{metrics_};
  Authenticator authenticator_;
  HealthPublisher health_;
  std::atomic<int> reloads_ = 0;
  std::unique_ptr<RedisClient> client_;
  std::unique_ptr<RedisClient> blocking_client_;
  std::unique_ptr<RedisTokenStore> store_;
  std::unique_ptr<TokenMirror> mirror_;
  std::unique_ptr<WatchHub> hub_;
  HubSubscription hub_subscription_;
  std::unique_ptr<EventTailer> tailer_;
  std::unique_ptr<TokenServiceImpl> service_;
  GrpcApp grpc_;
  std::unique_ptr<FileChangeWatcher> credentials_watcher_;
  std::unique_ptr<metrics::MetricsEndpoint> metrics_endpoint_;
};

}  // namespace tokenstatus
