#pragma once

#include "absl/random/bit_gen_ref.h"
#include "absl/time/time.h"

namespace tokenstatus {

// The jittered exponential backoff of every retry and reconnect in this repository: TokenClient's
// retries, TokenCache's stream reconnects, the Redis client's reconnects and the mirror's tailer.
//
// Example:
//   const Backoff backoff{.initial = absl::Milliseconds(100), .max = absl::Seconds(2)};
//   absl::SleepFor(backoff.Delay(failures, gen));
struct Backoff {
  absl::Duration initial = absl::Milliseconds(100);  // nominal delay before the first retry; > 0
  absl::Duration max = absl::Seconds(2);             // the largest nominal delay; >= initial
  double multiplier = 2.0;                           // growth per retry; >= 1

  // The delay before retry number `retry` (1 = the first; lower counts as 1): the nominal
  // min(initial * multiplier^(retry - 1), max), drawn uniformly from [nominal / 2, nominal] with
  // `gen`, so that many clients failing together do not retry in lockstep. Pure apart from
  // `gen`; thread-safe if `gen` is.
  absl::Duration Delay(int retry, absl::BitGenRef gen) const;
};

}  // namespace tokenstatus
