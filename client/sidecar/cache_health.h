#pragma once

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "client/token_cache.h"
#include "grpcpp/health_check_service_interface.h"

namespace tokenstatus {

// Publishes a TokenCache's freshness as the grpc.health.v1 status of token-sidecar (service "",
// apitoken.v1.TokenService and envoy.service.auth.v3.Authorization): SERVING while the cache is
// fresh (synced, and heard from the server within max_staleness), NOT_SERVING before the first sync
// and while stale. It follows the cache's change listener (which reports freshness changes, driven
// by the cache's own staleness timer) and logs each transition ("event=cache_serving" /
// "event=cache_not_serving").
//
// Thread-safe. `cache` and `health` must outlive the object; it registers a listener on `cache`
// and removes it when destroyed.
class CacheHealth {
 public:
  CacheHealth(TokenCache& cache, grpc::HealthCheckServiceInterface* health);
  ~CacheHealth();

  CacheHealth(const CacheHealth&) = delete;
  CacheHealth& operator=(const CacheHealth&) = delete;

  // Reports NOT_SERVING from now on, for good (a sidecar that is shutting down).
  void Shutdown();

 private:
  // Publishes the cache's freshness now. Reading it under mu_ makes the last publication always
  // the latest state, whatever order concurrent calls run in.
  void Publish();

  TokenCache& cache_;
  absl::Mutex mu_;
  grpc::HealthCheckServiceInterface* health_ ABSL_GUARDED_BY(mu_);  // null after Shutdown
  int published_ ABSL_GUARDED_BY(mu_) = -1;  // -1 nothing yet, else the last serving value
  TokenCache::ListenerId listener_ = 0;      // set in the constructor, removed in the destructor
};

}  // namespace tokenstatus
