#pragma once

// The chaos scenarios' moving parts, real processes only: a private redis-server and tokenstatus
// server replicas (tests/testing), clients that record every operation (writers, readers, a
// source of garbage requests), watchers that record every message (in this process, in a process
// of their own, and under TokenCaches), the fault helpers, the readers of the truth (Redis's event
// stream, also from the copy of a store a fault replaced), and the final comparison of every
// replica and cache with the store once the system has synced again. Everything goes into a
// Recorder, whose History the checker (history.h) judges.

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "apitoken/v1/token_service.grpc.pb.h"
#include "client/token_cache.h"
#include "grpcpp/channel.h"
#include "tests/chaos/history.h"
#include "tests/chaos/watch_loop.h"
#include "tests/integration/watch_test_util.h"
#include "tests/testing/redis_instance.h"
#include "tests/testing/server_process.h"
#include "tests/testing/subprocess.h"

namespace tokenstatus::chaos {

// --- Parameters ---

// Whether this is the full run (CHAOS_LEVEL=full, what `make chaos` sets) or the short one
// (default; what `make test` runs).
bool FullRun();
// The integer value of the environment variable `name`, or `fallback` if unset or not a number.
int64_t EnvInt(const char* name, int64_t fallback);
// Extra server flags from CHAOS_SERVER_FLAGS (space-separated), e.g.
// "--snapshot_memory_budget=64MiB" once the server has it.
std::vector<std::string> ExtraServerFlags();

// --- Recording ---

// The history of a run under construction. Thread-safe.
class Recorder {
 public:
  void AddOperation(Operation op);
  void AddFault(Fault fault);
  void AddAnswer(Answer answer);
  // A new watch log; records go to it with AddWatchRecord(id, ...).
  int NewWatchLog(std::string name, std::string account);
  void AddWatchRecord(int log, WatchRecord record);
  void AddWatchLog(WatchLog log);
  // Moves out what was recorded (the caller adds the branches).
  History TakeHistory();
  int64_t operations() const;

 private:
  mutable absl::Mutex mu_;
  History history_ ABSL_GUARDED_BY(mu_);
};

// A fault that begins now; Done() records it.
class FaultScope {
 public:
  FaultScope(Recorder& recorder, std::string name, bool replaces_history = false,
             int64_t keeps_before_ns = 0);
  void Done();

 private:
  Recorder& recorder_;
  Fault fault_;
};

// A token the run created (or tried to): its secret, for VerifyToken.
struct KnownToken {
  std::string id;
  std::string account;
  std::string secret;
};

// Every token the run tried to create. Thread-safe.
class TokenDirectory {
 public:
  void Add(KnownToken token);
  std::vector<KnownToken> All() const;
  // A random one; nullopt if there is none yet.
  std::optional<KnownToken> Random(absl::BitGen& random) const;
  size_t size() const;

 private:
  mutable absl::Mutex mu_;
  std::vector<KnownToken> tokens_ ABSL_GUARDED_BY(mu_);
};

// --- The system under test ---

struct ClusterOptions {
  int replicas = 2;
  std::vector<std::string> server_flags{};
};

// A private redis-server (AOF, appendfsync always) and server replicas on it, each on a fixed
// loopback address once started, so that a replica killed and started again is where its clients
// look. Thread-compatible (the test's main thread drives it).
class Cluster {
 public:
  static absl::StatusOr<std::unique_ptr<Cluster>> Start(ClusterOptions options);

  testing::RedisInstance& redis() { return *redis_; }
  const std::string& prefix() const { return prefix_; }
  std::string Key(absl::string_view suffix) const;
  int replicas() const { return static_cast<int>(replicas_.size()); }
  testing::ServerProcess& replica(int i) { return *replicas_[i]; }
  const std::string& address(int i) const { return addresses_[i]; }
  // Starts replica `i` again on its address (after it was killed) and waits until SERVING.
  absl::Status RestartReplica(int i);
  // The store's head revision and epoch, read from Redis.
  absl::StatusOr<std::pair<int64_t, std::string>> Head();

 private:
  absl::Status StartReplica(int i);

  ClusterOptions options_;
  std::unique_ptr<testing::RedisInstance> redis_;
  std::string prefix_;
  std::vector<std::string> addresses_;
  std::vector<std::unique_ptr<testing::ServerProcess>> replicas_;
};

// Waits until the server at `address` reports SERVING (grpc.health.v1); false after `timeout`.
bool AwaitServing(const std::string& address, absl::Duration timeout);

// --- Clients ---

// Counts acknowledged changes and their highest revision; lets the test wait for them.
class AckCounter {
 public:
  void Add(int64_t revision);
  int64_t count() const;
  int64_t max_revision() const;
  // Waits until count() >= `count`; false after `timeout`.
  bool AwaitCount(int64_t count, absl::Duration timeout) const;
  // Waits until max_revision() >= `revision`; false after `timeout`.
  bool AwaitRevision(int64_t revision, absl::Duration timeout) const;

