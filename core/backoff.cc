#include "core/backoff.h"

#include <algorithm>
#include <cmath>

#include "absl/random/distributions.h"

namespace tokenstatus {

absl::Duration Backoff::Delay(int retry, absl::BitGenRef gen) const {
  // Capped before multiplying out, so that a long outage's retry count cannot overflow.
  const double growth = std::pow(multiplier, std::clamp(retry - 1, 0, 64));
  const absl::Duration nominal = std::min(initial * std::min(growth, 1e9), max);
  return nominal * absl::Uniform(absl::IntervalClosed, gen, 0.5, 1.0);
}

}  // namespace tokenstatus
