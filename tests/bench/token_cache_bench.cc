// TokenCache lookups on a 100,000-token cache (Google Benchmark). The cache is loaded through
// its WatchSource interface with one snapshot, exactly as a server stream would load it, then
// kept fresh (max_staleness far above the run) with its stream open and idle.
//
//   tokenstatus-cachebench [--benchmark_filter=...]
// Reports items_per_second: lookups per second over all threads of a run.

#include <algorithm>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "benchmark/benchmark.h"
#include "client/token_cache.h"
#include "core/token_secret.h"

namespace tokenstatus {
namespace {

using apitoken::v1::Token;
using apitoken::v1::VerifyTokenResponse;
using apitoken::v1::WatchTokensRequest;
using apitoken::v1::WatchTokensResponse;

constexpr int kTokens = 100'000;
constexpr int kSnapshotChunk = 1000;

// A stream that delivers fixed messages, then stays open (silent) until cancelled.
class ReplayStream : public WatchStream {
 public:
  explicit ReplayStream(std::vector<WatchTokensResponse> messages)
      : messages_(std::move(messages)) {}

  bool Read(WatchTokensResponse* response) override {
    if (next_ < messages_.size()) {
      *response = std::move(messages_[next_++]);
      return true;
    }
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&cancelled_));
    return false;
  }
  void Cancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
  }
  absl::Status Finish() override { return absl::CancelledError("cancelled"); }

 private:
  std::vector<WatchTokensResponse> messages_;
  size_t next_ = 0;
  absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

// Serves one snapshot to the first stream (later ones, which the benchmark never causes, get it
// again).
class SnapshotSource : public WatchSource {
 public:
  explicit SnapshotSource(std::vector<WatchTokensResponse> snapshot)
      : snapshot_(std::move(snapshot)) {}
  std::unique_ptr<WatchStream> Open(const WatchTokensRequest&) override {
    return std::make_unique<ReplayStream>(snapshot_);
  }

 private:
  const std::vector<WatchTokensResponse> snapshot_;
};

// The cache under test, the ids it holds in a random order, and a secret for each id.
struct Fixture {
  std::unique_ptr<TokenCache> cache;
  std::vector<std::string> ids;
  std::vector<std::string> secrets;
};

Fixture& TheFixture() {
  static Fixture* fixture = [] {
    auto* f = new Fixture;
    std::mt19937_64 random(42);
    absl::flat_hash_set<std::string> seen;
    while (static_cast<int>(f->ids.size()) < kTokens) {
      std::string id = absl::StrFormat("TKN-%04d-%04d", random() % 10000, random() % 10000);
      if (seen.insert(id).second) f->ids.push_back(std::move(id));
    }
    std::vector<WatchTokensResponse> messages;
    for (int i = 0; i < kTokens; ++i) {
      if (i % kSnapshotChunk == 0) {
        messages.emplace_back().set_kind(WatchTokensResponse::KIND_SNAPSHOT);
        messages.back().set_revision(kTokens);
      }
      f->secrets.push_back(*GenerateSecret(f->ids[i]));
      Token* token = messages.back().add_tokens();
      token->set_id(f->ids[i]);
      token->set_account_id(absl::StrFormat("ACC-0000-%04d", i % 100));
      token->set_name("bench token");
      token->set_state(i % 10 == 0 ? Token::STATE_DISABLED : Token::STATE_ACTIVE);
      token->set_revision(i + 1);
      token->set_secret_sha256(Sha256(f->secrets[i]));
    }
    messages.emplace_back().set_kind(WatchTokensResponse::KIND_SYNCED);
    messages.back().set_revision(kTokens);
    TokenCacheOptions options;
    options.max_staleness = absl::Hours(1);
    f->cache = *TokenCache::Create(std::make_unique<SnapshotSource>(std::move(messages)), options);
    if (!f->cache->WaitForRevision(kTokens, absl::Minutes(1))) {
      std::fprintf(stderr, "the cache did not load its snapshot\n");
      std::abort();
    }
    // Look up in another order than the snapshot's.
    std::vector<size_t> order(kTokens);
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), random);
    Fixture shuffled;
    for (size_t i : order) {
      shuffled.ids.push_back(f->ids[i]);
      shuffled.secrets.push_back(f->secrets[i]);
    }
    f->ids = std::move(shuffled.ids);
    f->secrets = std::move(shuffled.secrets);
    return f;
  }();
  return *fixture;
}

