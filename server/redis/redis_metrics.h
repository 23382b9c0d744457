#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "core/metrics/registry.h"

struct redisReply;

namespace tokenstatus {

// The Redis client's instruments (tokenstatus_redis_*), registered once per process and shared
// by its clients.
struct RedisMetrics {
  explicit RedisMetrics(metrics::Registry& registry);

  // Records one command that began at `started` and ended with `reply`: its round trip under
  // its name (the first argument, upper case: EVALSHA, XREAD, ...), and an error by kind:
  // timeout (no reply within the deadline), connection (not connected, connection lost), reply
  // (Redis answered with an error).
  void Record(const std::string& command, absl::Time started, bool failed, bool timed_out,
              const redisReply* reply);

  metrics::Gauge& up;                                    // tokenstatus_redis_up: 1 while connected
  metrics::Family<metrics::Histogram>& command_seconds;  // {command}
  metrics::Family<metrics::Counter>& errors;             // {kind}
  metrics::Counter& reconnects;                          // connected again after being disconnected
};

}  // namespace tokenstatus
