// tokenstatus-server: the TokenService over Redis, with health checking and reflection.
//
// Start-up: flags (with TOKENSTATUS_* environment fallbacks) -> two Redis clients (connect and
// reconnect by themselves; the second, one connection, carries only the event tailer's
// blocking reads) -> token mirror, watch hub, event tailer (loads the mirror, then follows the
// event stream) -> gRPC server. Redis is --redis, or the primary that --redis_sentinels name
// (followed across failovers). Health ("" and apitoken.v1.TokenService): HealthPublisher
// (SERVING once the mirror has loaded, while Redis is reachable or has not been for more than
// --redis_outage_grace). SIGTERM/SIGINT: watch streams end with UNAVAILABLE (clients resume
// elsewhere), the other calls drain for --shutdown_grace, then the tailer, the store and Redis
// stop; exit 0. SIGHUP, and a change of its contents
// (checked every --reload_check_interval), reload --credentials_file (a file that does not
// parse, or holds no credential without --allow_empty_credentials_file, keeps the old
// credentials); changed TLS files are picked up by new handshakes. --help prints the flags and
// exits 0. Exit 2 for an invalid configuration, 1 if the server cannot listen.

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "apitoken/v1/token_service.grpc.pb.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpc/grpc.h"
#include "grpc/health/v1/health.pb.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "server/auth/authenticator.h"
#include "server/auth/credential_table.h"
#include "server/common/file_change_watcher.h"
#include "server/common/flag_sources.h"
#include "server/common/log.h"
#include "server/common/process_signals.h"
#include "server/common/status_util.h"
#include "server/redis/redis_client.h"
#include "server/service/health_publisher.h"
#include "server/service/server_config.h"
#include "server/service/token_service.h"
#include "server/store/redis_token_store.h"
#include "server/watch/event_tailer.h"
#include "server/watch/token_mirror.h"
#include "server/watch/watch_hub.h"

namespace tokenstatus {
namespace {

constexpr int kExitBadConfig = 2;
constexpr int kExitCannotServe = 1;

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

// Loads --credentials_file into `authenticator` (nothing to do without one). `reload`: the
// number of the reload (SIGHUP or a change of the file's contents, as `cause` says), 0 at start,
// where a bad file is fatal; on a reload it is logged and the old credentials stay. A file
// without a credential is bad unless --allow_empty_credentials_file: it would lock everyone out
// (a truncated or half-written file).
bool LoadCredentials(const AccessConfig& access, Authenticator& authenticator, int reload,
                     absl::string_view cause = "") {
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
  authenticator.SetCredentials(std::make_shared<const CredentialTable>(*std::move(table)));
  Log(LogLevel::kInfo,
      absl::StrCat(event, " file=", access.credentials_file, " credentials=", credentials));
  return true;
}

int Run(int argc, char** argv, const sigset_t& handled_signals) {
  absl::SetProgramUsageMessage(
      "Serves apitoken.v1.TokenService over Redis. Flags fall back to TOKENSTATUS_<FLAG> "
      "environment variables; the Redis password comes from --redis_password_file or "
      "TOKENSTATUS_REDIS_PASSWORD, the sentinels' from --redis_sentinel_password_file or "
      "TOKENSTATUS_REDIS_SENTINEL_PASSWORD.");
  if (HelpRequested(argc, argv)) {
    std::cout << absl::ProgramUsageMessage() << "\n\nFlags:\n" << ServerFlagsHelp();
    return 0;
  }
  absl::Status flags = ApplyEnvironmentDefaults();
  if (flags.ok()) flags = CheckCommandLineValues(argc, argv);
  if (!flags.ok()) {
    std::cerr << "tokenstatus-server: " << flags.message() << "\n";
    return kExitBadConfig;
  }
  absl::ParseCommandLine(argc, argv);
  absl::StatusOr<ServerConfig> config = LoadServerConfig();
  if (!config.ok()) {
    std::cerr << "tokenstatus-server: " << config.status().message() << "\n";
    return kExitBadConfig;
  }
  Log(LogLevel::kInfo, DescribeConfig(*config));
  if (config->access.allow_unauthenticated) {
    Log(LogLevel::kWarning,
        absl::StrCat("event=insecure_mode warning=\"--insecure_allow_unauthenticated: any "
                     "caller that reaches ",
                     config->listen,
                     " without credentials acts as anonymous with every role and may disable "
                     "every token; for development on this machine only\""));
  }
  Authenticator authenticator(config->access.allow_unauthenticated);
  if (!LoadCredentials(config->access, authenticator, /*reload=*/0)) return kExitBadConfig;

  // Reflection describes the error details clients find in grpc-status-details-bin, and the
  // health service gRPC serves without a descriptor of its own: make sure these descriptors are
  // linked in and registered.
  google::rpc::Status::descriptor();
  google::rpc::ErrorInfo::descriptor();
  grpc::health::v1::HealthCheckRequest::descriptor();

  HealthPublisher health(
      config->redis_outage_grace);  // outlives the client, whose listener refers to it
  absl::StatusOr<std::unique_ptr<RedisClient>> client = RedisClient::Start(config->redis);
  if (!client.ok()) {
    std::cerr << "tokenstatus-server: " << client.status().message() << "\n";
    return kExitBadConfig;
  }
  (*client)->SetConnectedListener(
      [&health](bool connected) { health.SetRedisConnected(connected); });
  // The event tailer's blocking reads get a connection of their own.
  RedisClientOptions blocking_options = config->redis;
  blocking_options.connections = 1;
  absl::StatusOr<std::unique_ptr<RedisClient>> blocking_client =
      RedisClient::Start(std::move(blocking_options));
  if (!blocking_client.ok()) {
    std::cerr << "tokenstatus-server: " << blocking_client.status().message() << "\n";
    return kExitBadConfig;
  }
  auto store = std::make_unique<RedisTokenStore>(**client, **blocking_client, config->store);
  auto mirror = std::make_unique<TokenMirror>();
  // Fires once, at the mirror's first load (or with an error when the mirror goes first).
  mirror->WhenRevisionReached(0, absl::InfiniteFuture(), [&health](absl::Status loaded) {
    if (loaded.ok()) health.SetMirrorLoaded();
  });
  auto hub = std::make_unique<WatchHub>(*mirror, *store, config->watch);
  mirror->SetListener(hub.get());
  auto tailer = std::make_unique<EventTailer>(*store, *mirror);
  tailer->Start();
  TokenServiceImpl service(*store, *mirror, *hub, authenticator);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(config->listen, TransportCredentials(config->access), &port);
  builder.RegisterService(&service);
  builder.SetMaxReceiveMessageSize(config->max_request_bytes);
  // HTTP/2 streams per connection: the watch streams it may hold plus room for unary calls.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             config->watch.max_watchers_per_connection + 256);
  // Detect dead clients within about a minute; let clients ping every 10 s, even when idle.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60 * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20 * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10 * 1000);
  // gRPC sets SO_REUSEPORT by default: a second server on a taken port would then start and
  // silently share its traffic. Fail instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    Log(LogLevel::kError, absl::StrCat("event=listen_failed listen=", config->listen));
    return kExitCannotServe;
  }
  health.Attach(server->GetHealthCheckService());
  Log(LogLevel::kInfo, absl::StrCat("listening on ", HostOf(config->listen), ":", port));
  // Health only, in plaintext, for probes that cannot speak TLS: it tells nothing but
  // SERVING / NOT_SERVING.
  std::unique_ptr<grpc::Server> health_server;
  if (!config->health_listen.empty()) {
    grpc::ServerBuilder health_builder;
    int health_port = 0;
    health_builder.AddListeningPort(config->health_listen, grpc::InsecureServerCredentials(),
                                    &health_port);
    health_builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    health_server = health_builder.BuildAndStart();
    if (health_server == nullptr || health_port == 0 ||
        health_server->GetHealthCheckService() == nullptr) {
      Log(LogLevel::kError,
          absl::StrCat("event=listen_failed health_listen=", config->health_listen));
      server->Shutdown();
      return kExitCannotServe;
    }
    health.Attach(health_server->GetHealthCheckService());
    Log(LogLevel::kInfo, absl::StrCat("event=health_listening address=",
                                      HostOf(config->health_listen), ":", health_port));
  }

