#include "client/token_cache_metrics.h"

#include <algorithm>

#include "absl/time/clock.h"
#include "core/commit_time.h"

namespace tokenstatus {
namespace {

// Sets a counter to `total`, a count kept elsewhere that only grows.
void CountUpTo(metrics::Counter& counter, int64_t total) {
  counter.Increment(static_cast<double>(total) - counter.Value());
}

}  // namespace

TokenCacheMetrics::TokenCacheMetrics(TokenCache& cache, metrics::Registry& registry)
    : cache_(cache),
      propagation_(registry
                       .AddHistogram("tokenstatus_cache_propagation_seconds",
                                     "For each change applied to the cache: the local time it "
                                     "was applied less its commit time (update_time); the "
                                     "revocation lag. Assumes the hosts' clocks agree; a "
                                     "negative difference counts as 0.",
                                     {})
                       .Get()),
      negative_(registry
                    .AddCounter("tokenstatus_cache_propagation_negative_total",
                                "Changes applied before their commit time by this host's clock "
                                "(clock skew), counted as 0 in the propagation histogram.")
                    .Get()) {
  metrics::Gauge& revision =
      registry.AddGauge("tokenstatus_cache_revision", "The newest revision the cache applied.")
          .Get();
  metrics::Gauge& tokens =
      registry.AddGauge("tokenstatus_cache_tokens", "Tokens the cache holds (deleted included).")
          .Get();
  metrics::Gauge& fresh = registry
                              .AddGauge("tokenstatus_cache_fresh",
                                        "1 while the cache is synced and has heard from the "
                                        "server within its max_staleness.")
                              .Get();
  metrics::Gauge& staleness = registry
                                  .AddGauge("tokenstatus_cache_staleness_seconds",
                                            "Since the cache last heard from the server (a "
                                            "change, a snapshot chunk or a PROGRESS).")
                                  .Get();
  metrics::Family<metrics::Counter>& resyncs = registry.AddCounter(
      "tokenstatus_cache_resyncs_total",
      "How the cache caught up with the server: snapshot (a complete snapshot loaded, the first "
      "sync included), resume (a reconnect that continued from the cache's revision), reset (a "
      "KIND_RESET received).",
      {"reason"});
  registry.OnScrape([this, &revision, &tokens, &fresh, &staleness, &resyncs] {
    revision.Set(static_cast<double>(cache_.revision()));
    tokens.Set(static_cast<double>(cache_.size()));
    fresh.Set(cache_.fresh() ? 1 : 0);
    const absl::Time heard = cache_.last_heard();
    staleness.Set(heard == absl::InfinitePast() ? 0 : absl::ToDoubleSeconds(absl::Now() - heard));
    const TokenCacheStats stats = cache_.stats();
    CountUpTo(resyncs.With({"snapshot"}), stats.snapshots_loaded);
    CountUpTo(resyncs.With({"resume"}), stats.resumes);
    CountUpTo(resyncs.With({"reset"}), stats.resets);
  });
  listener_ = cache_.OnChange([this](const CacheChange& change) {
    if (change.kind != CacheChange::Kind::kEvent || change.event == nullptr) return;
    const absl::Duration lag = absl::Now() - CommitTimeOf(change.event->token());
    if (lag < absl::ZeroDuration()) negative_.Increment();
    propagation_.ObserveSeconds(std::max(lag, absl::ZeroDuration()));
  });
}

TokenCacheMetrics::~TokenCacheMetrics() { cache_.RemoveListener(listener_); }

}  // namespace tokenstatus
