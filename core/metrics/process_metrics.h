#pragma once

#include "absl/strings/string_view.h"
#include "core/metrics/registry.h"

namespace tokenstatus::metrics {

// Adds the standard process metrics, read from /proc/self at every scrape (Linux):
// process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
// process_open_fds, process_max_fds, process_start_time_seconds; and
// tokenstatus_build_info{program, version, commit} = 1. A value that cannot be read is left
// at its last reading (0 at first).
void AddProcessMetrics(Registry& registry, absl::string_view program);

}  // namespace tokenstatus::metrics
