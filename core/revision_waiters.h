#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace tokenstatus {

// Callbacks waiting, each with a deadline, for a copy of the tokens (the server's TokenMirror,
// token-sidecar's TokenCache) to reach a revision, so that a gRPC callback handler can wait
// without blocking its thread. The copy's position is read through `current` (its revision, or
// -1 while it has no complete state); whoever changes the copy calls Changed() afterwards.
// `copy` names it in messages ("the mirror", "the cache").
//
// Thread-safe. `current` is called under the waiters' lock, so it must not call back into this
// object; a `done` is always called with no lock held.
class RevisionWaiters {
 public:
  using Done = absl::AnyInvocable<void(absl::Status)>;
  // A further test of a waiter, made once the revision is reached (see Add).
  using Condition = absl::AnyInvocable<bool()>;

  // Starts the deadline thread.
  RevisionWaiters(std::string copy, absl::AnyInvocable<int64_t() const> current);
  // Fails the waiters still pending (as Shutdown does) and joins the deadline thread.
  ~RevisionWaiters();

  RevisionWaiters(const RevisionWaiters&) = delete;
  RevisionWaiters& operator=(const RevisionWaiters&) = delete;

  // Calls `done` exactly once: with OK as soon as current() >= `min_revision` (at once, on the
  // calling thread, if it already is), else with DEADLINE_EXCEEDED / REVISION_NOT_REACHED at
  // `deadline` (at once if it has passed; the message naming both revisions), or with UNAVAILABLE /
  // SERVER_SHUTTING_DOWN after Shutdown() (and for the waiters pending at destruction). `done` runs
  // on the calling thread, the thread calling Changed() or the deadline thread; it must not block.
  //
  // With a `condition`, reaching the revision is not enough: `done` gets OK only once
  // `condition()` is also true, tested when the revision is reached and again after every
  // Changed() until it is (or the deadline passes). `condition` runs under the waiters' lock
  // (like `current`: it must not call back into this object, and may take only locks that are
  // never held while calling in here).
  void Add(int64_t min_revision, absl::Time deadline, Done done, Condition condition = nullptr);

  // The copy changed: calls the `done` of every waiter current() now satisfies.
  void Changed();

  // Fails every pending waiter, and every later one at once, with UNAVAILABLE /
  // SERVER_SHUTTING_DOWN. Idempotent.
  void Shutdown();

  // Waiters pending.
  int pending() const;

 private:
  struct Waiter {
    int64_t min_revision = 0;
    absl::Time deadline;
    Done done;
    Condition condition;  // may be empty
  };

  absl::Status NotReached(int64_t wanted, int64_t reached, bool condition_unmet) const;
  // Whether `waiter` is satisfied at `revision` (current(); < 0 while the copy is incomplete).
  static bool Satisfied(Waiter& waiter, int64_t revision);
  absl::Status ShuttingDown() const;
  // Removes the waiter `id`; returns its `done`.
  Done Take(uint64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Fails every pending waiter with UNAVAILABLE / SERVER_SHUTTING_DOWN and refuses new ones.
  void FailAll() ABSL_LOCKS_EXCLUDED(mu_);
  // The deadline thread: fails expired waiters until stopped.
  void RunDeadlines() ABSL_LOCKS_EXCLUDED(mu_);

  const std::string copy_;
  const absl::AnyInvocable<int64_t() const> current_;
  mutable absl::Mutex mu_;
  absl::CondVar cv_;                             // a new earliest deadline, or stopping
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;  // refuse new waiters
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;   // the deadline thread ends
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<uint64_t, Waiter> waiters_ ABSL_GUARDED_BY(mu_);
  std::set<std::pair<int64_t, uint64_t>> by_revision_ ABSL_GUARDED_BY(mu_);
  std::set<std::pair<absl::Time, uint64_t>> by_deadline_ ABSL_GUARDED_BY(mu_);

  std::thread deadline_thread_;  // started last, joined by the destructor
};

}  // namespace tokenstatus
