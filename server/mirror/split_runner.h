#pragma once

#include <cstddef>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"

namespace tokenstatus {

// Runs one loop over [0, n) on two threads: the caller's and one helper thread it owns, each
// taking half of the range, and returns when both halves are done. For work that must finish
// before the caller goes on (the watch hub's fan-out of one batch, before the next) but that one
// core cannot finish fast enough (10,000 stream writes per change).
//
// Run() may be called from one thread at a time. `fn` must be safe to call concurrently for
// disjoint ranges.
class SplitRunner {
 public:
  // `helper_nice` > 0 lowers the helper thread's priority by that much (LowerThisThreadPriority;
  // the caller lowers its own).
  explicit SplitRunner(int helper_nice = 0);
  ~SplitRunner();  // stops and joins the helper thread

  SplitRunner(const SplitRunner&) = delete;
  SplitRunner& operator=(const SplitRunner&) = delete;

  // Calls fn(begin, end) for [0, n/2) on the calling thread and [n/2, n) on the helper (or the
  // whole range on the calling thread when n < min_split).
  void Run(size_t n, size_t min_split, absl::FunctionRef<void(size_t, size_t)> fn);

 private:
  void HelperLoop();
  bool HelperHasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  // The helper's half while one is pending or running; null when idle.
  const absl::FunctionRef<void(size_t, size_t)>* fn_ ABSL_GUARDED_BY(mu_) = nullptr;
  size_t begin_ ABSL_GUARDED_BY(mu_) = 0;
  size_t end_ ABSL_GUARDED_BY(mu_) = 0;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread helper_;  // last: started once the members above exist
};

}  // namespace tokenstatus
