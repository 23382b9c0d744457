#pragma once

#include <signal.h>

#include <initializer_list>

namespace tokenstatus {

// Blocks `signals` in the calling thread, and so in every thread it creates later, and restores
// their default disposition (a shell starts background jobs with SIGINT ignored, and an ignored
// signal is discarded instead of waited for). Returns the set, for one thread to take them with
// sigwait(2): a signal handler may not call gRPC. Call first in main, before any thread starts.
sigset_t BlockSignalsForSigwait(std::initializer_list<int> signals);

}  // namespace tokenstatus
