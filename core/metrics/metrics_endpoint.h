#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "core/metrics/registry.h"

namespace httplib {
class Server;
}

namespace tokenstatus::metrics {

// The plain-HTTP endpoint Prometheus scrapes: GET /metrics answers the registry's rendering
// (Content-Type: text/plain; version=0.0.4); every other path is 404, every other method 405.
// Served by cpp-httplib on two threads of its own (never a gRPC thread); a scrape takes only
// the registry's locks, which no call path holds for long. Connections idle for 5 s, or that
// send more than 8 KiB of request, are closed.
//
// The registry must outlive the endpoint. Thread-safe; the destructor stops serving and
// waits for a scrape in progress.
class MetricsEndpoint {
 public:
  // Listens on `address` ("host:port", "[v6]:port"; port 0 picks one). UNAVAILABLE if it
  // cannot bind (logged as event=listen_failed metrics_listen=<address>), INVALID_ARGUMENT for
  // an address without a port.
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(const std::string& address,
                                                                Registry& registry);
  ~MetricsEndpoint();

  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  int port() const { return port_; }

 private:
  MetricsEndpoint(std::unique_ptr<httplib::Server> server, int port);

  const std::unique_ptr<httplib::Server> server_;
  const int port_;
  std::atomic<bool> listen_returned_ = false;
  std::thread thread_;
};

}  // namespace tokenstatus::metrics
