#pragma once

namespace tokenstatus {

// Makes the calling thread yield the CPU to the process's other threads when they compete for
// it: raises its nice value by `increment` (Linux schedules threads, each with its own nice
// value; a thread at nice 5 gets about a third of the share of one at 0). For background work
// that must not delay the threads that answer calls. Best effort: if setpriority(2) refuses,
// logs a warning and the thread runs on at its old priority.
void LowerThisThreadPriority(int increment);

}  // namespace tokenstatus
