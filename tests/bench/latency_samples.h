#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/time/time.h"

namespace tokenstatus::bench {

// Latency samples with exact percentiles (all samples are kept; a benchmark point of a few
// seconds holds at most a few million). Thread-compatible: one thread adds, or several threads
// each fill their own and one merges.
class LatencySamples {
 public:
  void Reserve(size_t count) { nanos_.reserve(count); }
  void Add(absl::Duration latency);
  // Appends every sample of `other`.
  void Merge(const LatencySamples& other);

  size_t count() const { return nanos_.size(); }

  // Returns the nearest-rank `quantile` (0 < quantile <= 1; 0.5 is the median, 0.99 the 99th
  // percentile): the smallest sample that at least `quantile` of all samples do not exceed.
  // Returns absl::ZeroDuration() when there is no sample. Sorts the samples on first use.
  absl::Duration Percentile(double quantile);

 private:
  std::vector<int64_t> nanos_;
  bool sorted_ = true;
};

}  // namespace tokenstatus::bench
