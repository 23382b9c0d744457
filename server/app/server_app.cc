#include "server/app/server_app.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/log.h"
#include "core/metrics/process_metrics.h"
#include "core/status_util.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpc/grpc.h"
#include "grpc/health/v1/health.pb.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"
#include "server/auth/credential_table.h"

namespace tokenstatus {
namespace {

// The host part of "host:port" (validated by LoadServerConfig).
std::string HostOf(const std::string& listen) { return listen.substr(0, listen.rfind(':')); }

// TLS (mutual with a client CA) or plaintext, as `access` says. With a reload_check_interval
// the certificate, key and client CA are read from their files again when they change (gRPC's
// file watcher: new handshakes use the new ones); `access`'s PEM contents were checked at start.
std::shared_ptr<grpc::ServerCredentials> TransportCredentials(const AccessConfig& access) {
  if (access.tls_cert_pem.empty()) return grpc::InsecureServerCredentials();
  const grpc_ssl_client_certificate_request_type request_type =
      access.tls_client_ca_pem.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                       : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  if (access.reload_check_interval == absl::ZeroDuration()) {
    grpc::SslServerCredentialsOptions options(request_type);
    options.pem_root_certs = access.tls_client_ca_pem;
    options.pem_key_cert_pairs.push_back({access.tls_key_pem, access.tls_cert_pem});
    return grpc::SslServerCredentials(options);
  }
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      access.tls_key_file, access.tls_cert_file, access.tls_client_ca_file,
      static_cast<unsigned int>(absl::ToInt64Seconds(access.reload_check_interval)));
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (!access.tls_client_ca_file.empty()) options.watch_root_certs();
  options.set_cert_request_type(request_type);
  return grpc::experimental::TlsServerCredentials(options);
}

absl::Status BadConfig(absl::string_view message) {
  return MakeError(absl::StatusCode::kInvalidArgument, reason::kInvalidArgument, message);
}

}  // namespace

ServerApp::ServerApp(ServerConfig config)
    : config_(std::move(config)),
      authenticator_(config_.access.allow_unauthenticated),
      health_(config_.redis_outage_grace),
      grpc_(config_.shutdown_grace) {}

