#include "tests/bench/load_generator.h"

#include <chrono>
#include <functional>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "apitoken/v1/token_service.grpc.pb.h"
#include "core/status_util.h"
#include "envoy/service/auth/v3/external_auth.grpc.pb.h"
#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"
#include "grpc/grpc.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/completion_queue.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/async_unary_call.h"
#include "grpcpp/support/channel_arguments.h"
#include "tests/bench/latency_samples.h"
#include "tests/testing/process_usage.h"

namespace tokenstatus::bench {
namespace {

using apitoken::v1::TokenService;
using Clock = std::chrono::steady_clock;

// ErrorInfo reasons of the load generator's own failures.
constexpr char kTargetUnreachable[] = "TARGET_UNREACHABLE";
constexpr char kSetupFailed[] = "LOAD_SETUP_FAILED";

// The measured window; completions inside it are counted.
struct Window {
  Clock::time_point start;
  Clock::time_point end;

  bool Contains(Clock::time_point t) const { return t >= start && t < end; }
};

// The buffers of one unary RPC type: the request (built once), the response and the reader.
template <typename Request, typename Response>
struct UnaryCall {
  Request request;
  Response response;
  std::unique_ptr<grpc::ClientAsyncResponseReader<Response>> reader;
};

// The stubs of one channel; each mode calls one of them.
struct ChannelStubs {
  std::unique_ptr<TokenService::Stub> tokens;
  std::unique_ptr<etcdserverpb::KV::Stub> kv;
  std::unique_ptr<envoy::service::auth::v3::Authorization::Stub> authz;
};

// One in-flight RPC at a time. Its completion-queue thread is the only thread that touches it
// once the load has started.
class Slot {
 public:
  // `slot_key` is what the slot's calls address: its token id (get, toggle), its token's secret
  // (verify, check), its etcd key (etcd-range) or the prefix of the etcd keys it puts
  // (etcd-put); create does not use it.
  Slot(const ChannelStubs& stubs, grpc::CompletionQueue* cq, int index, const std::string& slot_key,
       const LoadOptions& options)
      : stubs_(stubs),
        cq_(cq),
        mode_(options.mode),
        rpc_timeout_(absl::ToChronoNanoseconds(options.rpc_timeout)),
        put_prefix_(slot_key) {
    get_.request.set_token_id(slot_key);
    disable_.request.set_token_id(slot_key);
    disable_.request.set_reason("load test");
    enable_.request.set_token_id(slot_key);
    enable_.request.set_reason("load test");
    create_.request.set_account_id(options.account_id);
    create_.request.set_name(absl::StrCat("load test slot ", index));
    range_.request.set_key(slot_key);
    put_.request.set_value(std::string(kEtcdValueBytes, 'v'));
    verify_.request.set_secret(slot_key);
    auto* http = check_.request.mutable_attributes()->mutable_request()->mutable_http();
    http->set_method("GET");
    http->set_path("/v1/things");
    (*http->mutable_headers())["authorization"] = absl::StrCat("Bearer ", slot_key);
  }

  // Issues the next RPC; its completion is delivered on the completion queue with tag `this`.
  void Start() {
    context_ = std::make_unique<grpc::ClientContext>();
    context_->set_deadline(std::chrono::system_clock::now() + rpc_timeout_);
    started_ = Clock::now();
    switch (mode_) {
      case LoadMode::kGet:
        Issue(*stubs_.tokens, get_, &TokenService::Stub::PrepareAsyncGetToken);
        break;
      case LoadMode::kToggle:
        if (disable_next_) {
          Issue(*stubs_.tokens, disable_, &TokenService::Stub::PrepareAsyncDisableToken);
        } else {
          Issue(*stubs_.tokens, enable_, &TokenService::Stub::PrepareAsyncEnableToken);
        }
        break;
      case LoadMode::kCreate:
        Issue(*stubs_.tokens, create_, &TokenService::Stub::PrepareAsyncCreateToken);
        break;
      case LoadMode::kEtcdRange:
        Issue(*stubs_.kv, range_, &etcdserverpb::KV::Stub::PrepareAsyncRange);
        break;
      case LoadMode::kEtcdPut:
        put_.request.set_key(absl::StrCat(put_prefix_, puts_++));
        Issue(*stubs_.kv, put_, &etcdserverpb::KV::Stub::PrepareAsyncPut);
        break;
      case LoadMode::kVerify:
        Issue(*stubs_.tokens, verify_, &TokenService::Stub::PrepareAsyncVerifyToken);
        break;
      case LoadMode::kCheck:
        Issue(*stubs_.authz, check_,
              &envoy::service::auth::v3::Authorization::Stub::PrepareAsyncCheck);
        break;
    }
  }

