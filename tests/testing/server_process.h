#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"

namespace tokenstatus::testing {

struct ServerOptions {
  std::string redis_address;             // --redis
  std::string key_prefix;                // --redis_key_prefix (empty: the server's default)
  std::vector<std::string> extra_flags;  // e.g. {"--redis_timeout=200ms"}
};

// A real tokenstatus-server process (TOKENSTATUS_SERVER_BINARY) listening on a free loopback
// port chosen by the server itself (--listen=127.0.0.1:0). Its stderr is collected line by
// line. Thread-compatible.
class ServerProcess {
 public:
  // Starts the server and returns once it has logged the line "listening on <address>".
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(ServerOptions options);

  // SIGKILLs the process if it is still running.
  ~ServerProcess();

  // "127.0.0.1:<port>".
  std::string address() const;
  // A new insecure channel to address().
  std::shared_ptr<grpc::Channel> NewChannel() const;

  // Sends SIGTERM and waits up to `timeout` for the exit; returns the exit code, or an error
  // if it did not exit in time (then it is SIGKILLed) or was killed by a signal.
  absl::StatusOr<int> Terminate(absl::Duration timeout = absl::Seconds(10));
  // SIGKILLs the process and waits for it.
  void Kill();

  // Every line the server has written to stderr so far.
  std::vector<std::string> LogLines() const;
  // Waits until a stderr line containing `needle` appears; false after `timeout`.
  bool WaitForLogLine(const std::string& needle, absl::Duration timeout);
};

}  // namespace tokenstatus::testing
