#include "core/metrics/grpc_server_metrics.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/status_util.h"

namespace tokenstatus::metrics {
namespace {

// Go's names of the codes (google.golang.org/grpc/codes), as dashboards expect them.
constexpr std::array<const char*, 17> kCodeNames = {
    "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
    "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
    "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
    "DataLoss", "Unauthenticated"};

const char* TypeName(GrpcServerMetrics::Type type) {
  return type == GrpcServerMetrics::Type::kUnary ? "unary" : "server_stream";
}

}  // namespace

GrpcServerMetrics::GrpcServerMetrics(Registry& registry)
    : started_(registry.AddCounter("grpc_server_started_total",
                                   "Total number of RPCs started on the server.",
                                   {"grpc_type", "grpc_service", "grpc_method"})),
      handled_(registry.AddCounter(
          "grpc_server_handled_total",
          "Total number of RPCs completed on the server, regardless of success or failure.",
          {"grpc_type", "grpc_service", "grpc_method", "grpc_code"})),
      handling_(registry.AddHistogram(
          "grpc_server_handling_seconds",
          "Histogram of response latency (seconds) of gRPC that had been application-level "
          "handled by the server.",
          {"grpc_type", "grpc_service", "grpc_method"})),
      refused_(
          registry.AddCounter("tokenstatus_calls_refused_total",
                              "Calls that ended with an error, by its google.rpc.ErrorInfo reason.",
                              {"grpc_method", "reason"})) {}

GrpcServerMetrics::Method& GrpcServerMetrics::ForMethod(absl::string_view service,
                                                        absl::string_view method, Type type) {
  const std::string key = absl::StrCat(TypeName(type), "/", service, "/", method);
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = methods_.find(key);
    if (it != methods_.end()) return *it->second;
  }
  absl::MutexLock lock(&mu_);
  std::unique_ptr<Method>& entry = methods_[key];
  if (entry == nullptr) {
    entry = std::make_unique<Method>();
    entry->name = std::string(method);
    entry->labels = {TypeName(type), std::string(service), std::string(method)};
    entry->started = &started_.With(entry->labels);
    entry->handling = &handling_.With(entry->labels);
  }
  return *entry;
}

void GrpcServerMetrics::Finish(Method& method, const absl::Status& status, absl::Time started) {
  method.handling->ObserveSeconds(absl::Now() - started);
  const int code = static_cast<int>(status.code());
  const size_t index = code >= 0 && code < 17 ? code : 2;  // anything else counts as Unknown
  Counter* handled = method.handled[index].load(std::memory_order_acquire);
  if (handled == nullptr) {
    std::vector<std::string> labels = method.labels;
    labels.push_back(kCodeNames[index]);
    handled = &handled_.With(labels);  // the same counter, whichever thread gets here first
    method.handled[index].store(handled, std::memory_order_release);
  }
  handled->Increment();
  if (!status.ok()) refused_.With({method.name, ErrorReason(status)}).Increment();
}

CallMetrics::CallMetrics(GrpcServerMetrics* metrics, absl::string_view service,
                         absl::string_view method, GrpcServerMetrics::Type type)
    : metrics_(metrics) {
  if (metrics_ == nullptr) return;
  method_ = &metrics_->ForMethod(service, method, type);
  started_ = absl::Now();
  method_->started->Increment();
}

CallMetrics::CallMetrics(CallMetrics&& other) noexcept
    : metrics_(std::exchange(other.metrics_, nullptr)),
      method_(std::exchange(other.method_, nullptr)),
      started_(other.started_) {}

CallMetrics& CallMetrics::operator=(CallMetrics&& other) noexcept {
  metrics_ = std::exchange(other.metrics_, nullptr);
  method_ = std::exchange(other.method_, nullptr);
  started_ = other.started_;
  return *this;
}

void CallMetrics::Finish(const absl::Status& status) {
  if (metrics_ == nullptr) return;
  metrics_->Finish(*method_, status, started_);
  metrics_ = nullptr;
}

}  // namespace tokenstatus::metrics
