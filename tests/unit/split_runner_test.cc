#include "server/mirror/split_runner.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace tokenstatus {
namespace {

// Runs one split and returns, per index, how often it was visited, and the threads that ran.
struct Visits {
  std::vector<int> count;
  std::vector<std::thread::id> threads;
};

Visits RunOnce(SplitRunner& runner, size_t n, size_t min_split) {
  Visits visits;
  visits.count.assign(n, 0);
  absl::Mutex mu;
  runner.Run(n, min_split, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) ++visits.count[i];  // disjoint ranges: no lock needed
    absl::MutexLock lock(&mu);
    visits.threads.push_back(std::this_thread::get_id());
  });
  return visits;
}

TEST(SplitRunnerTest, VisitsEveryIndexExactlyOnceOnTwoThreads) {
  SplitRunner runner;
  for (size_t n : {2u, 3u, 257u, 10000u}) {
    Visits visits = RunOnce(runner, n, /*min_split=*/2);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(visits.count[i], 1) << "n=" << n << " i=" << i;
    ASSERT_EQ(visits.threads.size(), 2u);
    EXPECT_NE(visits.threads[0], visits.threads[1]) << "the halves ran on two threads";
  }
}

TEST(SplitRunnerTest, SmallRangesRunOnTheCallingThreadAlone) {
  SplitRunner runner;
  Visits visits = RunOnce(runner, 100, /*min_split=*/256);
  for (int count : visits.count) ASSERT_EQ(count, 1);
  ASSERT_EQ(visits.threads.size(), 1u);
  EXPECT_EQ(visits.threads[0], std::this_thread::get_id());
}

TEST(SplitRunnerTest, ReturnsOnlyOnceTheHelpersHalfIsDone) {
  SplitRunner runner;
  for (int round = 0; round < 200; ++round) {
    std::atomic<int> done{0};
    runner.Run(64, 2, [&](size_t begin, size_t end) {
      if (begin > 0) std::this_thread::yield();  // the helper's half lags a little
      done.fetch_add(static_cast<int>(end - begin));
    });
    ASSERT_EQ(done.load(), 64) << "round " << round;
  }
}

}  // namespace
}  // namespace tokenstatus
