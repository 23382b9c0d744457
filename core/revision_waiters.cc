#include "core/revision_waiters.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/status_util.h"

namespace tokenstatus {
namespace {}  // namespace

RevisionWaiters::RevisionWaiters(std::string copy, absl::AnyInvocable<int64_t() const> current)
    : copy_(std::move(copy)),
      current_(std::move(current)),
      deadline_thread_([this] { RunDeadlines(); }) {}

absl::Status RevisionWaiters::NotReached(int64_t wanted, int64_t reached,
                                         bool condition_unmet) const {
  std::string message;
  if (reached < 0) {
    message = absl::StrCat("revision ", wanted, " not reached by the deadline: ", copy_,
                           " has not loaded");
  } else if (condition_unmet) {
    message = absl::StrCat("revision ", wanted, " not reached by the deadline on the expected ",
                           "history: ", copy_, " is at revision ", reached);
  } else {
    message = absl::StrCat("revision ", wanted, " not reached by the deadline: ", copy_,
                           " is at revision ", reached);
  }
  return MakeError(absl::StatusCode::kDeadlineExceeded, reason::kRevisionNotReached, message);
}

bool RevisionWaiters::Satisfied(Waiter& waiter, int64_t revision) {
  return revision >= 0 && revision >= waiter.min_revision &&
         (waiter.condition == nullptr || waiter.condition());
}

absl::Status RevisionWaiters::ShuttingDown() const {
  return MakeError(absl::StatusCode::kUnavailable, reason::kServerShuttingDown,
                   absl::StrCat(copy_, " is shutting down"));
}

RevisionWaiters::~RevisionWaiters() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    cv_.Signal();
  }
  deadline_thread_.join();
  FailAll();
}

void RevisionWaiters::Add(int64_t min_revision, absl::Time deadline, Done done,
                          Condition condition) {
  absl::Status now;
  {
    absl::MutexLock lock(&mu_);
    const int64_t at = current_();
    Waiter waiter{min_revision, deadline, std::move(done), std::move(condition)};
    if (shut_down_) {
      now = ShuttingDown();
    } else if (Satisfied(waiter, at)) {
      now = absl::OkStatus();
    } else if (deadline <= absl::Now()) {
      now = NotReached(min_revision, at, at >= min_revision);
    } else {
      const uint64_t id = next_id_++;
      const bool earliest = by_deadline_.empty() || deadline < by_deadline_.begin()->first;
      waiters_.emplace(id, std::move(waiter));
      by_revision_.emplace(min_revision, id);
      by_deadline_.emplace(deadline, id);
      if (earliest) cv_.Signal();
      return;
    }
    done = std::move(waiter.done);
  }
  done(std::move(now));
}

void RevisionWaiters::Changed() {
  std::vector<Done> ready;
  {
    absl::MutexLock lock(&mu_);
    const int64_t revision = current_();
    if (revision < 0) return;
    // Waiters whose condition is not met yet stay, at the front; the others reached go.
    for (auto it = by_revision_.begin(); it != by_revision_.end() && it->first <= revision;) {
      const uint64_t id = (it++)->second;
      if (Satisfied(waiters_.at(id), revision)) ready.push_back(Take(id));
    }
  }
  for (Done& done : ready) done(absl::OkStatus());
}

void RevisionWaiters::Shutdown() { FailAll(); }

int RevisionWaiters::pending() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(waiters_.size());
}

RevisionWaiters::Done RevisionWaiters::Take(uint64_t id) {
  auto it = waiters_.find(id);
  Done done = std::move(it->second.done);
  by_revision_.erase({it->second.min_revision, id});
  by_deadline_.erase({it->second.deadline, id});
  waiters_.erase(it);
  return done;
}

void RevisionWaiters::FailAll() {
  std::vector<Done> pending;
  {
    absl::MutexLock lock(&mu_);
    shut_down_ = true;
    while (!waiters_.empty()) pending.push_back(Take(waiters_.begin()->first));
  }
  for (Done& done : pending) done(ShuttingDown());
}

void RevisionWaiters::RunDeadlines() {
  mu_.Lock();
  while (!stopping_) {
    if (by_deadline_.empty()) {
      cv_.Wait(&mu_);
      continue;
    }
    const absl::Time now = absl::Now();
    if (by_deadline_.begin()->first > now) {
      cv_.WaitWithDeadline(&mu_, by_deadline_.begin()->first);
      continue;
    }
    std::vector<std::pair<Done, absl::Status>> expired;
    const int64_t reached = current_();
    while (!by_deadline_.empty() && by_deadline_.begin()->first <= now) {
      const uint64_t id = by_deadline_.begin()->second;
      const int64_t wanted = waiters_.at(id).min_revision;
      absl::Status status = NotReached(wanted, reached, reached >= wanted);
      expired.emplace_back(Take(id), std::move(status));
    }
    mu_.Unlock();
    for (auto& [done, status] : expired) done(std::move(status));
    mu_.Lock();
  }
  mu_.Unlock();
}

}  // namespace tokenstatus
