#include "tests/bench/watch_bench.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "apitoken/v1/token_service.grpc.pb.h"
#include "core/status_util.h"
#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"
#include "grpc/grpc.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "grpcpp/support/client_callback.h"
#include "tests/bench/latency_samples.h"
#include "tests/bench/load_generator.h"
#include "tests/testing/process_usage.h"

namespace tokenstatus::bench {
namespace {

using apitoken::v1::TokenService;
using apitoken::v1::WatchTokensRequest;
using apitoken::v1::WatchTokensResponse;
using Clock = std::chrono::steady_clock;

// ErrorInfo reasons of the bench's own failures.
constexpr char kTargetUnreachable[] = "TARGET_UNREACHABLE";
constexpr char kSetupFailed[] = "WATCH_BENCH_SETUP_FAILED";
constexpr char kNotSynced[] = "WATCHERS_NOT_SYNCED";

std::string DescribeStatus(const grpc::Status& status) {
  return absl::StrCat(absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())),
                      ": ", status.error_message());
}

// How far one stream has got; guarded by its Progress's mutex.
struct StreamMark {
  int64_t max_revision = 0;  // the highest event revision received
  bool reached = false;      // counted as having reached the target revision
};

// What all streams have reached, for the bench's main thread to wait on. Thread-safe.
class Progress {
 public:
  explicit Progress(int watchers) : watchers_(watchers) {}

  // A stream is ready (its first KIND_SYNCED; etcd: its watcher was created).
  void Synced() {
    absl::MutexLock lock(&mu_);
    ++synced_;
  }
  // The stream of `mark` received an event of `revision`.
  void Saw(int64_t revision, StreamMark& mark) {
    absl::MutexLock lock(&mu_);
    mark.max_revision = std::max(mark.max_revision, revision);
    CountIfReached(mark);
  }
  // A stream ended with `status`.
  void Ended(const grpc::Status& status) {
    absl::MutexLock lock(&mu_);
    ++done_;
    if (cancelling_) return;
    if (ended_early_++ == 0) first_end_ = DescribeStatus(status);
  }

  // Waits until every stream is ready or has ended; false after `timeout`.
  bool WaitAllSynced(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto all = [this]()
                   ABSL_SHARED_LOCKS_REQUIRED(mu_) { return synced_ + ended_early_ >= watchers_; };
    return mu_.AwaitWithTimeout(absl::Condition(&all), timeout);
  }
  // Sets the target revision (counting the streams of `marks` that are already past it), then
  // waits until every stream has reached it or has ended, at most `timeout`.
  void WaitAllReached(int64_t target, const std::vector<StreamMark*>& marks,
                      absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    target_ = target;
    for (StreamMark* mark : marks) CountIfReached(*mark);
    auto all = [this]()
                   ABSL_SHARED_LOCKS_REQUIRED(mu_) { return reached_ + ended_early_ >= watchers_; };
    mu_.AwaitWithTimeout(absl::Condition(&all), timeout);
  }
  // From now on, ends are the bench's own cancellations, not counted as ending early.
  void Cancelling() {
    absl::MutexLock lock(&mu_);
    cancelling_ = true;
  }
  // Waits until every stream has ended.
  void WaitAllDone() {
    absl::MutexLock lock(&mu_);
    auto all = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return done_ >= watchers_; };
    mu_.Await(absl::Condition(&all));
  }

  int ended_early() const {
    absl::MutexLock lock(&mu_);
    return ended_early_;
  }
  std::string first_end() const {
    absl::MutexLock lock(&mu_);
    return first_end_;
  }

 private:
  void CountIfReached(StreamMark& mark) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!mark.reached && target_ > 0 && mark.max_revision >= target_) {
      mark.reached = true;
      ++reached_;
    }
  }

  const int watchers_;
  mutable absl::Mutex mu_;
  int synced_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t target_ ABSL_GUARDED_BY(mu_) = 0;
  int reached_ ABSL_GUARDED_BY(mu_) = 0;
  int done_ ABSL_GUARDED_BY(mu_) = 0;
  int ended_early_ ABSL_GUARDED_BY(mu_) = 0;
  bool cancelling_ ABSL_GUARDED_BY(mu_) = false;
  std::string first_end_ ABSL_GUARDED_BY(mu_);
};

