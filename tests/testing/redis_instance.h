#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tokenstatus::testing {

// A throwaway redis-server for tests: loopback, a free port, its data (AOF, appendfsync
// always) in a fresh temporary directory that is removed on destruction.
//
// Thread-compatible: one test thread drives it.
class RedisInstance {
 public:
  // Starts redis-server and returns once it answers PING.
  static absl::StatusOr<std::unique_ptr<RedisInstance>> Start();

  // Stops the server (SIGKILL if it does not exit on SHUTDOWN NOSAVE) and removes its data.
  ~RedisInstance();

  int port() const;
  // "127.0.0.1:<port>", the form the server's --redis flag takes.
  std::string address() const;

  // SIGKILLs the server process and waits for it to exit. Data survives in the AOF.
  void Kill();
  // Starts the server again on the same port and directory; returns once it answers PING.
  absl::Status Restart();

  // Runs one command synchronously (hiredis) and returns the reply flattened to strings:
  // a string/status/integer reply is one element; an array's elements are flattened
  // depth-first; nil is "". An error reply or a connection failure is an error status.
  absl::StatusOr<std::vector<std::string>> Command(const std::vector<std::string>& args);
};

// The Redis that tests share: the one named by TOKENSTATUS_TEST_REDIS ("host:port", set by
// `make test`), else one started on first use for this test process. Tests sharing it isolate
// themselves with UniqueKeyPrefix().
RedisInstance& SharedRedis();

// A fresh key prefix with a hash tag, e.g. "{t-4821-3}", unique within this machine's run.
std::string UniqueKeyPrefix();

}  // namespace tokenstatus::testing
