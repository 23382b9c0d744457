#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace tokenstatus::testing {

// Returns the absolute path of the executable `name`: `name` itself if it contains a '/',
// else the first match on PATH. NOT_FOUND if there is none.
absl::StatusOr<std::string> FindExecutable(absl::string_view name);

// How to start a Subprocess.
struct SpawnOptions {
  // argv[0] is the executable: a path, or a name looked up with FindExecutable.
  std::vector<std::string> argv;
  // "NAME=value" entries added to (or overriding) the inherited environment.
  std::vector<std::string> extra_env;
  // Descriptors that become the child's stdout / stderr; -1 inherits the test's own.
  int stdout_fd = -1;
  int stderr_fd = -1;
};

// A child process started with fork/exec. The child inherits no descriptor other than 0, 1 and
// 2, and is SIGKILLed by the kernel when the thread that spawned it exits (PR_SET_PDEATHSIG),
// so a test that crashes or is killed by a ctest timeout leaks no process. Spawn children from
// the test's main thread or from a thread that outlives them.
//
// Thread-compatible: one thread drives it.
class Subprocess {
 public:
  // Starts the child. Errors: NOT_FOUND (no such executable), INTERNAL (fork/exec failed).
  static absl::StatusOr<std::unique_ptr<Subprocess>> Spawn(const SpawnOptions& options);

  // Kills the child if it still runs (see Kill).
  ~Subprocess();

  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  // A descriptor that poll(2) reports readable once the child has exited (a pidfd).
  int exit_fd() const { return pidfd_; }

  // Sends `signo` to the child unless it has already been reaped.
  void Signal(int signo);
  // Waits up to `timeout` for the child to exit and returns its wait status (waitpid(2)
  // format; the same value on every later call). DEADLINE_EXCEEDED if it still runs.
  absl::StatusOr<int> Wait(absl::Duration timeout);
  // SIGKILLs the child and reaps it. No-op once it has been reaped.
  void Kill();

 private:
  Subprocess(pid_t pid, int pidfd) : pid_(pid), pidfd_(pidfd) {}

  const pid_t pid_;
  const int pidfd_;
  bool reaped_ = false;
  int wait_status_ = 0;
};

// "exit code 3" or "killed by signal 9 (Killed)", for messages.
std::string DescribeWaitStatus(int wait_status);

// The outcome of RunCommand.
struct CommandResult {
  int exit_code = -1;  // -1 if the command was killed by a signal
  std::string out;     // everything it wrote to stdout
  std::string err;     // everything it wrote to stderr
};

// Runs `argv` (argv[0] as in SpawnOptions) to completion and collects its output. Errors:
// NOT_FOUND (no such executable); DEADLINE_EXCEEDED if it runs longer than `timeout` (it is
// then killed; the message holds the output so far); INTERNAL for system call failures.
absl::StatusOr<CommandResult> RunCommand(std::vector<std::string> argv, absl::Duration timeout);

}  // namespace tokenstatus::testing
