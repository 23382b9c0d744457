#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "tests/testing/subprocess.h"

struct redisContext;

namespace tokenstatus::testing {

// One Redis reply, structured (RedisInstance::CommandReply).
struct RedisReply {
  enum class Type { kNil, kString, kInteger, kArray };
  Type type = Type::kNil;
  std::string str;                   // kString (bulk or status); kInteger: the decimal value
  std::vector<RedisReply> elements;  // kArray
};

// How RedisInstance::Start runs its server ({} initializers: any field may be omitted).
struct RedisInstanceOptions {
  // "127.0.0.1:<port>": start as a replica of that server (--replicaof); Start() then returns
  // once the replica has completed its first sync.
  std::string replica_of{};
  // Run redis-sentinel instead of redis-server, with this configuration (SENTINEL MONITOR
  // lines, ...) in a sentinel.conf it may rewrite; replica_of is then ignored. Start() returns
  // once the sentinel answers PING.
  std::string sentinel_config{};
};

// A throwaway redis-server (or redis-sentinel) for tests: loopback, a free port, its data (AOF,
// appendfsync always) in a fresh temporary directory that is removed on destruction.
//
// Thread-compatible: one test thread drives it, except Command() and CommandReply(), which
// are thread-safe (they share one connection under a mutex).
class RedisInstance {
 public:
  // Starts redis-server (from PATH) and returns once it is ready to accept connections (its
  // own systemd-style readiness notification, sent after it has loaded its data). Retries on
  // another port if a port picked as free was taken before redis-server could bind it.
  static absl::StatusOr<std::unique_ptr<RedisInstance>> Start(RedisInstanceOptions options = {});

  // Stops the server (SIGKILL if it does not exit on SHUTDOWN NOSAVE NOW; a sentinel is killed
  // at once) and removes its data.
  ~RedisInstance();

  RedisInstance(const RedisInstance&) = delete;
  RedisInstance& operator=(const RedisInstance&) = delete;

  int port() const;
  // The directory holding the server's data (AOF) and log; empty for an external Redis. A test
  // may copy the data out while it runs, or replace it while the server is killed (Kill(), then
  // Restart()).
  const std::string& dir() const { return dir_; }
  // "127.0.0.1:<port>", the form the server's --redis flag takes.
  std::string address() const;

  // SIGKILLs the server process and waits for it to exit. Data survives in the AOF.
  // Not possible on an external Redis (TOKENSTATUS_TEST_REDIS): records a test failure.
  void Kill();
  // Sends `signo` to the server process (e.g. SIGSTOP, SIGCONT). Not possible on an external
  // Redis: records a test failure.
  void Signal(int signo);
  // Starts the server again on the same port and directory; returns once it is ready.
  // FAILED_PRECONDITION on an external Redis.
  absl::Status Restart();

  // Runs one command synchronously (hiredis) and returns the reply flattened to strings:
  // a string/status/integer reply is one element; an array's elements are flattened
  // depth-first; nil is "". An error reply or a connection failure is an error status.
  absl::StatusOr<std::vector<std::string>> Command(const std::vector<std::string>& args);
  // The same, with the reply's structure kept (e.g. XRANGE entries). An error reply is
  // INTERNAL with the Redis message; a connection failure or timeout (10 s) is UNAVAILABLE.
  absl::StatusOr<RedisReply> CommandReply(const std::vector<std::string>& args);

  // The last `lines` lines of the server's log file, for error messages ("" for an external
  // Redis).
  std::string LogTail(size_t lines = 30) const;

 private:
  friend RedisInstance& SharedRedis();

  RedisInstance(std::string host, int port, std::string dir, RedisInstanceOptions options = {});

  // Starts redis-server on port_ in dir_ and waits until it is ready.
  absl::Status StartProcess();
  // Waits until this replica reports its link to the primary up (its first sync is done).
  absl::Status AwaitSync();
  // Drops the cached connection (the next command reconnects).
  void Disconnect();

  const std::string host_;
  int port_;
  const std::string dir_;  // empty for an external Redis, which has no process
  const RedisInstanceOptions options_;
  std::unique_ptr<Subprocess> process_;

  struct ContextDeleter {
    void operator()(redisContext* context) const;
  };
  absl::Mutex mu_;
  std::unique_ptr<redisContext, ContextDeleter> context_ ABSL_GUARDED_BY(mu_);
};

// The Redis that tests share: the one named by TOKENSTATUS_TEST_REDIS ("host:port", set by
// `make test`), else one started on first use for this test process. Tests sharing it isolate
// themselves with UniqueKeyPrefix(). Aborts the test process if it cannot be started.
RedisInstance& SharedRedis();

// A fresh key prefix with a hash tag, e.g. "{t-4821-9f3a-3}" (pid, a per-process random
// part, a counter), unique within this machine's run.
std::string UniqueKeyPrefix();

}  // namespace tokenstatus::testing