  // Called once the RPC issued by Start() has completed. Returns its status (NOT_FOUND for a
  // Range that found no key, FAILED_PRECONDITION for a verify or check that did not find the
  // token valid); a successful toggle call flips the next call (a failed one is retried as is).
  const grpc::Status& Finish() {
    if (status_.ok() && mode_ == LoadMode::kToggle) disable_next_ = !disable_next_;
    if (status_.ok() && mode_ == LoadMode::kEtcdRange && range_.response.kvs_size() == 0) {
      status_ = grpc::Status(grpc::StatusCode::NOT_FOUND,
                             absl::StrCat("etcd has no key ", range_.request.key()));
    }
    if (status_.ok() && mode_ == LoadMode::kVerify &&
        verify_.response.result() != apitoken::v1::VerifyTokenResponse::RESULT_VALID) {
      status_ = grpc::Status(
          grpc::StatusCode::FAILED_PRECONDITION,
          absl::StrCat("VerifyToken: ",
                       apitoken::v1::VerifyTokenResponse::Result_Name(verify_.response.result())));
    }
    if (status_.ok() && mode_ == LoadMode::kCheck && check_.response.status().code() != 0) {
      status_ = grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                             absl::StrCat("Check denied: ", check_.response.status().message()));
    }
    return status_;
  }

  Clock::time_point started() const { return started_; }

 private:
  template <typename Stub, typename Request, typename Response, typename Prepare>
  void Issue(Stub& stub, UnaryCall<Request, Response>& call, Prepare prepare) {
    call.reader = (stub.*prepare)(context_.get(), call.request, cq_);
    call.reader->StartCall();
    call.reader->Finish(&call.response, &status_, this);
  }

  const ChannelStubs& stubs_;
  grpc::CompletionQueue* const cq_;
  const LoadMode mode_;
  const std::chrono::nanoseconds rpc_timeout_;
  const std::string put_prefix_;
  bool disable_next_ = true;  // tokens are created ACTIVE
  int64_t puts_ = 0;          // etcd-put: the number of the next key
  UnaryCall<apitoken::v1::GetTokenRequest, apitoken::v1::GetTokenResponse> get_;
  UnaryCall<apitoken::v1::DisableTokenRequest, apitoken::v1::DisableTokenResponse> disable_;
  UnaryCall<apitoken::v1::EnableTokenRequest, apitoken::v1::EnableTokenResponse> enable_;
  UnaryCall<apitoken::v1::CreateTokenRequest, apitoken::v1::CreateTokenResponse> create_;
  UnaryCall<etcdserverpb::RangeRequest, etcdserverpb::RangeResponse> range_;
  UnaryCall<etcdserverpb::PutRequest, etcdserverpb::PutResponse> put_;
  UnaryCall<apitoken::v1::VerifyTokenRequest, apitoken::v1::VerifyTokenResponse> verify_;
  UnaryCall<envoy::service::auth::v3::CheckRequest, envoy::service::auth::v3::CheckResponse> check_;
  std::unique_ptr<grpc::ClientContext> context_;
  grpc::Status status_;
  Clock::time_point started_;
};

// What one completion-queue thread measured.
struct WorkerResult {
  LatencySamples samples;
  int64_t errors = 0;
  std::string first_error;
};

// Drives `slots` (all bound to `cq`) until `window` ends: restarts each slot as soon as its RPC
// completes, records the latency of successful completions inside the window, counts failures.
// Then shuts `cq` down and drains it.
void DriveSlots(grpc::CompletionQueue* cq, const std::vector<Slot*>& slots, const Window& window,
                WorkerResult* result) {
  for (Slot* slot : slots) slot->Start();
  size_t active = slots.size();
  void* tag = nullptr;
  bool ok = false;
  while (active > 0 && cq->Next(&tag, &ok)) {
    Slot* slot = static_cast<Slot*>(tag);
    const Clock::time_point done = Clock::now();
    const grpc::Status& status = slot->Finish();
    if (!status.ok()) {
      if (result->errors++ == 0) {
        result->first_error = absl::StrCat(
            absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())), ": ",
            status.error_message());
      }
    } else if (window.Contains(done)) {
      result->samples.Add(absl::FromChrono(done - slot->started()));
    }
    if (done < window.end) {
      slot->Start();
    } else {
      --active;
    }
  }
  cq->Shutdown();
  while (cq->Next(&tag, &ok)) {
  }
}