absl::StatusOr<std::unique_ptr<ServerApp>> ServerApp::Start(ServerConfig config) {
  std::unique_ptr<ServerApp> app(new ServerApp(std::move(config)));
  const ServerConfig& cfg = app->config_;
  if (!app->LoadCredentials(/*reload=*/0, "")) {
    return BadConfig("the credentials file could not be loaded (see the log)");
  }
  // Reflection describes the error details clients find in grpc-status-details-bin, and the
  // health service gRPC serves without a descriptor of its own: make sure these descriptors are
  // linked in and registered.
  google::rpc::Status::descriptor();
  google::rpc::ErrorInfo::descriptor();
  grpc::health::v1::HealthCheckRequest::descriptor();

  RedisClientOptions redis_options = cfg.redis;
  if (app->metrics_on()) redis_options.metrics = &app->redis_metrics_;
  absl::StatusOr<std::unique_ptr<RedisClient>> client = RedisClient::Start(redis_options);
  if (!client.ok()) return client.status();
  app->client_ = *std::move(client);
  app->client_->SetConnectedListener([app = app.get()](bool connected) {
    app->health_.SetRedisConnected(connected);
    app->redis_metrics_.up.Set(connected ? 1 : 0);
  });
  RedisClientOptions blocking_options = redis_options;
  blocking_options.connections = 1;
  absl::StatusOr<std::unique_ptr<RedisClient>> blocking = RedisClient::Start(blocking_options);
  if (!blocking.ok()) return blocking.status();
  app->blocking_client_ = *std::move(blocking);
  app->store_ = std::make_unique<RedisTokenStore>(*app->client_, *app->blocking_client_, cfg.store);
  app->mirror_ = std::make_unique<TokenMirror>();
  // Fires once, at the mirror's first load (or with an error when the mirror goes first).
  app->mirror_->WhenRevisionReached(0, absl::InfiniteFuture(),
                                    [health = &app->health_](absl::Status loaded) {
                                      if (loaded.ok()) health->SetMirrorLoaded();
                                    });
  app->hub_ = std::make_unique<WatchHub>(*app->mirror_, *app->store_, cfg.watch,
                                         app->metrics_on() ? &app->watch_metrics_ : nullptr);
  app->mirror_->SetListener(app->hub_.get());
  app->hub_subscription_.mirror = app->mirror_.get();
  metrics::Family<metrics::Counter>& reloads = app->metrics_.AddCounter(
      "tokenstatus_mirror_reloads_total",
      "Full reloads of the mirror from Redis after it was loaded, by why (new_epoch, "
      "revision_went_back, events_trimmed, history_diverged).",
      {"reason"});
  app->tailer_ = std::make_unique<EventTailer>(
      *app->store_, *app->mirror_,
      EventTailerOptions{.on_reload = [&reloads](absl::string_view reason) {
        reloads.With({std::string(reason)}).Increment();
      }});
  app->tailer_->Start();
  app->service_ = std::make_unique<TokenServiceImpl>(
      *app->store_, *app->mirror_, *app->hub_, app->authenticator_, TokenServiceOptions{},
      app->metrics_on() ? &app->change_metrics_ : nullptr,
      app->metrics_on() ? &app->grpc_metrics_ : nullptr);

  absl::StatusOr<GrpcApp::Listening> listening = app->grpc_.Listen(
      cfg.listen, TransportCredentials(cfg.access), "listen", [&](grpc::ServerBuilder& builder) {
        builder.RegisterService(app->service_.get());
        builder.SetMaxReceiveMessageSize(cfg.max_request_bytes);
        // HTTP/2 streams per connection: the watch streams it may hold plus room for unary calls.
        builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                                   cfg.watch.max_watchers_per_connection + 256);
        // Detect dead clients within about a minute; let clients ping every 10 s, even when idle.
        builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60 * 1000);
        builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20 * 1000);
        builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
        builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                                   10 * 1000);
      });
  if (!listening.ok()) return listening.status();
  app->health_.Attach(listening->server->GetHealthCheckService());
  Log(LogLevel::kInfo, absl::StrCat("listening on ", HostOf(cfg.listen), ":", listening->port));
  // Health only, in plaintext, for probes that cannot speak TLS: it tells nothing but
  // SERVING / NOT_SERVING.
  if (!cfg.health_listen.empty()) {
    absl::StatusOr<GrpcApp::Listening> health =
        app->grpc_.Listen(cfg.health_listen, grpc::InsecureServerCredentials(), "health_listen",
                          [](grpc::ServerBuilder&) {});
    if (!health.ok()) return health.status();
    if (health->server->GetHealthCheckService() == nullptr) {
      return MakeError(absl::StatusCode::kUnavailable, reason::kInternal,
                       "the --health_listen server has no health service");
    }
    app->health_.Attach(health->server->GetHealthCheckService());
    Log(LogLevel::kInfo, absl::StrCat("event=health_listening address=", HostOf(cfg.health_listen),
                                      ":", health->port));
  }
  // The credentials are reloaded on SIGHUP (Run) and when the file's contents change.
  if (!cfg.access.credentials_file.empty() &&
      cfg.access.reload_check_interval != absl::ZeroDuration()) {
    app->credentials_watcher_ = std::make_unique<FileChangeWatcher>(
        cfg.access.credentials_file, cfg.access.reload_check_interval,
        [app = app.get()] { app->LoadCredentials(++app->reloads_, "file_changed"); });
  }
  if (absl::Status status = app->StartMetrics(); !status.ok()) return status;
  return app;
}

