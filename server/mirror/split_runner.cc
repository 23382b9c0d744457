#include "server/mirror/split_runner.h"

#include "server/mirror/thread_priority.h"

namespace tokenstatus {

SplitRunner::SplitRunner(int helper_nice)
    : helper_([this, helper_nice] {
        if (helper_nice > 0) LowerThisThreadPriority(helper_nice);
        HelperLoop();
      }) {}

SplitRunner::~SplitRunner() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  helper_.join();
}

void SplitRunner::Run(size_t n, size_t min_split, absl::FunctionRef<void(size_t, size_t)> fn) {
  if (n < min_split || n < 2) {
    fn(0, n);
    return;
  }
  const size_t half = n / 2;
  {
    absl::MutexLock lock(&mu_);
    fn_ = &fn;
    begin_ = half;
    end_ = n;
    done_ = false;
  }
  fn(0, half);
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&done_));
  fn_ = nullptr;
}

bool SplitRunner::HelperHasWork() const { return stop_ || (fn_ != nullptr && !done_); }

void SplitRunner::HelperLoop() {
  while (true) {
    const absl::FunctionRef<void(size_t, size_t)>* fn;
    size_t begin;
    size_t end;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &SplitRunner::HelperHasWork));
      if (stop_) return;
      fn = fn_;
      begin = begin_;
      end = end_;
    }
    (*fn)(begin, end);
    absl::MutexLock lock(&mu_);
    done_ = true;
  }
}

}  // namespace tokenstatus
