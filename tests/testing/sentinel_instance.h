#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/testing/redis_instance.h"

namespace tokenstatus::testing {

// How a test sentinel watches its primary ({} initializers: any field may be omitted).
struct SentinelOptions {
  std::string master_name{"tokenstatus"};
  int quorum{2};
  // SENTINEL down-after-milliseconds and failover-timeout: short, so that a test's failover
  // takes seconds.
  absl::Duration down_after{absl::Milliseconds(1000)};
  absl::Duration failover_timeout{absl::Seconds(3)};
};

// A throwaway redis-sentinel (a RedisInstance in sentinel mode) on a free loopback port,
// monitoring a primary. Thread-compatible; Command() is thread-safe.
class SentinelInstance {
 public:
  // Starts a sentinel monitoring `primary` ("127.0.0.1:<port>") and returns once it answers.
  static absl::StatusOr<std::unique_ptr<SentinelInstance>> Start(const std::string& primary,
                                                                 SentinelOptions options = {});

  // "127.0.0.1:<port>".
  std::string address() const { return process_->address(); }
  const SentinelOptions& options() const { return options_; }
  // Where this sentinel says the primary is now ("host:port").
  absl::StatusOr<std::string> PrimaryAddress();
  // How many replicas of the primary, and how many other sentinels, this sentinel knows.
  absl::StatusOr<int> KnownReplicas();
  absl::StatusOr<int> KnownSentinels();
  // The last `lines` lines of the sentinel's log, for error messages.
  std::string LogTail(size_t lines) const { return process_->LogTail(lines); }

 private:
  SentinelInstance(std::unique_ptr<RedisInstance> process, SentinelOptions options)
      : process_(std::move(process)), options_(std::move(options)) {}
  // The number of entries of SENTINEL <what> <master name>.
  absl::StatusOr<int> CountOf(const std::string& what);

  std::unique_ptr<RedisInstance> process_;
  const SentinelOptions options_;
};

}  // namespace tokenstatus::testing
