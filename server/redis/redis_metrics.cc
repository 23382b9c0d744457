#include "server/redis/redis_metrics.h"

#include <hiredis/hiredis.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace tokenstatus {

RedisMetrics::RedisMetrics(metrics::Registry& registry)
    : up(registry.AddGauge("tokenstatus_redis_up", "1 while the server is connected to Redis.")
             .Get()),
      command_seconds(registry.AddHistogram("tokenstatus_redis_command_seconds",
                                            "Redis round trips, by command.", {"command"})),
      errors(registry.AddCounter("tokenstatus_redis_errors_total",
                                 "Redis commands that failed, by kind: timeout, connection, "
                                 "reply.",
                                 {"kind"})),
      reconnects(registry
                     .AddCounter("tokenstatus_redis_reconnects_total",
                                 "Times a Redis client connected again after losing its "
                                 "connections (each of the server's two clients counts).")
                     .Get()) {
  for (const char* kind : {"timeout", "connection", "reply"}) errors.With({kind});
}

void RedisMetrics::Record(const std::string& command, absl::Time started, bool failed,
                          bool timed_out, const redisReply* reply) {
  command_seconds.With({absl::AsciiStrToUpper(command)}).ObserveSeconds(absl::Now() - started);
  if (failed) {
    errors.With({timed_out ? "timeout" : "connection"}).Increment();
  } else if (reply != nullptr && reply->type == REDIS_REPLY_ERROR &&
             !absl::StartsWith(absl::string_view(reply->str, reply->len), "NOSCRIPT")) {
    // (NOSCRIPT is how a script gets loaded: EVALSHA, then EVAL once. Not an error.)
    errors.With({"reply"}).Increment();
  }
}

}  // namespace tokenstatus
