#pragma once

#include <atomic>
#include <thread>

#include "absl/functional/any_invocable.h"

namespace tokenstatus::tokenctl {

// SIGINT and SIGTERM for a process with gRPC threads: a signal handler may not call gRPC, so
// the signals are blocked in every thread and one thread takes them with sigwait(2).

// Blocks SIGINT, SIGTERM (and SIGUSR1, used internally) in the calling thread, and so in every
// thread it creates later. Call first in main, before anything starts a thread.
void BlockInterrupts();

// Unblocks them again in the calling thread: their default action (ending the process)
// applies again, since the process then has a thread that accepts them.
void UnblockInterrupts();

// Runs `on_interrupt` on its own thread when SIGINT or SIGTERM arrives (the first one only).
// The signals must be blocked in every thread (BlockInterrupts). Not thread-safe apart from
// interrupted().
class InterruptWatcher {
 public:
  explicit InterruptWatcher(absl::AnyInvocable<void()> on_interrupt);
  // Stops the thread (without calling on_interrupt) unless a signal already came.
  ~InterruptWatcher();

  InterruptWatcher(const InterruptWatcher&) = delete;
  InterruptWatcher& operator=(const InterruptWatcher&) = delete;

  // Whether SIGINT or SIGTERM has arrived. Thread-safe.
  bool interrupted() const { return interrupted_.load(); }

 private:
  void Run();

  absl::AnyInvocable<void()> on_interrupt_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> interrupted_{false};
  std::thread thread_;  // last: it uses every member above
};

}  // namespace tokenstatus::tokenctl