absl::Status ValidateOptions(const LoadOptions& options) {
  if (options.concurrency < 1 || options.connections < 1 || options.threads < 1) {
    return MakeError(absl::StatusCode::kInvalidArgument, reason::kInvalidArgument,
                     "concurrency, connections and threads must be >= 1");
  }
  if (options.warmup < absl::ZeroDuration() || options.duration <= absl::ZeroDuration() ||
      options.rpc_timeout <= absl::ZeroDuration()) {
    return MakeError(absl::StatusCode::kInvalidArgument, reason::kInvalidArgument,
                     "warmup must be >= 0; duration and rpc_timeout must be > 0");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> ConnectChannels(
    const LoadOptions& options) {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < options.connections; ++i) {
    grpc::ChannelArguments args;
    // Without a local subchannel pool, channels with equal arguments share one connection.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    channels.push_back(
        grpc::CreateCustomChannel(options.target, grpc::InsecureChannelCredentials(), args));
    if (!channels.back()->WaitForConnected(std::chrono::system_clock::now() +
                                           absl::ToChronoNanoseconds(options.rpc_timeout))) {
      return MakeError(absl::StatusCode::kUnavailable, kTargetUnreachable,
                       absl::StrCat("cannot connect to ", options.target));
    }
  }
  return channels;
}

// A failed setup call as a kSetupFailed error.
absl::Status SetupFailed(const grpc::Status& status, absl::string_view call) {
  return MakeError(static_cast<absl::StatusCode>(status.error_code()), kSetupFailed,
                   absl::StrCat(call, ": ", status.error_message()));
}

// Creates one ACTIVE token per slot and returns their ids (or, with `secrets`, their secrets).
absl::StatusOr<std::vector<std::string>> CreateTokens(TokenService::Stub& stub,
                                                      const LoadOptions& options,
                                                      bool secrets = false) {
  std::vector<std::string> ids;
  for (int i = 0; i < options.concurrency; ++i) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         absl::ToChronoNanoseconds(options.rpc_timeout));
    apitoken::v1::CreateTokenRequest request;
    request.set_account_id(options.account_id);
    request.set_name(absl::StrCat("load test slot ", i));
    apitoken::v1::CreateTokenResponse response;
    const grpc::Status status = stub.CreateToken(&context, request, &response);
    if (!status.ok()) return SetupFailed(status, "CreateToken");
    ids.push_back(secrets ? response.secret() : response.token().id());
  }
  return ids;
}

// Puts each of `keys` with a kEtcdValueBytes value.
absl::Status PutKeys(etcdserverpb::KV::Stub& stub, const std::vector<std::string>& keys,
                     const LoadOptions& options) {
  for (const std::string& key : keys) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         absl::ToChronoNanoseconds(options.rpc_timeout));
    etcdserverpb::PutRequest request;
    request.set_key(key);
    request.set_value(std::string(kEtcdValueBytes, 'v'));
    etcdserverpb::PutResponse response;
    const grpc::Status status = stub.Put(&context, request, &response);
    if (!status.ok()) return SetupFailed(status, "etcd Put");
  }
  return absl::OkStatus();
}