// What one watcher received: every event's revision and arrival time, in arrival order, and how
// many messages carried them. Written by its stream's callbacks (one at a time for a stream);
// read by the main thread only after Progress::WaitAllDone, which orders it after the last
// callback.
class ArrivalLog {
 public:
  struct Arrival {
    int64_t revision;
    Clock::time_point time;
  };

  ArrivalLog(Progress& progress, int expected_events) : progress_(progress) {
    arrivals_.reserve(expected_events);
  }

  // The stream is ready (SYNCED, or etcd's "created"); counted once.
  void Ready() {
    if (ready_) return;
    ready_ = true;
    progress_.Synced();
  }
  // An event of `revision` arrived at `time` in the message being read.
  void Add(int64_t revision, Clock::time_point time) { arrivals_.push_back({revision, time}); }
  // The message being read is done: counts it if it carried events, and tells the Progress.
  void EndMessage() {
    if (arrivals_.size() == counted_) return;
    counted_ = arrivals_.size();
    ++messages_;
    progress_.Saw(arrivals_.back().revision, mark_);
  }

  StreamMark* mark() { return &mark_; }
  const std::vector<Arrival>& arrivals() const { return arrivals_; }
  int64_t messages() const { return messages_; }

 private:
  Progress& progress_;
  bool ready_ = false;
  std::vector<Arrival> arrivals_;
  size_t counted_ = 0;  // arrivals_.size() at the end of the previous message
  int64_t messages_ = 0;
  StreamMark mark_;  // guarded by progress_'s mutex
};

// One watch stream, whichever the server.
class Watcher {
 public:
  virtual ~Watcher() = default;
  // Ends the stream; Progress::Ended follows.
  virtual void Cancel() = 0;
  virtual ArrivalLog& log() = 0;
};

// One WatchTokens stream.
class TokenWatcher final : public Watcher, public grpc::ClientReadReactor<WatchTokensResponse> {
 public:
  TokenWatcher(TokenService::Stub& stub, const WatchTokensRequest& request, Progress& progress,
               int expected_events)
      : progress_(progress), log_(progress, expected_events) {
    stub.async()->WatchTokens(&context_, &request, this);
    StartRead(&incoming_);
    StartCall();
  }

  void Cancel() override { context_.TryCancel(); }
  ArrivalLog& log() override { return log_; }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows
    const Clock::time_point now = Clock::now();
    if (incoming_.kind() == WatchTokensResponse::KIND_SYNCED) log_.Ready();
    if (incoming_.kind() == WatchTokensResponse::KIND_CHANGES) {
      for (const apitoken::v1::TokenEvent& event : incoming_.events()) {
        log_.Add(event.token().revision(), now);
      }
      log_.EndMessage();
    }
    StartRead(&incoming_);
  }

  void OnDone(const grpc::Status& status) override { progress_.Ended(status); }

 private:
  Progress& progress_;
  ArrivalLog log_;
  grpc::ClientContext context_;
  WatchTokensResponse incoming_;
};

