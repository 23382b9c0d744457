#pragma once

#include "absl/status/status.h"
#include "core/metrics/registry.h"

namespace tokenstatus {

// The watch hub's instruments (tokenstatus_watch*), registered once per process.
struct WatchMetrics {
  explicit WatchMetrics(metrics::Registry& registry);

  metrics::Gauge& watchers;       // tokenstatus_watchers: streams registered now
  metrics::Counter& events_sent;  // tokenstatus_watch_events_sent_total: queued to streams
  metrics::Family<metrics::Counter>& ended;  // tokenstatus_watchers_ended_total{reason}
  metrics::Histogram& fanout_seconds;        // commit -> the last stream write started for a change
  metrics::Gauge& queue_messages;            // the longest stream queue after the last fan-out

  // The `reason` label of a stream that ended with `status`: fell_behind, limit (refused by a
  // watcher or snapshot limit), shutdown, client_gone (cancelled by the client or the
  // transport), reset (ended OK after a RESET without initial state), error (anything else).
  static const char* EndReasonOf(const absl::Status& status);
};

}  // namespace tokenstatus
