#include "core/backoff.h"

#include "absl/random/random.h"
#include "gtest/gtest.h"

namespace tokenstatus {
namespace {

TEST(BackoffTest, GrowsFromInitialToMaxWithinJitterBounds) {
  const Backoff backoff{
      .initial = absl::Milliseconds(100), .max = absl::Milliseconds(1000), .multiplier = 2.0};
  absl::BitGen gen;
  const absl::Duration nominal[] = {absl::Milliseconds(100),  absl::Milliseconds(200),
                                    absl::Milliseconds(400),  absl::Milliseconds(800),
                                    absl::Milliseconds(1000), absl::Milliseconds(1000)};
  for (int retry = 1; retry <= 6; ++retry) {
    for (int i = 0; i < 200; ++i) {
      const absl::Duration delay = backoff.Delay(retry, gen);
      EXPECT_GE(delay, nominal[retry - 1] / 2) << "retry " << retry;
      EXPECT_LE(delay, nominal[retry - 1]) << "retry " << retry;
    }
  }
}

TEST(BackoffTest, Jitters) {
  const Backoff backoff;
  absl::BitGen gen;
  const absl::Duration first = backoff.Delay(3, gen);
  bool differs = false;
  for (int i = 0; i < 100 && !differs; ++i) differs = backoff.Delay(3, gen) != first;
  EXPECT_TRUE(differs);
}

TEST(BackoffTest, AVeryLongOutageStaysAtMax) {
  const Backoff backoff{.initial = absl::Milliseconds(50), .max = absl::Seconds(2)};
  absl::BitGen gen;
  for (int retry : {30, 64, 1000, 1 << 30}) {
    const absl::Duration delay = backoff.Delay(retry, gen);
    EXPECT_GE(delay, absl::Seconds(1)) << "retry " << retry;
    EXPECT_LE(delay, absl::Seconds(2)) << "retry " << retry;
  }
}

TEST(BackoffTest, RetriesBelowOneCountAsTheFirst) {
  const Backoff backoff{.initial = absl::Milliseconds(100), .max = absl::Seconds(2)};
  absl::BitGen gen;
  for (int retry : {0, -5}) {
    const absl::Duration delay = backoff.Delay(retry, gen);
    EXPECT_GE(delay, absl::Milliseconds(50));
    EXPECT_LE(delay, absl::Milliseconds(100));
  }
}

}  // namespace
}  // namespace tokenstatus