// One etcd Watch stream with one watcher, created by `create`. If etcd cancels the watcher, the
// bench ends the stream, which then counts as ended with ABORTED and etcd's reason.
class EtcdWatcher final
    : public Watcher,
      public grpc::ClientBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse> {
 public:
  // `create` must outlive the watcher.
  EtcdWatcher(etcdserverpb::Watch::Stub& stub, const etcdserverpb::WatchRequest& create,
              Progress& progress, int expected_events)
      : progress_(progress), log_(progress, expected_events) {
    stub.async()->Watch(&context_, this);
    StartWrite(&create);
    StartRead(&incoming_);
    StartCall();
  }

  void Cancel() override { context_.TryCancel(); }
  ArrivalLog& log() override { return log_; }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows
    const Clock::time_point now = Clock::now();
    if (incoming_.created()) log_.Ready();
    for (const mvccpb::Event& event : incoming_.events()) log_.Add(event.kv().mod_revision(), now);
    log_.EndMessage();
    if (incoming_.canceled()) {
      cancel_reason_ = incoming_.cancel_reason();
      context_.TryCancel();
      return;
    }
    StartRead(&incoming_);
  }

  void OnDone(const grpc::Status& status) override {
    if (cancel_reason_.has_value()) {
      progress_.Ended(grpc::Status(grpc::StatusCode::ABORTED,
                                   absl::StrCat("etcd canceled the watcher: ", *cancel_reason_)));
    } else {
      progress_.Ended(status);
    }
  }

 private:
  Progress& progress_;
  ArrivalLog log_;
  grpc::ClientContext context_;
  etcdserverpb::WatchResponse incoming_;
  std::optional<std::string> cancel_reason_;  // set once etcd canceled the watcher
};

absl::Status ValidateOptions(const WatchBenchOptions& options) {
  if (options.watchers < 0 || options.connections < 1 || options.changes < 1) {
    return MakeError(absl::StatusCode::kInvalidArgument, reason::kInvalidArgument,
                     "watchers must be >= 0; connections and changes >= 1");
  }
  if (options.interval < absl::ZeroDuration() || options.warmup < absl::ZeroDuration() ||
      options.rpc_timeout <= absl::ZeroDuration() ||
      options.drain_timeout <= absl::ZeroDuration()) {
    return MakeError(absl::StatusCode::kInvalidArgument, reason::kInvalidArgument,
                     "interval and warmup must be >= 0; rpc_timeout and drain_timeout > 0");
  }
  return absl::OkStatus();
}

// The bench's connections to the server: the watchers' (round robin), and one of the changes'
// own, as an operator's tool would make them (a reply never waits behind watch messages on a
// shared connection, at either end).
struct Channels {
  std::shared_ptr<grpc::Channel> changes;
  std::vector<std::shared_ptr<grpc::Channel>> watchers;
};

absl::StatusOr<Channels> Connect(const WatchBenchOptions& options) {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < options.connections + 1; ++i) {
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
  std::shared_ptr<grpc::Channel> changes = std::move(channels.back());
  channels.pop_back();
  return Channels{std::move(changes), std::move(channels)};
}

// Runs one unary call with the bench's deadline; a failure becomes a kSetupFailed error.
template <typename Stub, typename Request, typename Response>
absl::StatusOr<Response> Call(Stub& stub,
                              grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&,
                                                           Response*),
                              const Request& request, const WatchBenchOptions& options) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       absl::ToChronoNanoseconds(options.rpc_timeout));
  Response response;
  const grpc::Status status = (stub.*method)(&context, request, &response);
  if (!status.ok()) {
    return MakeError(static_cast<absl::StatusCode>(status.error_code()), kSetupFailed,
                     absl::StrCat(Request::descriptor()->name(), ": ", status.error_message()));
  }
  return response;
}

// The server under test, as the bench uses it: what the changes change, the watchers, the
// changes.
class WatchTarget {
 public:
  virtual ~WatchTarget() = default;
  // Creates what the changes change.
  virtual absl::Status Prepare() = 0;
  // Opens the `index`-th watcher (on channel index % connections).
  virtual std::unique_ptr<Watcher> Open(int index, Progress& progress, int expected_events) = 0;
  // Makes change `index` (0-based) and returns its revision.
  virtual absl::StatusOr<int64_t> Change(int index) = 0;
};

// A TokenService: one token, disabled and enabled in turn.
class TokenServiceTarget final : public WatchTarget {
 public:
  TokenServiceTarget(const Channels& channels, const WatchBenchOptions& options)
      : options_(options), changes_(TokenService::NewStub(channels.changes)) {
    for (const auto& channel : channels.watchers) stubs_.push_back(TokenService::NewStub(channel));
    request_.set_send_initial_state(true);
  }