 private:
  mutable absl::Mutex mu_;
  int64_t count_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t max_revision_ ABSL_GUARDED_BY(mu_) = 0;
};

struct WriterOptions {
  std::string name;     // tags are "<name>-<n>"
  std::string address;  // the replica it writes to
  std::string account;
  int64_t max_ops = 100000;  // bounds the loop
  int create_percent = 25;   // the rest: disable/enable, and a few deletes
  int delete_percent = 3;    // of the state changes
  absl::Duration deadline = absl::Seconds(2);
  absl::Duration pause = absl::ZeroDuration();  // between operations
};

// Creates tokens (imports, with secrets it keeps in the directory) and flips and deletes its own
// tokens, one call at a time, until stopped or max_ops; records every call. Thread-safe.
class Writer {
 public:
  Writer(WriterOptions options, Recorder& recorder, TokenDirectory& directory, AckCounter& acks);
  ~Writer();  // Stop()
  void Stop();
  int64_t operations() const { return operations_.load(); }

 private:
  void Run();

  const WriterOptions options_;
  Recorder& recorder_;
  TokenDirectory& directory_;
  AckCounter& acks_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> operations_{0};
  std::thread thread_;
};

// Creates `count` tokens of `account` through the server at `address` with `threads` concurrent
// clients, recording each creation; the tokens go to the directory. Error if one fails.
absl::Status CreateTokens(const std::string& address, const std::string& account, int count,
                          int threads, const std::string& tag_prefix, Recorder& recorder,
                          TokenDirectory& directory, AckCounter& acks);

// GetToken and VerifyToken of random known tokens against `address`, until stopped or max_ops.
class Reader {
 public:
  Reader(std::string name, std::string address, Recorder& recorder, TokenDirectory& directory,
         int64_t max_ops = 100000, absl::Duration pause = absl::Milliseconds(2));
  ~Reader();
  void Stop();

 private:
  void Run();

