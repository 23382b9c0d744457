#include "tests/bench/latency_samples.h"

#include "gtest/gtest.h"

namespace tokenstatus::bench {
namespace {

TEST(LatencySamplesTest, EmptyIsZero) {
  LatencySamples samples;
  EXPECT_EQ(samples.count(), 0u);
  EXPECT_EQ(samples.Percentile(0.5), absl::ZeroDuration());
}

TEST(LatencySamplesTest, NearestRankOverUnsortedSamples) {
  LatencySamples samples;
  // 1..100 ms, added out of order.
  for (int i = 100; i >= 1; i -= 2) samples.Add(absl::Milliseconds(i));
  for (int i = 1; i <= 99; i += 2) samples.Add(absl::Milliseconds(i));
  ASSERT_EQ(samples.count(), 100u);
  EXPECT_EQ(samples.Percentile(0.50), absl::Milliseconds(50));
  EXPECT_EQ(samples.Percentile(0.99), absl::Milliseconds(99));
  EXPECT_EQ(samples.Percentile(1.0), absl::Milliseconds(100));
  EXPECT_EQ(samples.Percentile(0.001), absl::Milliseconds(1));
}

TEST(LatencySamplesTest, MergeAddsAfterSorting) {
  LatencySamples a;
  a.Add(absl::Microseconds(30));
  a.Add(absl::Microseconds(10));
  EXPECT_EQ(a.Percentile(0.5), absl::Microseconds(10));  // sorts
  LatencySamples b;
  b.Add(absl::Microseconds(5));
  b.Add(absl::Microseconds(7));
  a.Merge(b);
  ASSERT_EQ(a.count(), 4u);
  EXPECT_EQ(a.Percentile(0.5), absl::Microseconds(7));
  EXPECT_EQ(a.Percentile(0.25), absl::Microseconds(5));
}

}  // namespace
}  // namespace tokenstatus::bench
