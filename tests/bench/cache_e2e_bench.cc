#include "tests/bench/cache_e2e_bench.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "apitoken/v1/token_service.pb.h"
#include "client/token_cache.h"
#include "client/token_client.h"
#include "core/status_util.h"
#include "envoy/service/auth/v3/external_auth.grpc.pb.h"
#include "grpc/grpc.h"
#include "grpcpp/channel.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "tests/bench/latency_samples.h"

namespace tokenstatus::bench {
namespace {

using apitoken::v1::Token;
using apitoken::v1::TokenEvent;
using Clock = std::chrono::steady_clock;

// ErrorInfo reasons of the bench's own failures.
constexpr char kTargetUnreachable[] = "TARGET_UNREACHABLE";
constexpr char kCachesNotSynced[] = "CACHES_NOT_SYNCED";

// Which caches have reported the disable of the token under test, and when the last one did.
// Thread-safe: the caches' listeners call Reported() concurrently.
class ArrivalTracker {
 public:
  explicit ArrivalTracker(int caches) : reported_(caches, false) {}

  // Starts tracking the disable of `token_id`: no cache has reported it yet.
  void Expect(const std::string& token_id) {
    absl::MutexLock lock(&mu_);
    token_id_ = token_id;
    std::fill(reported_.begin(), reported_.end(), false);
    count_ = 0;
  }
  // Cache `cache` applied the disable of `token_id` at `when`.
  void Reported(int cache, const std::string& token_id, Clock::time_point when) {
    absl::MutexLock lock(&mu_);
    if (token_id != token_id_ || reported_[cache]) return;
    reported_[cache] = true;
    ++count_;
    last_ = when;
  }
  // Waits until every cache has reported the tracked disable, at most `timeout`. Returns how
  // many had, and (if all) when the last one did.
  std::pair<int, Clock::time_point> WaitAll(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto all = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return count_ == static_cast<int>(reported_.size());
    };
    mu_.AwaitWithTimeout(absl::Condition(&all), timeout);
    return {count_, last_};
  }

 private:
  absl::Mutex mu_;
  std::string token_id_ ABSL_GUARDED_BY(mu_);
  std::vector<bool> reported_ ABSL_GUARDED_BY(mu_);
  int count_ ABSL_GUARDED_BY(mu_) = 0;
  Clock::time_point last_ ABSL_GUARDED_BY(mu_);
};

absl::Status ValidateOptions(const CacheE2eBenchOptions& options) {
  if (options.caches < 1 || options.connections < 1 || options.disables < 1) {
    return MakeError(absl::StatusCode::kInvalidArgument, reason::kInvalidArgument,
                     "caches, connections and disables must be >= 1");
  }
  if (options.rpc_timeout <= absl::ZeroDuration() ||
      options.arrival_timeout <= absl::ZeroDuration()) {
    return MakeError(absl::StatusCode::kInvalidArgument, reason::kInvalidArgument,
                     "rpc_timeout and arrival_timeout must be > 0");
  }
  return absl::OkStatus();
}

// `options.connections` channels, each its own connection, connected.
absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> Connect(
    const CacheE2eBenchOptions& options, const TokenCacheOptions& cache_options) {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < options.connections; ++i) {
    grpc::ChannelArguments args = TokenCache::ChannelArguments(cache_options);
    // Without a local subchannel pool, channels with equal arguments share one connection.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    std::shared_ptr<grpc::Channel> channel =
        grpc::CreateCustomChannel(options.target, grpc::InsecureChannelCredentials(), args);
    if (!channel->WaitForConnected(absl::ToChronoTime(absl::Now() + options.rpc_timeout))) {
      return MakeError(absl::StatusCode::kUnavailable, kTargetUnreachable,
                       absl::StrCat("cannot connect to ", options.target));
    }
    channels.push_back(std::move(channel));
  }
  return channels;
}

