#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tokenstatus::testing {

// CPU time (user + system, all threads) this process has used so far.
absl::Duration OwnCpu();

// CPU time (user + system, all threads) process `pid` has used so far, from /proc/<pid>/stat (in
// clock ticks, 10 ms here). NOT_FOUND if it cannot be read (no such process).
absl::StatusOr<absl::Duration> ProcessCpu(int pid);

// The CPU time (user + system) process `pid` uses from the meter's construction until Elapsed();
// zero if either reading fails (pid 0, a process gone). Not thread-safe.
class ProcessCpuMeter {
 public:
  explicit ProcessCpuMeter(int pid) : pid_(pid), start_(ProcessCpu(pid)) {}
  absl::Duration Elapsed() const;

 private:
  int pid_;
  absl::StatusOr<absl::Duration> start_;
};

// The resident set size (VmRSS, /proc/<pid>/status) of process `pid`, in KiB. NOT_FOUND if it
// cannot be read.
absl::StatusOr<int64_t> ResidentKiB(int pid);

}  // namespace tokenstatus::testing
