#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/time/time.h"

namespace tokenstatus::metrics {

// The three kinds of Prometheus instrument this code records with. Each is thread-safe and
// lock-free (relaxed atomics): recording never waits for a scrape, and a scrape never waits
// for a recording. They are created by a Registry (registry.h), which renders them.

// A count that only goes up (events, seconds spent).
class Counter {
 public:
  // Adds `by`, which must be >= 0 (a negative `by` is ignored: a counter never goes down).
  void Increment(double by = 1);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_ = 0;
};

// A value that goes up and down (a queue's length, a revision, 0/1 for up/down).
class Gauge {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Add(double delta);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_ = 0;
};

// Observations counted in buckets by upper bound (Prometheus's cumulative `le` buckets are
// built when read), with their sum and count.
class Histogram {
 public:
  // `bounds`: the buckets' upper bounds, finite and strictly increasing (the +Inf bucket is
  // implicit). Crashes on bounds that are not (a programming error).
  explicit Histogram(std::vector<double> bounds);

  void Observe(double value);
  void ObserveSeconds(absl::Duration duration) { Observe(absl::ToDoubleSeconds(duration)); }

  struct Snapshot {
    std::vector<uint64_t> cumulative;  // per bound, then +Inf: observations <= bound
    double sum = 0;
    uint64_t count = 0;  // == cumulative.back(): read from the buckets, so always consistent
  };
  // Observations made while this runs may be in the buckets and not yet in the sum (a scrape
  // is a moment, not a transaction); count and buckets always agree.
  Snapshot Read() const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  const std::vector<double> bounds_;
  const std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1, not cumulative
  std::atomic<double> sum_ = 0;
};

// Bucket bounds for durations in seconds, 100 µs to 10 s (1-2.5-5 steps): a Redis round trip,
// a change call and a fan-out land in the middle of it.
std::vector<double> SecondsBuckets();

}  // namespace tokenstatus::metrics