// Waits until `stub` verifies every one of `secrets` as VALID (a sidecar's cache has them), at
// most `timeout`.
absl::Status AwaitValid(TokenService::Stub& stub, const std::vector<std::string>& secrets,
                        absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (const std::string& secret : secrets) {
    while (true) {
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(deadline));
      apitoken::v1::VerifyTokenRequest request;
      request.set_secret(secret);
      apitoken::v1::VerifyTokenResponse response;
      const grpc::Status status = stub.VerifyToken(&context, request, &response);
      if (status.ok() && response.result() == apitoken::v1::VerifyTokenResponse::RESULT_VALID) {
        break;
      }
      if (absl::Now() > deadline) {
        return MakeError(absl::StatusCode::kDeadlineExceeded, kSetupFailed,
                         "the target did not verify the new tokens in time");
      }
      absl::SleepFor(absl::Milliseconds(5));  // polling: the target announces nothing
    }
  }
  return absl::OkStatus();
}

// verify and check: one new token per slot, created at setup_target (or the target), once the
// target verifies them all; their secrets.
absl::StatusOr<std::vector<std::string>> PrepareSecrets(const ChannelStubs& stubs,
                                                        const LoadOptions& options) {
  std::unique_ptr<TokenService::Stub> setup;
  if (!options.setup_target.empty()) {
    setup = TokenService::NewStub(
        grpc::CreateChannel(options.setup_target, grpc::InsecureChannelCredentials()));
  }
  absl::StatusOr<std::vector<std::string>> secrets =
      CreateTokens(setup != nullptr ? *setup : *stubs.tokens, options, /*secrets=*/true);
  if (!secrets.ok()) return secrets.status();
  if (absl::Status status = AwaitValid(*stubs.tokens, *secrets, options.rpc_timeout);
      !status.ok()) {
    return status;
  }
  return secrets;
}

// Each slot's key (see Slot), after the setup its mode needs.
absl::StatusOr<std::vector<std::string>> PrepareSlotKeys(const ChannelStubs& stubs,
                                                         const LoadOptions& options) {
  const std::string run_prefix =
      absl::StrCat(options.etcd_prefix, absl::ToUnixMicros(absl::Now()), "/");
  std::vector<std::string> keys;
  switch (options.mode) {
    case LoadMode::kGet:
    case LoadMode::kToggle:
      return CreateTokens(*stubs.tokens, options);
    case LoadMode::kCreate:
      return std::vector<std::string>(options.concurrency);
    case LoadMode::kEtcdRange:
      for (int i = 0; i < options.concurrency; ++i) keys.push_back(absl::StrCat(run_prefix, i));
      if (absl::Status status = PutKeys(*stubs.kv, keys, options); !status.ok()) return status;
      return keys;
    case LoadMode::kEtcdPut:
      for (int i = 0; i < options.concurrency; ++i) {
        keys.push_back(absl::StrCat(run_prefix, i, "/"));
      }
      return keys;
    case LoadMode::kVerify:
    case LoadMode::kCheck:
      return PrepareSecrets(stubs, options);
  }
  return keys;
}

}  // namespace

absl::StatusOr<LoadMode> ParseLoadMode(absl::string_view text) {
  for (LoadMode mode : {LoadMode::kGet, LoadMode::kToggle, LoadMode::kCreate, LoadMode::kEtcdRange,
                        LoadMode::kEtcdPut, LoadMode::kVerify, LoadMode::kCheck}) {
    if (text == LoadModeName(mode)) return mode;
  }
  return MakeError(
      absl::StatusCode::kInvalidArgument, reason::kInvalidArgument,
      absl::StrCat("unknown mode \"", text,
                   "\" (want get, toggle, create, etcd-range, etcd-put, verify or check)"));
}

absl::string_view LoadModeName(LoadMode mode) {
  switch (mode) {
    case LoadMode::kGet:
      return "get";
    case LoadMode::kToggle:
      return "toggle";
    case LoadMode::kCreate:
      return "create";
    case LoadMode::kEtcdRange:
      return "etcd-range";
    case LoadMode::kEtcdPut:
      return "etcd-put";
    case LoadMode::kVerify:
      return "verify";
    case LoadMode::kCheck:
      return "check";
  }
  return "unknown";
}

