#include "client/tokenctl/interrupts.h"

#include <pthread.h>
#include <signal.h>

#include <utility>

namespace tokenstatus::tokenctl {
namespace {

// SIGINT and SIGTERM, and SIGUSR1, which wakes the watcher thread when it is stopped.
sigset_t WatchedSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  return set;
}

}  // namespace

void BlockInterrupts() {
  const sigset_t set = WatchedSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

void UnblockInterrupts() {
  const sigset_t set = WatchedSignals();
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

InterruptWatcher::InterruptWatcher(absl::AnyInvocable<void()> on_interrupt)
    : on_interrupt_(std::move(on_interrupt)), thread_([this] { Run(); }) {}

InterruptWatcher::~InterruptWatcher() {
  stopping_.store(true);
  pthread_kill(thread_.native_handle(), SIGUSR1);
  thread_.join();
}

void InterruptWatcher::Run() {
  const sigset_t set = WatchedSignals();
  while (true) {
    int signo = 0;
    if (sigwait(&set, &signo) != 0) continue;
    if (stopping_.load()) return;
    if (signo == SIGUSR1) continue;
    interrupted_.store(true);
    on_interrupt_();
    return;
  }
}

}  // namespace tokenstatus::tokenctl
