#pragma once

#include <cstdint>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/health_check_service_interface.h"

namespace tokenstatus {

// Publishes the server's health ("" and apitoken.v1.TokenService) on every attached health
// service (the main port's and --health_listen's). The rule:
//   - NOT_SERVING until the mirror has loaded (nothing to answer reads from);
//   - then SERVING while Redis is reachable;
//   - when Redis becomes unreachable (a failover, a restart), SERVING for `outage_grace` more:
//     reads are still answered from the mirror, which was current when Redis went away, and
//     changes fail fast with UNAVAILABLE; a whole fleet going NOT_SERVING during a few seconds
//     of failover would drop every read;
//   - after `outage_grace` without Redis, NOT_SERVING until Redis is reachable again: the
//     mirror may by then miss disables made through replicas that still reach Redis.
// Every transition is logged (event=health). The latest state is kept until a health service
// is attached, and dropped once they are detached, so the listeners never touch a server that is
// not there. A thread of its own ends the grace. Thread-safe.
class HealthPublisher {
 public:
  explicit HealthPublisher(absl::Duration outage_grace);
  // Stops the grace thread.
  ~HealthPublisher();
  HealthPublisher(const HealthPublisher&) = delete;
  HealthPublisher& operator=(const HealthPublisher&) = delete;

  // Whether Redis is reachable now (RedisClient's connected listener).
  void SetRedisConnected(bool connected);
  // The mirror has loaded (it stays loaded: later reloads swap its state at once).
  void SetMirrorLoaded();
  void Attach(grpc::HealthCheckServiceInterface* health);
  // Reports NOT_SERVING from now on, for good (a server that is shutting down).
  void Detach();

 private:
  // The grace thread: waits for the end of the grace of each outage and publishes it.
  void Run();
  void PublishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const absl::Duration outage_grace_;
  absl::Mutex mu_;
  bool redis_connected_ ABSL_GUARDED_BY(mu_) = false;
  // Redis has been unreachable since `down_since_` for longer than the grace.
  bool grace_over_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time down_since_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  int64_t changes_ ABSL_GUARDED_BY(mu_) = 0;  // SetRedisConnected calls, to wake the thread
  bool mirror_loaded_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool published_ ABSL_GUARDED_BY(mu_) = false;  // the last logged state
  std::vector<grpc::HealthCheckServiceInterface*> healths_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;  // last: it uses every member above
};

}  // namespace tokenstatus
