#pragma once

#include "absl/time/time.h"
#include "core/metrics/registry.h"

namespace tokenstatus {

// The instruments of the change calls (CreateToken, Enable/Disable/DeleteToken), registered
// once per process.
struct ChangeMetrics {
  explicit ChangeMetrics(metrics::Registry& registry);

  // tokenstatus_changes_total{type}: changes acknowledged (type: created, enabled, disabled,
  // deleted).
  metrics::Family<metrics::Counter>& changes;
  // tokenstatus_change_commit_seconds: the store call (script, AOF fsync, replica wait).
  metrics::Histogram& commit_seconds;
  // tokenstatus_change_visible_seconds: from the call's start until this replica's mirror
  // showed the change (what the caller waits for).
  metrics::Histogram& visible_seconds;
};

}  // namespace tokenstatus