// Creates `count` ACTIVE tokens of `account_id`; returns them as acknowledged, and their
// secrets in `secrets`.
absl::StatusOr<std::vector<Token>> CreateTokens(TokenClient& client, const std::string& account_id,
                                                int count, std::vector<std::string>& secrets) {
  std::vector<Token> tokens;
  apitoken::v1::CreateTokenRequest request;
  request.set_account_id(account_id);
  request.set_name("cache e2e bench");
  for (int i = 0; i < count; ++i) {
    absl::StatusOr<apitoken::v1::CreateTokenResponse> created = client.Create(request);
    if (!created.ok()) return created.status();
    tokens.push_back(created->token());
    secrets.push_back(created->secret());
  }
  return tokens;
}

// A token-sidecar's Envoy ext_authz Check, as Envoy calls it for a request with a bearer
// secret.
class SidecarCheck {
 public:
  SidecarCheck(const std::string& target, absl::Duration rpc_timeout)
      : stub_(envoy::service::auth::v3::Authorization::NewStub(
            grpc::CreateChannel(target, grpc::InsecureChannelCredentials()))),
        rpc_timeout_(rpc_timeout) {}

  // Whether Check allows a request with `secret` (false on an RPC error too).
  bool Allows(const std::string& secret) const {
    envoy::service::auth::v3::CheckRequest request;
    auto* http = request.mutable_attributes()->mutable_request()->mutable_http();
    http->set_method("GET");
    http->set_path("/");
    (*http->mutable_headers())["authorization"] = absl::StrCat("Bearer ", secret);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         absl::ToChronoNanoseconds(rpc_timeout_));
    envoy::service::auth::v3::CheckResponse response;
    return stub_->Check(&context, request, &response).ok() && response.status().code() == 0;
  }
  // Calls Check until its answer is `allowed`; the time that answer arrived, or nullopt after
  // `timeout`.
  std::optional<Clock::time_point> AwaitAnswer(const std::string& secret, bool allowed,
                                               absl::Duration timeout) const {
    const Clock::time_point deadline = Clock::now() + absl::ToChronoNanoseconds(timeout);
    while (Clock::now() < deadline) {
      if (Allows(secret) == allowed) return Clock::now();
    }
    return std::nullopt;
  }

 private:
  std::unique_ptr<envoy::service::auth::v3::Authorization::Stub> stub_;
  const absl::Duration rpc_timeout_;
};

}  // namespace