absl::Status ServerApp::StartMetrics() {
  if (!metrics_on()) return absl::OkStatus();
  metrics::AddProcessMetrics(metrics_, "tokenstatus-server");
  metrics::Gauge& revision =
      metrics_.AddGauge("tokenstatus_mirror_revision", "The newest revision the mirror applied.")
          .Get();
  metrics::Gauge& loaded =
      metrics_.AddGauge("tokenstatus_mirror_loaded", "1 once the mirror has loaded.").Get();
  metrics::Family<metrics::Gauge>& tokens =
      metrics_.AddGauge("tokenstatus_mirror_tokens", "Tokens in the mirror, by state.", {"state"});
  metrics::Gauge& lag = metrics_
                            .AddGauge("tokenstatus_mirror_lag_seconds",
                                      "Now less the commit time of the newest change the mirror "
                                      "applied (grows while nothing changes).")
                            .Get();
  metrics_.OnScrape([this, &revision, &loaded, &tokens, &lag] {
    const TokenMirror::Stats stats = mirror_->stats();
    loaded.Set(stats.revision >= 0 ? 1 : 0);
    revision.Set(static_cast<double>(std::max<int64_t>(stats.revision, 0)));
    tokens.With({"active"}).Set(static_cast<double>(stats.tokens_by_state[Token::STATE_ACTIVE]));
    tokens.With({"disabled"})
        .Set(static_cast<double>(stats.tokens_by_state[Token::STATE_DISABLED]));
    tokens.With({"deleted"}).Set(static_cast<double>(stats.tokens_by_state[Token::STATE_DELETED]));
    lag.Set(stats.newest_commit == absl::InfinitePast()
                ? 0
                : absl::ToDoubleSeconds(absl::Now() - stats.newest_commit));
  });
  absl::StatusOr<std::unique_ptr<metrics::MetricsEndpoint>> endpoint =
      metrics::MetricsEndpoint::Start(config_.metrics_listen, metrics_);
  if (!endpoint.ok()) return endpoint.status();
  metrics_endpoint_ = *std::move(endpoint);
  return absl::OkStatus();
}

void ServerApp::Run(const sigset_t& signals) {
  grpc_.Serve(signals, {.on_reload = [this] { LoadCredentials(++reloads_, "sighup"); },
                        .on_stop =
                            [this] {
                              health_.Detach();
                              // Watch streams never end by themselves: end them now
                              // (UNAVAILABLE, "resume elsewhere"); the other calls get the
                              // grace period.
                              hub_->Shutdown();
                            }});
}

// A file without a credential is bad unless --allow_empty_credentials_file: it would lock
// everyone out (a truncated or half-written file).
bool ServerApp::LoadCredentials(int reload, absl::string_view cause) {
  const AccessConfig& access = config_.access;
  if (access.credentials_file.empty()) return true;
  absl::StatusOr<CredentialTable> table = CredentialTable::Load(access.credentials_file);
  if (table.ok() && table->size() == 0 && !access.allow_empty_credentials_file) {
    table = MakeError(absl::StatusCode::kFailedPrecondition, reason::kInvalidCredentialsFile,
                      "the credentials file holds no credential, which would lock every caller "
                      "out (--allow_empty_credentials_file accepts that)");
  }
  const std::string event =
      reload == 0 ? "event=credentials_loaded"
                  : absl::StrCat("event=credentials_reloaded reload=", reload, " cause=", cause);
  if (!table.ok()) {
    Log(LogLevel::kError,
        absl::StrCat(reload == 0 ? "event=credentials_not_loaded"
                                 : absl::StrCat("event=credentials_not_reloaded reload=", reload,
                                                " cause=", cause),
                     " file=", access.credentials_file, " error=\"", table.status().message(), "\"",
                     reload == 0 ? "" : " kept=previous"));
    return false;
  }
  const size_t credentials = table->size();
  // Installed before it is logged: a call that follows the log line uses the new credentials.
  authenticator_.SetCredentials(std::make_shared<const CredentialTable>(*std::move(table)));
  Log(LogLevel::kInfo,
      absl::StrCat(event, " file=", access.credentials_file, " credentials=", credentials));
  return true;
}

}  // namespace tokenstatus
