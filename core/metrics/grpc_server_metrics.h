#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "core/metrics/registry.h"
#include "grpcpp/support/server_interceptor.h"

namespace tokenstatus::metrics {

// The gRPC server metrics of go-grpc-prometheus and etcd, recorded by a server interceptor, so
// every RPC of a server (unary and streaming, refused or not) is counted in one place:
//
//   grpc_server_started_total{grpc_type, grpc_service, grpc_method}
//   grpc_server_handled_total{grpc_type, grpc_service, grpc_method, grpc_code}
//   grpc_server_handling_seconds{grpc_type, grpc_service, grpc_method}  (histogram)
//   tokenstatus_calls_refused_total{grpc_method, reason}  (errors carrying an ErrorInfo)
//
// grpc_code is spelled as Go spells it ("OK", "PermissionDenied", "Unavailable"), grpc_type is
// unary, client_stream, server_stream or bidi_stream. A method this process has no descriptor
// for (a client calling a made-up name) is counted as service and method "unknown", so no
// caller can grow the label sets.
//
//   GrpcServerMetrics metrics(registry);
//   builder.experimental().SetInterceptorCreators(metrics.InterceptorCreators());
//
// Must outlive the servers it is installed in. Thread-safe; a call costs a lookup under a
// reader lock and a few relaxed atomic adds.
class GrpcServerMetrics {
 public:
  explicit GrpcServerMetrics(Registry& registry);

  GrpcServerMetrics(const GrpcServerMetrics&) = delete;
  GrpcServerMetrics& operator=(const GrpcServerMetrics&) = delete;

  // For ServerBuilder::experimental().SetInterceptorCreators (one vector per server).
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
  InterceptorCreators();

  // The instruments of one method of one type (created at its first call).
  struct Method {
    std::string name;  // grpc_method, for tokenstatus_calls_refused_total
    Counter* started = nullptr;
    Histogram* handling = nullptr;
    std::array<std::atomic<Counter*>, 17> handled{};  // by grpc::StatusCode, created at first use
    std::vector<std::string> labels;                  // grpc_type, grpc_service, grpc_method
  };
  Method& ForMethod(const char* full_method, grpc::experimental::ServerRpcInfo::Type type);
  // Records the end of a call of `method` that started at `started`.
  void Finish(Method& method, const grpc::Status& status, absl::Time started);

 private:
  Family<Counter>& started_;
  Family<Counter>& handled_;
  Family<Histogram>& handling_;
  Family<Counter>& refused_;
  absl::Mutex mu_;
  // Keyed by type and full method name ("0/pkg.Service/Method").
  absl::flat_hash_map<std::string, std::unique_ptr<Method>> methods_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tokenstatus::metrics