absl::StatusOr<CacheE2eBenchReport> RunCacheE2eBench(const CacheE2eBenchOptions& options) {
  if (absl::Status status = ValidateOptions(options); !status.ok()) return status;
  TokenCacheOptions cache_options;
  cache_options.include_secret_hash = true;
  absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> channels =
      Connect(options, cache_options);
  if (!channels.ok()) return channels.status();
  TokenClientOptions client_options;
  client_options.deadline = options.rpc_timeout;
  TokenClient client((*channels)[0], client_options);
  std::vector<std::string> secrets;
  absl::StatusOr<std::vector<Token>> tokens =
      CreateTokens(client, options.account_id, options.disables, secrets);
  if (!tokens.ok()) return tokens.status();
  std::optional<SidecarCheck> sidecar;
  if (!options.sidecar.empty()) sidecar.emplace(options.sidecar, options.rpc_timeout);

  CacheE2eBenchReport report;
  ArrivalTracker tracker(options.caches);
  std::vector<std::unique_ptr<TokenCache>> caches;
  const Clock::time_point setup_start = Clock::now();
  for (int i = 0; i < options.caches; ++i) {
    absl::StatusOr<std::unique_ptr<TokenCache>> cache =
        TokenCache::Create((*channels)[i % options.connections], cache_options);
    if (!cache.ok()) return cache.status();
    (*cache)->OnChange([&tracker, i](const CacheChange& change) {
      if (change.kind == CacheChange::Kind::kEvent &&
          change.event->type() == TokenEvent::TYPE_DISABLED) {
        tracker.Reported(i, change.event->token().id(), Clock::now());
      }
    });
    caches.push_back(*std::move(cache));
  }
  const absl::Time sync_deadline = absl::Now() + options.arrival_timeout;
  for (const auto& cache : caches) {
    if (!cache->WaitForRevision(tokens->back().revision(), sync_deadline - absl::Now())) {
      return MakeError(absl::StatusCode::kDeadlineExceeded, kCachesNotSynced,
                       absl::StrCat("not every cache had the bench's tokens within ",
                                    absl::FormatDuration(options.arrival_timeout)));
    }
  }
  if (sidecar.has_value()) {
    for (const std::string& secret : secrets) {
      if (!sidecar->AwaitAnswer(secret, /*allowed=*/true, options.arrival_timeout)) {
        return MakeError(absl::StatusCode::kDeadlineExceeded, kCachesNotSynced,
                         "the sidecar did not allow the bench's tokens in time");
      }
    }
  }
  report.setup = absl::FromChrono(Clock::now() - setup_start);

  LatencySamples arrivals;
  LatencySamples calls;
  LatencySamples denials;
  for (size_t t = 0; t < tokens->size(); ++t) {
    const Token& token = (*tokens)[t];
    tracker.Expect(token.id());
    apitoken::v1::DisableTokenRequest request;
    request.set_token_id(token.id());
    request.set_reason("cache e2e bench");
    const Clock::time_point call_start = Clock::now();
    absl::StatusOr<ChangeResult> disabled = client.Disable(request);
    const Clock::time_point replied = Clock::now();
    if (!disabled.ok()) return disabled.status();
    ++report.disables;
    calls.Add(absl::FromChrono(replied - call_start));
    if (sidecar.has_value()) {
      if (std::optional<Clock::time_point> denied =
              sidecar->AwaitAnswer(secrets[t], /*allowed=*/false, options.arrival_timeout)) {
        ++report.sidecar_denied;
        denials.Add(absl::FromChrono(*denied - replied));
      }
    }
    auto [reported, last] = tracker.WaitAll(options.arrival_timeout);
    report.missing += options.caches - reported;
    if (reported < options.caches) continue;
    ++report.complete;
    arrivals.Add(std::max(absl::FromChrono(last - replied), absl::ZeroDuration()));
    for (const auto& cache : caches) {
      if (cache->Check(token.id()).state != Token::STATE_DISABLED) ++report.check_mismatches;
    }
  }
  caches.clear();  // stops the streams; no listener runs after this
  report.p50 = arrivals.Percentile(0.50);
  report.p99 = arrivals.Percentile(0.99);
  report.max = arrivals.Percentile(1.0);
  report.call_p50 = calls.Percentile(0.50);
  report.call_p99 = calls.Percentile(0.99);
  report.call_max = calls.Percentile(1.0);
  report.sidecar_p50 = denials.Percentile(0.50);
  report.sidecar_p99 = denials.Percentile(0.99);
  report.sidecar_max = denials.Percentile(1.0);
  return report;
}

std::string FormatCacheE2eReport(const CacheE2eBenchOptions& options,
                                 const CacheE2eBenchReport& report) {
  return absl::StrFormat(
      "caches=%d connections=%d disables=%d complete=%d missing=%d check_mismatches=%d "
      "setup_ms=%.0f p50_us=%.0f p99_us=%.0f max_us=%.0f call_p50_us=%.0f call_p99_us=%.0f "
      "call_max_us=%.0f sidecar_denied=%d sidecar_p50_us=%.0f sidecar_p99_us=%.0f "
      "sidecar_max_us=%.0f",
      options.caches, options.connections, report.disables, report.complete, report.missing,
      report.check_mismatches, absl::ToDoubleMilliseconds(report.setup),
      absl::ToDoubleMicroseconds(report.p50), absl::ToDoubleMicroseconds(report.p99),
      absl::ToDoubleMicroseconds(report.max), absl::ToDoubleMicroseconds(report.call_p50),
      absl::ToDoubleMicroseconds(report.call_p99), absl::ToDoubleMicroseconds(report.call_max),
      report.sidecar_denied, absl::ToDoubleMicroseconds(report.sidecar_p50),
      absl::ToDoubleMicroseconds(report.sidecar_p99),
      absl::ToDoubleMicroseconds(report.sidecar_max));
}

}  // namespace tokenstatus::bench
