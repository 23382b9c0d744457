#include "core/metrics/metrics_endpoint.h"

#include <httplib.h>

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/log.h"
#include "core/status_util.h"

namespace tokenstatus::metrics {
namespace {

constexpr char kContentType[] = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(const std::string& address,
                                                                        Registry& registry) {
  const size_t colon = address.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return MakeError(absl::StatusCode::kInvalidArgument, reason::kInvalidArgument,
                     absl::StrCat("--metrics_listen must be host:port, got \"", address, "\""));
  }
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }

  auto server = std::make_unique<httplib::Server>();
  server->new_task_queue = [] { return new httplib::ThreadPool(2); };
  server->set_read_timeout(5, 0);
  server->set_write_timeout(5, 0);
  server->set_keep_alive_timeout(5);
  server->set_payload_max_length(8 * 1024);
  server->Get("/metrics", [&registry](const httplib::Request&, httplib::Response& response) {
    response.set_content(registry.Render(), kContentType);
  });
  // Any other method on /metrics: 405 (cpp-httplib answers unknown paths with 404).
  auto not_allowed = [](const httplib::Request&, httplib::Response& response) {
    response.status = 405;
    response.set_header("Allow", "GET");
  };
  server->Post("/metrics", not_allowed);
  server->Put("/metrics", not_allowed);
  server->Delete("/metrics", not_allowed);
  server->Patch("/metrics", not_allowed);

  const int bound = port == 0 ? server->bind_to_any_port(host) : port;
  if (bound < 0 || (port != 0 && !server->bind_to_port(host, port))) {
    Log(LogLevel::kError, absl::StrCat("event=listen_failed metrics_listen=", address));
    return MakeError(absl::StatusCode::kUnavailable, reason::kInternal,
                     absl::StrCat("cannot listen on --metrics_listen=", address));
  }
  std::unique_ptr<MetricsEndpoint> endpoint(new MetricsEndpoint(std::move(server), bound));
  Log(LogLevel::kInfo, absl::StrCat("event=metrics_listening address=", host, ":", bound));
  return endpoint;
}

MetricsEndpoint::MetricsEndpoint(std::unique_ptr<httplib::Server> server, int port)
    : server_(std::move(server)), port_(port) {
  thread_ = std::thread([this] {
    if (!server_->listen_after_bind()) {
      Log(LogLevel::kError, absl::StrCat("event=metrics_endpoint_failed port=", port_));
    }
    listen_returned_ = true;
  });
}

MetricsEndpoint::~MetricsEndpoint() {
  // listen_after_bind marks the server running first thing; stop() before that would be lost.
  while (!server_->is_running() && !listen_returned_) std::this_thread::yield();
  server_->stop();
  thread_.join();
}

}  // namespace tokenstatus::metrics
