#include "server/watch/watch_metrics.h"

#include "core/status_util.h"

namespace tokenstatus {

WatchMetrics::WatchMetrics(metrics::Registry& registry)
    : watchers(registry.AddGauge("tokenstatus_watchers", "Watch streams open now.").Get()),
      events_sent(registry
                      .AddCounter("tokenstatus_watch_events_sent_total",
                                  "Change events queued to watch streams (one per stream).")
                      .Get()),
      ended(registry.AddCounter("tokenstatus_watchers_ended_total",
                                "Watch streams that ended, by why: fell_behind, limit, shutdown, "
                                "client_gone, reset, error.",
                                {"reason"})),
      fanout_seconds(registry
                         .AddHistogram("tokenstatus_watch_fanout_seconds",
                                       "From a change's commit (update_time) until the write of "
                                       "it to the last watch stream started.",
                                       {})
                         .Get()),
      queue_messages(registry
                         .AddGauge("tokenstatus_watch_queue_messages",
                                   "Messages queued on the longest watch stream queue, as of "
                                   "the last fan-out.")
                         .Get()) {
  for (const char* reason : {"fell_behind", "limit", "shutdown", "client_gone", "reset", "error"}) {
    ended.With({reason});  // every reason shows, at 0, from the first scrape
  }
}

const char* WatchMetrics::EndReasonOf(const absl::Status& status) {
  if (status.ok()) return "reset";
  const std::string reason = ErrorReason(status);
  if (reason == reason::kWatcherFellBehind) return "fell_behind";
  if (reason == reason::kTooManyWatchers || reason == reason::kSnapshotBudgetExhausted) {
    return "limit";
  }
  if (reason == reason::kServerShuttingDown) return "shutdown";
  if (absl::IsCancelled(status)) return "client_gone";
  return "error";
}

}  // namespace tokenstatus