  // The credentials are reloaded on SIGHUP and when the file's contents change.
  std::atomic<int> reloads = 0;
  std::unique_ptr<FileChangeWatcher> credentials_watcher;
  if (!config->access.credentials_file.empty() &&
      config->access.reload_check_interval != absl::ZeroDuration()) {
    credentials_watcher = std::make_unique<FileChangeWatcher>(
        config->access.credentials_file, config->access.reload_check_interval,
        [&] { LoadCredentials(config->access, authenticator, ++reloads, "file_changed"); });
  }
  std::thread signal_thread([&] {
    int signal_number = 0;
    while (sigwait(&handled_signals, &signal_number) == 0 && signal_number == SIGHUP) {
      LoadCredentials(config->access, authenticator, ++reloads, "sighup");
    }
    Log(LogLevel::kInfo, absl::StrCat("event=shutdown signal=", sigabbrev_np(signal_number),
                                      " grace=", absl::FormatDuration(config->shutdown_grace)));
    health.Detach();
    // Watch streams never end by themselves: end them now (UNAVAILABLE, "resume elsewhere"),
    // then give the other calls the grace period.
    hub->Shutdown();
    server->Shutdown(absl::ToChronoTime(absl::Now() + config->shutdown_grace));
    if (health_server != nullptr) health_server->Shutdown();
  });
  server->Wait();
  signal_thread.join();
  credentials_watcher.reset();
  health_server.reset();
  // Every call has finished: the tailer (the mirror's only writer), the hub, the mirror, the
  // store and then the clients can go.
  tailer.reset();
  mirror->SetListener(nullptr);
  hub.reset();
  mirror.reset();
  store.reset();
  blocking_client->reset();
  client->reset();
  Log(LogLevel::kInfo, "event=stopped");
  return 0;
}

}  // namespace
}  // namespace tokenstatus

int main(int argc, char** argv) {
  // Debian's Abseil is built without NDEBUG, so absl::Mutex (ours and gRPC's) would run its
  // deadlock detector on every lock: 5-8% of the server's CPU under load.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // SIGTERM/SIGINT stop the server, SIGHUP reloads the credentials: one thread sigwaits.
  const sigset_t handled_signals = tokenstatus::BlockSignalsForSigwait({SIGTERM, SIGINT, SIGHUP});
  return tokenstatus::Run(argc, argv, handled_signals);
}
