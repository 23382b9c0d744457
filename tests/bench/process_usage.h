#pragma once

#include <cstdint>

#include "absl/time/time.h"

namespace tokenstatus::bench {

// CPU time (user + system, all threads) this process has used so far.
absl::Duration OwnCpu();

// CPU time (user + system, all threads) process `pid` has used so far, from /proc/<pid>/stat (in
// clock ticks, 10 ms here); zero if `pid` is 0 or the value cannot be read.
absl::Duration ProcessCpu(int pid);

// Resident memory (VmRSS, /proc/<pid>/status) of process `pid` in KiB; 0 if `pid` is 0 or the
// value cannot be read.
int64_t ResidentKiB(int pid);

}  // namespace tokenstatus::bench
