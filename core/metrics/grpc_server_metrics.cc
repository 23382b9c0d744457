#include "core/metrics/grpc_server_metrics.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "core/grpc_status.h"
#include "core/status_util.h"
#include "google/protobuf/descriptor.h"
#include "grpcpp/support/interceptor.h"

namespace tokenstatus::metrics {
namespace {

using grpc::experimental::InterceptionHookPoints;

// Go's names of the codes (google.golang.org/grpc/codes), as dashboards expect them.
constexpr std::array<const char*, 17> kCodeNames = {
    "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
    "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
    "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
    "DataLoss", "Unauthenticated"};

const char* TypeName(grpc::experimental::ServerRpcInfo::Type type) {
  using Type = grpc::experimental::ServerRpcInfo::Type;
  switch (type) {
    case Type::UNARY:
      return "unary";
    case Type::CLIENT_STREAMING:
      return "client_stream";
    case Type::SERVER_STREAMING:
      return "server_stream";
    case Type::BIDI_STREAMING:
      return "bidi_stream";
  }
  return "unknown";
}

// One call: started when gRPC creates it, finished when its status is sent.
class CallInterceptor : public grpc::experimental::Interceptor {
 public:
  CallInterceptor(GrpcServerMetrics& metrics, GrpcServerMetrics::Method& method)
      : metrics_(metrics), method_(method), started_(absl::Now()) {
    method_.started->Increment();
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      metrics_.Finish(method_, methods->GetSendStatus(), started_);
    }
    methods->Proceed();
  }

 private:
  GrpcServerMetrics& metrics_;
  GrpcServerMetrics::Method& method_;
  const absl::Time started_;
};

class InterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit InterceptorFactory(GrpcServerMetrics& metrics) : metrics_(metrics) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new CallInterceptor(metrics_, metrics_.ForMethod(info->method(), info->type()));
  }

 private:
  GrpcServerMetrics& metrics_;
};

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
      refused_(registry.AddCounter(
          "tokenstatus_calls_refused_total",
          "Calls that ended with an error carrying a google.rpc.ErrorInfo, by its reason.",
          {"grpc_method", "reason"})) {}

std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
GrpcServerMetrics::InterceptorCreators() {
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
  creators.push_back(std::make_unique<InterceptorFactory>(*this));
  return creators;
}

GrpcServerMetrics::Method& GrpcServerMetrics::ForMethod(
    const char* full_method, grpc::experimental::ServerRpcInfo::Type type) {
  const std::string key =
      absl::StrCat(static_cast<int>(type), full_method == nullptr ? "" : full_method);
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = methods_.find(key);
    if (it != methods_.end()) return *it->second;
  }
  // "/pkg.Service/Method", known to this process's descriptors, or "unknown".
  std::string service = "unknown";
  std::string name = "unknown";
  const std::vector<std::string> parts =
      absl::StrSplit(full_method == nullptr ? "" : full_method, '/');
  if (parts.size() == 3 && parts[0].empty() &&
      google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
          absl::StrCat(parts[1], ".", parts[2])) != nullptr) {
    service = parts[1];
    name = parts[2];
  }
  absl::MutexLock lock(&mu_);
  std::unique_ptr<Method>& method = methods_[key];
  if (method == nullptr) {
    method = std::make_unique<Method>();
    method->name = name;
    method->labels = {TypeName(type), service, name};
    method->started = &started_.With(method->labels);
    method->handling = &handling_.With(method->labels);
  }
  return *method;
}

void GrpcServerMetrics::Finish(Method& method, const grpc::Status& status, absl::Time started) {
  method.handling->ObserveSeconds(absl::Now() - started);
  const int code = static_cast<int>(status.error_code());
  const size_t index = code >= 0 && code < 17 ? code : 2;  // anything else counts as Unknown
  Counter* handled = method.handled[index].load(std::memory_order_acquire);
  if (handled == nullptr) {
    std::vector<std::string> labels = method.labels;
    labels.push_back(kCodeNames[index]);
    handled = &handled_.With(labels);  // the same counter, whichever thread gets here first
    method.handled[index].store(handled, std::memory_order_release);
  }
  handled->Increment();
  if (!status.ok() && !status.error_details().empty()) {
    refused_.With({method.name, ErrorReason(FromGrpcStatus(status))}).Increment();
  }
}

}  // namespace tokenstatus::metrics
