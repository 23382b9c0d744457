#include "core/process_signals.h"

#include <pthread.h>

namespace tokenstatus {

sigset_t BlockSignalsForSigwait(std::initializer_list<int> signals) {
  sigset_t set;
  sigemptyset(&set);
  for (int signo : signals) sigaddset(&set, signo);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  for (int signo : signals) signal(signo, SIG_DFL);
  return set;
}

}  // namespace tokenstatus
