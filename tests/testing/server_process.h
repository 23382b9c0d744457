#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "tests/testing/subprocess.h"

namespace tokenstatus::testing {

// ({} initializers: designated initializers may omit any field without a GCC warning.)
struct ServerOptions {
  std::string redis_address{};             // --redis (empty: not given; see --redis_sentinels)
  std::string key_prefix{};                // --redis_key_prefix (empty: the server's default)
  std::vector<std::string> extra_flags{};  // e.g. {"--redis_timeout=200ms"}
  // --listen. Empty: "127.0.0.1:0" (a free port the server picks). A fixed "127.0.0.1:<port>"
  // lets a test start a server again on the address of one it stopped (clients reconnect).
  std::string listen_address{};
};

// A real tokenstatus-server process (TOKENSTATUS_SERVER_BINARY) listening on a free loopback
// port chosen by the server itself (--listen=127.0.0.1:0), or on options.listen_address. Its
// stderr (and stdout) is collected line by line and echoed to the test's stderr prefixed with
// "[server] ".
// The process is SIGKILLed if the thread that started it exits (see Subprocess).
//
// Thread-compatible, except LogLines() and WaitForLogLine(), which are thread-safe.
class ServerProcess {
 public:
  // Starts the server and returns once it has logged the line "listening on <address>".
  // Errors (with the server's log in the message): UNAVAILABLE if it exits first,
  // DEADLINE_EXCEEDED if no such line appears within 20 s (it is then killed).
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(ServerOptions options);

  // The same for any process that logs "listening on <address>" once it serves (e.g.
  // token-sidecar): runs `argv` (argv[0] the binary) and echoes its lines prefixed "[<name>] ".
  static absl::StatusOr<std::unique_ptr<ServerProcess>> StartCommand(std::vector<std::string> argv,
                                                                     std::string name);

  // SIGKILLs the process if it is still running.
  ~ServerProcess();

  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // "127.0.0.1:<port>".
  std::string address() const;
  // A new insecure channel to address().
  std::shared_ptr<grpc::Channel> NewChannel() const;
  // The server's process id.
  int pid() const;

  // Sends `signo` and waits up to `timeout` for the exit; returns the wait status (waitpid(2)
  // format), or DEADLINE_EXCEEDED (the process is then SIGKILLed).
  absl::StatusOr<int> Stop(int signo, absl::Duration timeout = absl::Seconds(10));
  // Sends SIGTERM and waits up to `timeout` for the exit; returns the exit code, or an error
  // if it did not exit in time (DEADLINE_EXCEEDED; then it is SIGKILLed) or was killed by a
  // signal (INTERNAL).
  absl::StatusOr<int> Terminate(absl::Duration timeout = absl::Seconds(10));
  // SIGKILLs the process and waits for it.
  void Kill();

  // Every line the server has written to stderr so far.
  std::vector<std::string> LogLines() const;
  // Waits until a stderr line containing `needle` appears; false after `timeout`.
  bool WaitForLogLine(const std::string& needle, absl::Duration timeout);

 private:
  ServerProcess(std::unique_ptr<Subprocess> process, std::string name, int log_fd);

  // The reader thread: splits the log pipe into lines until EOF.
  void ReadLog(int fd);
  // Records one line; notes the listen address if it is the "listening on " line.
  void AddLine(std::string line) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether some line contains `needle`.
  bool HasLine(absl::string_view needle) const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  std::unique_ptr<Subprocess> process_;
  const std::string name_;  // in echoed lines and messages

  mutable absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
  std::string address_ ABSL_GUARDED_BY(mu_);      // empty until the "listening on " line
  bool log_closed_ ABSL_GUARDED_BY(mu_) = false;  // the pipe reached EOF (the process exited)

  // Declared last: it starts in the constructor and uses every member above.
  std::thread reader_;
};

}  // namespace tokenstatus::testing