  absl::Status Prepare() override {
    apitoken::v1::CreateTokenRequest create;
    create.set_account_id(options_.account_id);
    create.set_name("watch bench");
    absl::StatusOr<apitoken::v1::CreateTokenResponse> created =
        Call(*changes_, &TokenService::Stub::CreateToken, create, options_);
    if (!created.ok()) return created.status();
    token_id_ = created->token().id();
    return absl::OkStatus();
  }

  std::unique_ptr<Watcher> Open(int index, Progress& progress, int expected_events) override {
    return std::make_unique<TokenWatcher>(*stubs_[index % stubs_.size()], request_, progress,
                                          expected_events);
  }

  absl::StatusOr<int64_t> Change(int index) override {
    if (index % 2 == 0) {
      apitoken::v1::DisableTokenRequest request;
      request.set_token_id(token_id_);
      request.set_reason("watch bench");
      absl::StatusOr<apitoken::v1::DisableTokenResponse> response =
          Call(*changes_, &TokenService::Stub::DisableToken, request, options_);
      if (!response.ok()) return response.status();
      return response->token().revision();
    }
    apitoken::v1::EnableTokenRequest request;
    request.set_token_id(token_id_);
    request.set_reason("watch bench");
    absl::StatusOr<apitoken::v1::EnableTokenResponse> response =
        Call(*changes_, &TokenService::Stub::EnableToken, request, options_);
    if (!response.ok()) return response.status();
    return response->token().revision();
  }

 private:
  const WatchBenchOptions& options_;
  std::unique_ptr<TokenService::Stub> changes_;             // the changes' own connection
  std::vector<std::unique_ptr<TokenService::Stub>> stubs_;  // the watchers'
  WatchTokensRequest request_;
  std::string token_id_;
};

// etcd: one key under the run's prefix, put with two values in turn.
class EtcdTarget final : public WatchTarget {
 public:
  EtcdTarget(const Channels& channels, const WatchBenchOptions& options)
      : options_(options),
        kv_(etcdserverpb::KV::NewStub(channels.changes)),
        prefix_(absl::StrCat(options.etcd_prefix, absl::ToUnixMicros(absl::Now()), "/")) {
    for (const auto& channel : channels.watchers) {
      watch_stubs_.push_back(etcdserverpb::Watch::NewStub(channel));
    }
    etcdserverpb::WatchCreateRequest& create = *create_.mutable_create_request();
    create.set_key(prefix_);
    std::string range_end = prefix_;
    ++range_end.back();  // the prefix ends in '/': every key that starts with it
    create.set_range_end(range_end);
  }

  absl::Status Prepare() override { return Put(std::string(kEtcdValueBytes, 'a')).status(); }

  std::unique_ptr<Watcher> Open(int index, Progress& progress, int expected_events) override {
    return std::make_unique<EtcdWatcher>(*watch_stubs_[index % watch_stubs_.size()], create_,
                                         progress, expected_events);
  }

  absl::StatusOr<int64_t> Change(int index) override {
    return Put(std::string(kEtcdValueBytes, index % 2 == 0 ? 'd' : 'a'));
  }

 private:
  // Puts the key with `value`; returns the revision of the put.
  absl::StatusOr<int64_t> Put(const std::string& value) {
    etcdserverpb::PutRequest request;
    request.set_key(absl::StrCat(prefix_, "token"));
    request.set_value(value);
    absl::StatusOr<etcdserverpb::PutResponse> response =
        Call(*kv_, &etcdserverpb::KV::Stub::Put, request, options_);
    if (!response.ok()) return response.status();
    return response->header().revision();
  }