// Check of known tokens, each thread starting at another place in the id list.
void BM_Check(benchmark::State& state) {
  Fixture& f = TheFixture();
  const TokenCache& cache = *f.cache;
  size_t i = static_cast<size_t>(state.thread_index()) * (kTokens / 7);
  int64_t allowed = 0;
  for (auto _ : state) {
    const CheckResult result = cache.Check(f.ids[i]);
    allowed += result.allowed;
    if (++i == f.ids.size()) i = 0;
  }
  benchmark::DoNotOptimize(allowed);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Check)->Threads(1)->Threads(2)->UseRealTime();

// Check of ids the cache does not hold.
void BM_CheckUnknown(benchmark::State& state) {
  const TokenCache& cache = *TheFixture().cache;
  std::vector<std::string> unknown;
  for (int i = 0; i < 1000; ++i) unknown.push_back(absl::StrFormat("TKN-%04d-%04d-0000", i, i));
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(cache.Check(unknown[i]));
    if (++i == unknown.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CheckUnknown)->Threads(1)->UseRealTime();

// Verify of valid secrets (SHA-256 of the secret and a constant-time compare per call).
void BM_Verify(benchmark::State& state) {
  Fixture& f = TheFixture();
  const TokenCache& cache = *f.cache;
  size_t i = static_cast<size_t>(state.thread_index()) * (kTokens / 7);
  int64_t valid = 0;
  for (auto _ : state) {
    valid += cache.Verify(f.secrets[i]).result == VerifyTokenResponse::RESULT_VALID;
    if (++i == f.secrets.size()) i = 0;
  }
  benchmark::DoNotOptimize(valid);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Verify)->Threads(1)->Threads(2)->UseRealTime();

// References measured in the same run, for Check and Verify: a lookup of the same ids in a
// plain absl::flat_hash_map<std::string, Token::State> (no lock, no freshness), and SHA-256 of
// the same secrets alone (the floor of a Verify).
void BM_ReferenceHashMapFind(benchmark::State& state) {
  static const auto* const map = [] {
    auto* m = new absl::flat_hash_map<std::string, Token::State>;
    for (const std::string& id : TheFixture().ids) (*m)[id] = Token::STATE_ACTIVE;
    return m;
  }();
  const Fixture& f = TheFixture();
  size_t i = static_cast<size_t>(state.thread_index()) * (kTokens / 7);
  int64_t found = 0;
  for (auto _ : state) {
    found += map->find(f.ids[i]) != map->end();
    if (++i == f.ids.size()) i = 0;
  }
  benchmark::DoNotOptimize(found);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ReferenceHashMapFind)->Threads(1)->Threads(2)->UseRealTime();

void BM_ReferenceSha256(benchmark::State& state) {
  const Fixture& f = TheFixture();
  size_t i = static_cast<size_t>(state.thread_index()) * (kTokens / 7);
  for (auto _ : state) {
    benchmark::DoNotOptimize(Sha256(f.secrets[i]));
    if (++i == f.secrets.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ReferenceSha256)->Threads(1)->UseRealTime();

}  // namespace
}  // namespace tokenstatus

int main(int argc, char** argv) {
  // Debian's Abseil is built without NDEBUG, so absl::Mutex would run its deadlock detector on
  // every lock; production mains turn it off (server/main.cc), and so does this one.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