absl::StatusOr<LoadReport> RunLoad(const LoadOptions& options) {
  if (absl::Status status = ValidateOptions(options); !status.ok()) return status;
  absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> channels = ConnectChannels(options);
  if (!channels.ok()) return channels.status();
  std::vector<ChannelStubs> stubs;
  for (const auto& channel : *channels) {
    stubs.push_back({TokenService::NewStub(channel), etcdserverpb::KV::NewStub(channel),
                     envoy::service::auth::v3::Authorization::NewStub(channel)});
  }
  absl::StatusOr<std::vector<std::string>> slot_keys = PrepareSlotKeys(stubs[0], options);
  if (!slot_keys.ok()) return slot_keys.status();

  std::vector<std::unique_ptr<grpc::CompletionQueue>> queues;
  std::vector<std::vector<Slot*>> slots_per_queue(options.threads);
  for (int i = 0; i < options.threads; ++i) {
    queues.push_back(std::make_unique<grpc::CompletionQueue>());
  }
  std::vector<std::unique_ptr<Slot>> slots;
  for (int i = 0; i < options.concurrency; ++i) {
    const int queue = i % options.threads;
    slots.push_back(std::make_unique<Slot>(stubs[i % options.connections], queues[queue].get(), i,
                                           (*slot_keys)[i], options));
    slots_per_queue[queue].push_back(slots.back().get());
  }

  const Clock::time_point begin = Clock::now();
  Window window;
  window.start = begin + absl::ToChronoNanoseconds(options.warmup);
  window.end = window.start + absl::ToChronoNanoseconds(options.duration);
  std::vector<WorkerResult> results(options.threads);
  std::vector<std::thread> workers;
  for (int i = 0; i < options.threads; ++i) {
    workers.emplace_back(DriveSlots, queues[i].get(), std::cref(slots_per_queue[i]),
                         std::cref(window), &results[i]);
  }
  // The CPU figures are taken at the window's edges; the sleeps only mark those instants.
  std::this_thread::sleep_until(window.start);
  const absl::Duration client_start = testing::OwnCpu();
  const testing::ProcessCpuMeter server_cpu(options.server_pid);
  const testing::ProcessCpuMeter store_cpu(options.store_pid);
  std::this_thread::sleep_until(window.end);
  LoadReport report;
  report.client_cpu = testing::OwnCpu() - client_start;
  report.server_cpu = server_cpu.Elapsed();
  report.store_cpu = store_cpu.Elapsed();
  for (std::thread& worker : workers) worker.join();

  LatencySamples samples;
  for (const WorkerResult& result : results) {
    samples.Merge(result.samples);
    report.errors += result.errors;
    if (report.first_error.empty()) report.first_error = result.first_error;
  }
  const double seconds = absl::ToDoubleSeconds(options.duration);
  report.requests = static_cast<int64_t>(samples.count());
  report.requests_per_second = report.requests / seconds;
  report.p50 = samples.Percentile(0.50);
  report.p99 = samples.Percentile(0.99);
  report.client_cpu_percent = 100.0 * absl::ToDoubleSeconds(report.client_cpu) / seconds;
  return report;
}

std::string FormatReport(const LoadOptions& options, const LoadReport& report) {
  const auto per_request = [&](absl::Duration cpu) {
    return report.requests > 0 ? absl::ToDoubleMicroseconds(cpu) / report.requests : 0.0;
  };
  return absl::StrFormat(
      "mode=%s concurrency=%d connections=%d threads=%d requests=%d errors=%d rps=%.0f "
      "p50_us=%.0f p99_us=%.0f client_cpu_pct=%.0f client_us_per_request=%.1f "
      "server_us_per_request=%.1f store_us_per_request=%.1f",
      LoadModeName(options.mode), options.concurrency, options.connections, options.threads,
      report.requests, report.errors, report.requests_per_second,
      absl::ToDoubleMicroseconds(report.p50), absl::ToDoubleMicroseconds(report.p99),
      report.client_cpu_percent, per_request(report.client_cpu), per_request(report.server_cpu),
      per_request(report.store_cpu));
}

}  // namespace tokenstatus::bench
