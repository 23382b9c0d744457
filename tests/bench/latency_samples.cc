#include "tests/bench/latency_samples.h"

#include <algorithm>
#include <cmath>

namespace tokenstatus::bench {

void LatencySamples::Add(absl::Duration latency) {
  nanos_.push_back(absl::ToInt64Nanoseconds(latency));
  sorted_ = false;
}

void LatencySamples::Merge(const LatencySamples& other) {
  nanos_.insert(nanos_.end(), other.nanos_.begin(), other.nanos_.end());
  sorted_ = false;
}

absl::Duration LatencySamples::Percentile(double quantile) {
  if (nanos_.empty()) return absl::ZeroDuration();
  if (!sorted_) {
    std::sort(nanos_.begin(), nanos_.end());
    sorted_ = true;
  }
  const double rank = std::ceil(quantile * static_cast<double>(nanos_.size()));
  const size_t index = static_cast<size_t>(std::clamp(rank, 1.0, double(nanos_.size()))) - 1;
  return absl::Nanoseconds(nanos_[index]);
}

}  // namespace tokenstatus::bench