  const WatchBenchOptions& options_;
  std::unique_ptr<etcdserverpb::KV::Stub> kv_;
  std::vector<std::unique_ptr<etcdserverpb::Watch::Stub>> watch_stubs_;
  const std::string prefix_;
  etcdserverpb::WatchRequest create_;
};

// Cancels every stream and waits until all have ended.
void CancelAll(const std::vector<std::unique_ptr<Watcher>>& watchers, Progress& progress) {
  progress.Cancelling();
  for (const auto& watcher : watchers) watcher->Cancel();
  progress.WaitAllDone();
}

// Matches every watcher's arrivals to the bench's changes (by revision; `started` holds each
// change's call start) into `report`: each event counts, whatever message carried it.
void Tally(const std::vector<std::unique_ptr<Watcher>>& watchers,
           const std::map<int64_t, Clock::time_point>& started, WatchBenchReport& report) {
  LatencySamples samples;
  samples.Reserve(static_cast<size_t>(report.expected));
  for (const auto& watcher : watchers) {
    report.messages += watcher->log().messages();
    std::set<int64_t> seen;
    int64_t previous = 0;
    for (const ArrivalLog::Arrival& arrival : watcher->log().arrivals()) {
      if (arrival.revision <= previous) ++report.out_of_order;
      previous = std::max(previous, arrival.revision);
      auto change = started.find(arrival.revision);
      if (change == started.end()) continue;  // not one of the bench's changes
      if (!seen.insert(arrival.revision).second) {
        ++report.duplicates;
        continue;
      }
      ++report.delivered;
      samples.Add(absl::FromChrono(arrival.time - change->second));
    }
  }
  report.p50 = samples.Percentile(0.50);
  report.p99 = samples.Percentile(0.99);
  report.max = samples.Percentile(1.0);
}

}  // namespace

absl::StatusOr<WatchServer> ParseWatchServer(absl::string_view text) {
  for (WatchServer server : {WatchServer::kTokenstatus, WatchServer::kEtcd}) {
    if (text == WatchServerName(server)) return server;
  }
  return MakeError(absl::StatusCode::kInvalidArgument, reason::kInvalidArgument,
                   absl::StrCat("unknown server \"", text, "\" (want tokenstatus or etcd)"));
}

absl::string_view WatchServerName(WatchServer server) {
  return server == WatchServer::kEtcd ? "etcd" : "tokenstatus";
}

