#pragma once

#include "client/token_cache.h"
#include "core/metrics/registry.h"

namespace tokenstatus {

// A TokenCache's metrics, for any process that embeds one (token-sidecar does):
//
//   tokenstatus_cache_revision, tokenstatus_cache_tokens, tokenstatus_cache_fresh (0/1),
//   tokenstatus_cache_staleness_seconds (since the cache last heard from the server),
//   tokenstatus_cache_resyncs_total{reason} (snapshot: a complete snapshot loaded, the first
//     sync included; resume: a reconnect that continued from the cache's revision; reset: a
//     KIND_RESET received),
//   tokenstatus_cache_propagation_seconds (histogram): for every applied change, the local
//     time it was applied less its commit time (the token's update_time, set by the server):
//     the revocation lag. It assumes the clocks of the server's and this host agree (NTP); a
//     negative difference (this clock behind) is counted as 0, and also in
//   tokenstatus_cache_propagation_negative_total.
//
//   metrics::Registry registry;                    // created first, destroyed last
//   std::unique_ptr<TokenCache> cache = ...;
//   TokenCacheMetrics cache_metrics(*cache, registry);
//   ... serve registry.Render() (e.g. core/metrics/metrics_endpoint.h) ...
//
// The values read at scrape time come from `cache`, which must outlive every later Render of
// `registry`; the change listener is removed when this goes. Registers its names once per
// registry (one cache per registry). Thread-safe.
class TokenCacheMetrics {
 public:
  TokenCacheMetrics(TokenCache& cache, metrics::Registry& registry);
  ~TokenCacheMetrics();

  TokenCacheMetrics(const TokenCacheMetrics&) = delete;
  TokenCacheMetrics& operator=(const TokenCacheMetrics&) = delete;

 private:
  TokenCache& cache_;
  metrics::Histogram& propagation_;
  metrics::Counter& negative_;
  TokenCache::ListenerId listener_;
};

}  // namespace tokenstatus
