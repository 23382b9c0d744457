#include "server/service/change_metrics.h"

namespace tokenstatus {

ChangeMetrics::ChangeMetrics(metrics::Registry& registry)
    : changes(registry.AddCounter("tokenstatus_changes_total",
                                  "Changes acknowledged, by type: created, enabled, disabled, "
                                  "deleted.",
                                  {"type"})),
      commit_seconds(registry
                         .AddHistogram("tokenstatus_change_commit_seconds",
                                       "The store call of a change: the script, its AOF fsync "
                                       "and replica acknowledgements.",
                                       {})
                         .Get()),
      visible_seconds(registry
                          .AddHistogram("tokenstatus_change_visible_seconds",
                                        "From a change call's start until this replica's mirror "
                                        "showed the change.",
                                        {})
                          .Get()) {
  for (const char* type : {"created", "enabled", "disabled", "deleted"}) changes.With({type});
}

}  // namespace tokenstatus
