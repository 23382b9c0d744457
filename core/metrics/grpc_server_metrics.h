#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/metrics/registry.h"

namespace tokenstatus::metrics {

// The gRPC server metrics of go-grpc-prometheus and etcd, for the RPCs of this code's services:
//
//   grpc_server_started_total{grpc_type, grpc_service, grpc_method}
//   grpc_server_handled_total{grpc_type, grpc_service, grpc_method, grpc_code}
//   grpc_server_handling_seconds{grpc_type, grpc_service, grpc_method}  (histogram)
//   tokenstatus_calls_refused_total{grpc_method, reason}  (every error, by its ErrorInfo reason)
//
// grpc_code is spelled as Go spells it ("OK", "PermissionDenied", "Unavailable"); grpc_type is
// unary or server_stream. Recorded by the call pipeline (core/unary_call.h) and the watch
// streams, where each call starts and ends, rather than by a gRPC interceptor: an interceptor
// runs on every message of every stream, and the fan-out writes thousands of those per change.
// Method names come from the code, never from the caller.
//
// Must outlive every CallMetrics made from it. Thread-safe; a call costs one lookup under a
// reader lock and a few relaxed atomic adds.
class GrpcServerMetrics {
 public:
  enum class Type { kUnary, kServerStream };

  explicit GrpcServerMetrics(Registry& registry);

  GrpcServerMetrics(const GrpcServerMetrics&) = delete;
  GrpcServerMetrics& operator=(const GrpcServerMetrics&) = delete;

  // The instruments of one method (created at its first call).
  struct Method {
    std::string name;  // grpc_method, for tokenstatus_calls_refused_total
    Counter* started = nullptr;
    Histogram* handling = nullptr;
    std::array<std::atomic<Counter*>, 17> handled{};  // by absl/gRPC code, created at first use
    std::vector<std::string> labels;                  // grpc_type, grpc_service, grpc_method
  };
  // `service` is the full service name ("apitoken.v1.TokenService"), `method` the RPC's.
  Method& ForMethod(absl::string_view service, absl::string_view method, Type type);
  // Records the end of a call of `method` that started at `started`, with `status`.
  void Finish(Method& method, const absl::Status& status, absl::Time started);

 private:
  Family<Counter>& started_;
  Family<Counter>& handled_;
  Family<Histogram>& handling_;
  Family<Counter>& refused_;
  absl::Mutex mu_;
  // Keyed by "<type>/<service>/<method>".
  absl::flat_hash_map<std::string, std::unique_ptr<Method>> methods_ ABSL_GUARDED_BY(mu_);
};

// One call being measured: counted as started when made, recorded once by Finish. A
// default-constructed one records nothing (metrics off). Move-only.
class CallMetrics {
 public:
  CallMetrics() = default;
  // Starts a call of `method` of `metrics` (which may be null: records nothing).
  CallMetrics(GrpcServerMetrics* metrics, absl::string_view service, absl::string_view method,
              GrpcServerMetrics::Type type);
  CallMetrics(CallMetrics&& other) noexcept;
  CallMetrics& operator=(CallMetrics&& other) noexcept;
  CallMetrics(const CallMetrics&) = delete;
  CallMetrics& operator=(const CallMetrics&) = delete;
  ~CallMetrics() = default;

  // Records the call's end with `status`; later calls do nothing.
  void Finish(const absl::Status& status);

 private:
  GrpcServerMetrics* metrics_ = nullptr;
  GrpcServerMetrics::Method* method_ = nullptr;
  absl::Time started_;
};

}  // namespace tokenstatus::metrics
