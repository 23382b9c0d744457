#pragma once

// A WatchTokens client as a careful cache would write one, recording everything it receives: it
// starts with a snapshot, resumes after a lost stream from the last revision it was up to date
// with (since_revision + epoch + since_chain, the history mark of that message), starts over
// after a RESET, and drops a stream that stayed silent for longer than stale_after (a server that
// stopped answering). Used in the chaos test process and in the separate watcher process
// (chaos_watcher_main.cc), whose records go to a file in the text form below.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "apitoken/v1/token_service.grpc.pb.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "tests/chaos/history.h"

namespace tokenstatus::chaos {

// ({} initializers: designated initializers may omit any field without a GCC warning.)
struct WatchLoopOptions {
  std::string account{};  // "" = every account
  absl::Duration progress_interval = absl::Milliseconds(200);
  // A stream with no message for this long is cancelled and resumed.
  absl::Duration stale_after = absl::Seconds(2);
  // Between the end of a stream and the next one.
  absl::Duration reconnect_delay = absl::Milliseconds(100);
};

// A channel to `address` that reconnects within 100..500 ms (gRPC's default backoff reaches 120 s)
// on its own connection.
std::shared_ptr<grpc::Channel> NewChaosChannel(const std::string& address);
// The same, reading as little ahead as HTTP/2 allows (no BDP probing, a 16 KiB stream window): a
// client on it that stops reading makes the server's writes wait after a few messages, so the
// server's queue for the stream fills (a slow consumer) instead of the kernel's socket buffers.
std::shared_ptr<grpc::Channel> NewNarrowChaosChannel(const std::string& address);

// Follows WatchTokens on its own thread (plus a watchdog thread for silent streams) and hands
// every record to `sink`, on the loop's thread, in order. Thread-safe.
class WatchLoop {
 public:
  using Sink = std::function<void(const WatchRecord&)>;

  WatchLoop(std::shared_ptr<grpc::Channel> channel, WatchLoopOptions options, Sink sink);
  // Stop().
  ~WatchLoop();
  WatchLoop(const WatchLoop&) = delete;
  WatchLoop& operator=(const WatchLoop&) = delete;

  // Cancels the stream and joins the threads; no record is handed to the sink after it returns.
  void Stop();

  // Waits until the loop is synced at revision >= `revision` of `epoch` (any epoch if empty);
  // false after `timeout`.
  bool AwaitRevision(int64_t revision, const std::string& epoch, absl::Duration timeout) const;
  // The revision the loop is up to date with (0 before its first SYNCED).
  int64_t revision() const;
  std::string epoch() const;

 private:
  void Run();
  void Watchdog();
  apitoken::v1::WatchTokensRequest NextRequest() const;

  const std::unique_ptr<apitoken::v1::TokenService::Stub> stub_;
  const WatchLoopOptions options_;
  const Sink sink_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;  // the open stream's
  int64_t last_heard_ns_ ABSL_GUARDED_BY(mu_) = 0;
  bool synced_ ABSL_GUARDED_BY(mu_) = false;
  int64_t revision_ ABSL_GUARDED_BY(mu_) = 0;
  std::string epoch_ ABSL_GUARDED_BY(mu_);
  std::string chain_ ABSL_GUARDED_BY(mu_);

  std::thread thread_;
  std::thread watchdog_;
};

// One record as text (one line, then one line per snapshot token or change), for the watcher
// process's file.
std::string FormatRecord(const WatchRecord& record);
// Every complete record of `text` (a truncated last record is left out).
absl::StatusOr<std::vector<WatchRecord>> ParseRecords(absl::string_view text);

}  // namespace tokenstatus::chaos