absl::StatusOr<WatchBenchReport> RunWatchBench(const WatchBenchOptions& options) {
  if (absl::Status status = ValidateOptions(options); !status.ok()) return status;
  absl::StatusOr<Channels> channels = Connect(options);
  if (!channels.ok()) return channels.status();
  std::unique_ptr<WatchTarget> target;
  if (options.server == WatchServer::kEtcd) {
    target = std::make_unique<EtcdTarget>(*channels, options);
  } else {
    target = std::make_unique<TokenServiceTarget>(*channels, options);
  }
  if (absl::Status status = target->Prepare(); !status.ok()) return status;

  WatchBenchReport report;
  report.expected = static_cast<int64_t>(options.watchers) * options.changes;
  report.server_rss_before_kib = testing::ResidentKiB(options.server_pid).value_or(0);
  Progress progress(options.watchers);
  std::vector<std::unique_ptr<Watcher>> watchers;
  const Clock::time_point setup_start = Clock::now();
  for (int i = 0; i < options.watchers; ++i) {
    watchers.push_back(target->Open(i, progress, options.changes));
  }
  const bool synced = progress.WaitAllSynced(options.drain_timeout);
  report.setup = absl::FromChrono(Clock::now() - setup_start);
  if (synced) {
    std::this_thread::sleep_for(absl::ToChronoNanoseconds(options.warmup));
    report.server_rss_after_kib = testing::ResidentKiB(options.server_pid).value_or(0);

    // The changes, paced: change i starts at start + i * interval (or at once, if late).
    std::map<int64_t, Clock::time_point> started;  // revision -> the start of its change
    LatencySamples acknowledged;
    acknowledged.Reserve(static_cast<size_t>(options.changes));
    const absl::Duration cpu_start = testing::OwnCpu();
    const testing::ProcessCpuMeter server_cpu(options.server_pid);
    const Clock::time_point start = Clock::now();
    absl::Status failed;
    for (int i = 0; i < options.changes && failed.ok(); ++i) {
      std::this_thread::sleep_until(start + i * absl::ToChronoNanoseconds(options.interval));
      const Clock::time_point call_start = Clock::now();
      absl::StatusOr<int64_t> revision = target->Change(i);
      if (revision.ok()) {
        started[*revision] = call_start;
        const absl::Duration acknowledgement = absl::FromChrono(Clock::now() - call_start);
        if (i == 0) report.first_change = acknowledgement;
        if (i > 0 || options.changes == 1) acknowledged.Add(acknowledgement);
      } else {
        failed = revision.status();
      }
    }
    if (failed.ok()) {
      std::vector<StreamMark*> marks;
      for (const auto& watcher : watchers) marks.push_back(watcher->log().mark());
      progress.WaitAllReached(started.rbegin()->first, marks, options.drain_timeout);
    }
    const double seconds = absl::ToDoubleSeconds(absl::FromChrono(Clock::now() - start));
    report.client_cpu_percent =
        100.0 * absl::ToDoubleSeconds(testing::OwnCpu() - cpu_start) / seconds;
    report.server_cpu = server_cpu.Elapsed();
    CancelAll(watchers, progress);
    if (!failed.ok()) return failed;
    Tally(watchers, started, report);
    report.change_p50 = acknowledged.Percentile(0.50);
    report.change_p99 = acknowledged.Percentile(0.99);
  } else {
    CancelAll(watchers, progress);
  }
  report.ended = progress.ended_early();
  report.first_end = progress.first_end();
  if (!synced && report.ended == 0) {
    return MakeError(absl::StatusCode::kDeadlineExceeded, kNotSynced,
                     absl::StrCat("not every watcher was ready within ",
                                  absl::FormatDuration(options.drain_timeout)));
  }
  return report;
}

std::string FormatWatchReport(const WatchBenchOptions& options, const WatchBenchReport& report) {
  const int64_t growth = report.server_rss_after_kib - report.server_rss_before_kib;
  return absl::StrFormat(
      "server=%s watchers=%d connections=%d changes=%d interval_ms=%.0f setup_ms=%.0f "
      "expected=%d delivered=%d duplicates=%d out_of_order=%d ended=%d messages=%d p50_us=%.0f "
      "p99_us=%.0f max_us=%.0f first_change_us=%.0f change_p50_us=%.0f change_p99_us=%.0f "
      "client_cpu_pct=%.0f server_cpu_ms=%.0f server_cpu_us_per_event=%.1f "
      "server_rss_before_kib=%d server_rss_after_kib=%d kib_per_watcher=%.1f",
      WatchServerName(options.server), options.watchers, options.connections, options.changes,
      absl::ToDoubleMilliseconds(options.interval), absl::ToDoubleMilliseconds(report.setup),
      report.expected, report.delivered, report.duplicates, report.out_of_order, report.ended,
      report.messages, absl::ToDoubleMicroseconds(report.p50),
      absl::ToDoubleMicroseconds(report.p99), absl::ToDoubleMicroseconds(report.max),
      absl::ToDoubleMicroseconds(report.first_change),
      absl::ToDoubleMicroseconds(report.change_p50), absl::ToDoubleMicroseconds(report.change_p99),
      report.client_cpu_percent, absl::ToDoubleMilliseconds(report.server_cpu),
      report.delivered > 0 ? absl::ToDoubleMicroseconds(report.server_cpu) / report.delivered : 0.0,
      report.server_rss_before_kib, report.server_rss_after_kib,
      report.server_rss_after_kib > 0 && options.watchers > 0
          ? static_cast<double>(growth) / options.watchers
          : 0.0);
}

}  // namespace tokenstatus::bench