  const std::string name_;
  const std::string address_;
  Recorder& recorder_;
  TokenDirectory& directory_;
  const int64_t max_ops_;
  const absl::Duration pause_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Oversize, malformed and garbage requests (unary calls with invalid fields, bytes that are no
// protobuf, watch requests with invalid fields, raw TCP junk) against `address`, one every
// `pause`, until stopped or max_ops; each recorded with the answers it may get.
class NoiseClient {
 public:
  NoiseClient(std::string name, std::string address, Recorder& recorder, TokenDirectory& directory,
              int64_t max_ops = 100000, absl::Duration pause = absl::Milliseconds(20));
  ~NoiseClient();
  void Stop();
  int64_t operations() const { return operations_.load(); }

 private:
  void Run();
  void OneRequest(int kind);

  const std::string name_;
  const std::string address_;
  Recorder& recorder_;
  TokenDirectory& directory_;
  const int64_t max_ops_;
  const absl::Duration pause_;
  std::shared_ptr<grpc::Channel> channel_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> operations_{0};
  int64_t next_tag_ = 0;
  absl::BitGen random_;
  std::thread thread_;
};

// A WatchLoop in this process whose records go to the recorder.
class RecordingWatcher {
 public:
  RecordingWatcher(std::string name, const std::string& address, Recorder& recorder,
                   WatchLoopOptions options = {});
  WatchLoop& loop() { return *loop_; }

 private:
  std::unique_ptr<WatchLoop> loop_;
};

// A WatchLoop in a process of its own (tokenstatus-chaos-watcher), recording to a file that
// Collect() reads back. `narrow`: on a channel that reads little ahead (NewNarrowChaosChannel).
class ProcessWatcher {
 public:
  static absl::StatusOr<std::unique_ptr<ProcessWatcher>> Start(std::string name,
                                                               const std::string& address,
                                                               const std::string& account = "",
                                                               bool narrow = false);
  ~ProcessWatcher();
  int pid() const { return process_->pid(); }
  void Signal(int signo) { process_->Signal(signo); }
  // Waits until the file shows the watcher synced at revision >= `revision` (it polls the file:
  // the process has no other way to tell); false after `timeout`.
  bool AwaitRevision(int64_t revision, const std::string& epoch, absl::Duration timeout);
  // Stops the process (SIGTERM, SIGKILL if it lingers) and returns its records.
  absl::StatusOr<WatchLog> Collect();

 private:
  ProcessWatcher(std::string name, std::string account, std::string dir);
  absl::StatusOr<std::vector<WatchRecord>> Read() const;

  const std::string name_;
  const std::string account_;
  const std::string dir_;
  std::unique_ptr<testing::Subprocess> process_;
};

// A TokenCache whose WatchTokens stream is recorded message by message (the stream under the
// cache, as the cache reads it).
class RecordedCache {
 public:
  static absl::StatusOr<std::unique_ptr<RecordedCache>> Create(std::string name,
                                                               const std::string& address,
                                                               Recorder& recorder,
                                                               TokenCacheOptions options);
  const std::string& name() const { return name_; }
  TokenCache& cache() { return *cache_; }

 private:
  RecordedCache(std::string name) : name_(std::move(name)) {}
  const std::string name_;
  std::unique_ptr<TokenCache> cache_;
};

// The TokenCache options of the scenarios: every account, secret hashes, stale (and
// reconnecting) after 1 s of silence, reconnecting within 50..500 ms.
TokenCacheOptions ChaosCacheOptions();

// --- The truth ---

// The event stream of the store at `redis` under `prefix`, as one history named `name`.
absl::StatusOr<Branch> ReadBranch(testing::RedisInstance& redis, const std::string& prefix,
                                  std::string name);
// The store's token records (its hashes), by id.
absl::StatusOr<std::map<std::string, TokenState>> ReadRecords(testing::RedisInstance& redis,
                                                              const std::string& prefix);
// FLUSHALL in one transaction with the read of the history it throws away (named `name`).
absl::StatusOr<Branch> FlushAllKeepingHistory(testing::RedisInstance& redis,
                                              const std::string& prefix, std::string name);
// Copies the data (AOF directory and RDB file) of the redis-server directory `from` into `to`.
absl::Status CopyRedisData(const std::string& from, const std::string& to);
// Replaces the data of the (stopped) redis-server directory `dir` with that of `from`.
absl::Status ReplaceRedisData(const std::string& from, const std::string& dir);
// The history held by the redis data in `data_dir` (a copy of a store's directory): starts a
// throwaway redis-server on a copy of it and reads its event stream.
absl::StatusOr<Branch> ReadBranchFromData(const std::string& data_dir, const std::string& prefix,
                                          std::string name);
// A fresh temporary directory (removed by the caller).
absl::StatusOr<std::string> MakeTempDir(absl::string_view name);

// --- After the faults: every replica and cache against the store ---

// Waits until the replica (or sidecar: the same API) at `address` serves the store's head and
// epoch, then lists every token (ListTokens with show_deleted) and asks it about every known
// token (GetToken, VerifyToken; an even sample of at most `max_asked` of them); records the
// answers as `who`. Not synced within `timeout`: one answer with synced = false.
void RecordServerAnswers(const std::string& who, const std::string& address, int64_t head,
                         const std::string& epoch, const TokenDirectory& directory,
                         Recorder& recorder, absl::Duration timeout, size_t max_asked = 100000);
// The same for a TokenCache (Check, Get, Verify and List).
void RecordCacheAnswers(const std::string& who, TokenCache& cache, int64_t head,
                        const std::string& epoch, const TokenDirectory& directory,
                        Recorder& recorder, absl::Duration timeout);

// The resident set size of process `pid`, in KiB (tests/integration/watch_test_util.h).
using integration::ResidentKiB;

// Samples the resident set size of a process every 20 ms on its own thread and keeps the maximum.
class RssSampler {
 public:
  explicit RssSampler(int pid);
  ~RssSampler();
  int64_t max_kib() const;
  // Restarts the maximum from the current value.
  void Reset();

 private:
  const int pid_;
  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  int64_t max_kib_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

// Waits until `process` has logged `count` lines that contain one of `needles`, counting only
// its log lines from index `first_line` on (LogLines().size() taken before a phase counts only
// the phase's own lines); it polls the lines. False after `timeout`.
bool AwaitLogCount(const testing::ServerProcess& process, const std::vector<std::string>& needles,
                   int count, absl::Duration timeout, size_t first_line = 0);

// Appends `line` to the file named by CHAOS_FIGURES_FILE (if set), for tests/chaos/run_chaos.sh.
void AppendFigures(const std::string& line);

}  // namespace tokenstatus::chaos
