// The chaos scenarios (tests/chaos/README.md). Each one starts a private redis-server and server
// replicas, puts recorded load on them (writers, readers, garbage, watchers in this process and
// in processes of their own, TokenCaches, a token-sidecar), injects its faults, waits until the
// system has synced again, asks every replica and cache about every token, reads the truth from
// Redis (and from the copy of a store a fault replaced), and lets the checker (history.h) judge
// the whole history. CHAOS_LEVEL=full (make chaos) runs every scenario at full length; the
// default (short) is what `make test` runs for the divergence and snapshot-memory scenarios.

#include <signal.h>

#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/chaos/chaos_harness.h"
#include "tests/chaos/history.h"
#include "tests/integration/integration_test_util.h"
#include "tests/integration/watch_test_util.h"

namespace tokenstatus::chaos {
namespace {

using apitoken::v1::TokenService;

constexpr absl::Duration kStepTimeout = absl::Seconds(60);
constexpr absl::Duration kSyncTimeout = absl::Seconds(30);

// A scale for the short (default) and the full run.
int64_t Scaled(int64_t short_value, int64_t full_value) {
  return FullRun() ? full_value : short_value;
}

struct LoadOptions {
  int writers_per_replica = 1;
  absl::Duration writer_pause = absl::Milliseconds(1);
  int create_percent = 15;
  bool readers = true;
  int noise_clients = 1;
  absl::Duration noise_pause = absl::Milliseconds(25);
  bool watchers = true;  // per replica: every account, and the first writer's account
  bool caches = true;    // per replica: one TokenCache
};

// One scenario's cluster, load, recording and final judgement.
class ChaosRun {
 public:
  explicit ChaosRun(std::string scenario) : scenario_(std::move(scenario)) {}
  ~ChaosRun() { StopAll(); }

  absl::Status Start(ClusterOptions options) {
    started_ = absl::Now();
    absl::StatusOr<std::unique_ptr<Cluster>> cluster = Cluster::Start(std::move(options));
    if (!cluster.ok()) return cluster.status();
    cluster_ = *std::move(cluster);
    return absl::OkStatus();
  }

  Cluster& cluster() { return *cluster_; }
  Recorder& recorder() { return recorder_; }
  TokenDirectory& directory() { return directory_; }
  AckCounter& acks() { return acks_; }
  const std::vector<std::string>& accounts() const { return accounts_; }

  // Creates `count` tokens through replica 0 (several clients at once).
  absl::Status Seed(int count, int threads = 4) {
    if (accounts_.empty()) accounts_.push_back(integration::NewAccountId());
    return CreateTokens(cluster_->address(0), accounts_[0], count, threads, "seed", recorder_,
                        directory_, acks_);
  }

  void StartLoad(const LoadOptions& load) {
    StartWriters(load);
    for (int r = 0; r < cluster_->replicas(); ++r) {
      const std::string& address = cluster_->address(r);
      if (load.readers) {
        readers_.push_back(
            std::make_unique<Reader>(absl::StrCat("reader-", r), address, recorder_, directory_));
      }
      for (int n = 0; n < load.noise_clients; ++n) {
        noise_.push_back(std::make_unique<NoiseClient>(absl::StrCat("garbage", r, n), address,
                                                       recorder_, directory_, 100000,
                                                       load.noise_pause));
      }
      if (load.watchers) {
        AddWatcher(absl::StrCat("watcher-", r, "-all"), r, "");
        AddWatcher(absl::StrCat("watcher-", r, "-", accounts_[0]), r, accounts_[0]);
      }
      if (load.caches) AddCache(absl::StrCat("cache-", r), r);
    }
  }

  // Writers on every replica, each with an account of its own (the first one shares the seed's);
  // a second generation after StopWriters() takes the same accounts and new tags.
  void StartWriters(const LoadOptions& load) {
    int index = 0;
    for (int r = 0; r < cluster_->replicas(); ++r) {
      for (int w = 0; w < load.writers_per_replica; ++w, ++index) {
        WriterOptions options;
        options.name = absl::StrCat("w", writer_generation_, r, w);
        options.address = cluster_->address(r);
        while (static_cast<int>(accounts_.size()) <= index) {
          accounts_.push_back(integration::NewAccountId());
        }
        options.account = accounts_[index];
        options.create_percent = load.create_percent;
        options.pause = load.writer_pause;
        writers_.push_back(std::make_unique<Writer>(options, recorder_, directory_, acks_));
      }
    }
    ++writer_generation_;
  }

  void StopWriters() {
    for (auto& writer : writers_) writer->Stop();
    writers_.clear();
  }

  RecordingWatcher& AddWatcher(std::string name, int replica, std::string account) {
    WatchLoopOptions options;
    options.account = std::move(account);
    watchers_.push_back(
        std::make_unique<RecordingWatcher>(name, cluster_->address(replica), recorder_, options));
    watcher_names_.push_back(std::move(name));
    return *watchers_.back();
  }

  void AddCache(std::string name, int replica) {
    absl::StatusOr<std::unique_ptr<RecordedCache>> cache =
        RecordedCache::Create(name, cluster_->address(replica), recorder_, ChaosCacheOptions());
    ASSERT_TRUE(cache.ok()) << cache.status();
    caches_.push_back(*std::move(cache));
  }

  // A replica-like server (token-sidecar) whose answers are compared with the store too.
  void AddServerToCheck(std::string name, std::string address) {
    extra_servers_.emplace_back(std::move(name), std::move(address));
  }
  void AddProcessWatcher(ProcessWatcher* watcher) { process_watchers_.push_back(watcher); }

  // Waits for `count` more acknowledged changes than now.
  bool AwaitMoreAcks(int64_t count, absl::Duration timeout = kStepTimeout) {
    return acks_.AwaitCount(acks_.count() + count, timeout);
  }

  void StopLoad() {
    for (auto& writer : writers_) writer->Stop();
    for (auto& reader : readers_) reader->Stop();
    for (auto& noise : noise_) noise->Stop();
  }

  // Stops the load, waits until every replica, cache and watcher has synced with the store again,
  // records their answers, reads the truth and checks the history. `replaced`: the histories of
  // stores the faults replaced. `max_asked`: tokens asked one by one per replica (ListTokens
  // covers them all).
  Report Finish(std::vector<Branch> replaced = {}, size_t max_asked = 100000,
                const std::string& extra_figures = "") {
    StopLoad();
    absl::StatusOr<std::pair<int64_t, std::string>> head = cluster_->Head();
    EXPECT_TRUE(head.ok()) << head.status();
    if (!head.ok()) return {};
    const auto [revision, epoch] = *head;
    for (int r = 0; r < cluster_->replicas(); ++r) {
      RecordServerAnswers(absl::StrCat("replica-", r), cluster_->address(r), revision, epoch,
                          directory_, recorder_, kSyncTimeout, max_asked);
    }
    for (const auto& [name, address] : extra_servers_) {
      RecordServerAnswers(name, address, revision, epoch, directory_, recorder_, kSyncTimeout,
                          max_asked);
    }
    for (auto& cache : caches_) {
      RecordCacheAnswers(cache->name(), cache->cache(), revision, epoch, directory_, recorder_,
                         kSyncTimeout);
    }
    for (size_t i = 0; i < watchers_.size(); ++i) {
      if (!watchers_[i]->loop().AwaitRevision(revision, epoch, kSyncTimeout)) {
        Answer answer;
        answer.who = watcher_names_[i];
        answer.synced = false;
        answer.detail = absl::StrCat("did not reach revision ", revision, " of epoch ", epoch,
                                     ": at revision ", watchers_[i]->loop().revision(),
                                     " of epoch ", watchers_[i]->loop().epoch());
        recorder_.AddAnswer(std::move(answer));
      }
    }
    for (ProcessWatcher* watcher : process_watchers_) {
      if (!watcher->AwaitRevision(revision, epoch, kSyncTimeout)) {
        Answer answer;
        answer.who = absl::StrCat("watcher process ", watcher->pid());
        answer.synced = false;
        answer.detail = absl::StrCat("did not reach revision ", revision, " of epoch ", epoch);
        recorder_.AddAnswer(std::move(answer));
      }
      absl::StatusOr<WatchLog> log = watcher->Collect();
      EXPECT_TRUE(log.ok()) << log.status();
      if (log.ok()) recorder_.AddWatchLog(*std::move(log));
    }
    int64_t max_rss_kib = 0;
    for (int r = 0; r < cluster_->replicas(); ++r) {
      absl::StatusOr<int64_t> kib = ResidentKiB(cluster_->replica(r).pid());
      if (kib.ok()) max_rss_kib = std::max(max_rss_kib, *kib);
    }
    StopAll();

    History history = recorder_.TakeHistory();
    absl::StatusOr<Branch> final = ReadBranch(cluster_->redis(), cluster_->prefix(), "final");
    EXPECT_TRUE(final.ok()) << final.status();
    if (!final.ok()) return {};
    absl::StatusOr<std::map<std::string, TokenState>> records =
        ReadRecords(cluster_->redis(), cluster_->prefix());
    EXPECT_TRUE(records.ok()) << records.status();
    if (records.ok()) history.final_records = *std::move(records);
    history.branches.push_back(*std::move(final));
    for (Branch& branch : replaced) history.branches.push_back(std::move(branch));
    history.final_branch = 0;

    Report report = Check(history);
    const double seconds = absl::ToDoubleSeconds(absl::Now() - started_);
    std::fprintf(stderr, "\n=== chaos %s (%s, %.1f s): %s\n\n", scenario_.c_str(),
                 FullRun() ? "full" : "short", seconds, report.Summary().c_str());
    const Figures& f = report.figures;
    AppendFigures(absl::StrFormat(
        "| %s | %s | %.0f | %d | %d | %d | %d (%d explained) | %d | %d | %d | %.0f | %d | %s |",
        scenario_, FullRun() ? "full" : "short", seconds, f.operations, f.faults, f.acknowledged,
        f.lost, f.lost_allowed, f.resets, f.watch_events, f.answers,
        static_cast<double>(max_rss_kib) / 1024, report.violations.size(), extra_figures));
    return report;
  }

 private:
  void StopAll() {
    StopLoad();
    watchers_.clear();
    caches_.clear();
  }

  const std::string scenario_;
  absl::Time started_;
  std::unique_ptr<Cluster> cluster_;
  Recorder recorder_;
  TokenDirectory directory_;
  AckCounter acks_;
  std::vector<std::string> accounts_;
  std::vector<std::unique_ptr<Writer>> writers_;
  int writer_generation_ = 0;
  std::vector<std::unique_ptr<Reader>> readers_;
  std::vector<std::unique_ptr<NoiseClient>> noise_;
  std::vector<std::unique_ptr<RecordingWatcher>> watchers_;
  std::vector<std::string> watcher_names_;
  std::vector<std::unique_ptr<RecordedCache>> caches_;
  std::vector<std::pair<std::string, std::string>> extra_servers_;
  std::vector<ProcessWatcher*> process_watchers_;
};

// Skips a full-length-only scenario in the short run.
#define CHAOS_FULL_ONLY() \
  if (!FullRun()) GTEST_SKIP() << "a full-length scenario: CHAOS_LEVEL=full (make chaos)"

// Redis SIGKILLed under load and restarted from its AOF (appendfsync always), twice: no
// acknowledged change may be lost, no watcher may miss one or get a RESET, and every replica and
// cache ends with the store's state.
TEST(Chaos, RedisKillRestart) {
  CHAOS_FULL_ONLY();
  ChaosRun run("redis_kill_restart");
  ASSERT_TRUE(run.Start({.replicas = 2}).ok());
  ASSERT_TRUE(run.Seed(300).ok());
  run.StartLoad({});
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(run.AwaitMoreAcks(2000));
    FaultScope fault(run.recorder(), "redis SIGKILL + restart");
    run.cluster().redis().Kill();
    // Down until both replicas have noticed (health NOT_SERVING), then back.
    for (int r = 0; r < run.cluster().replicas(); ++r) {
      integration::HealthWatcher health(NewChaosChannel(run.cluster().address(r)));
      EXPECT_TRUE(
          health.WaitFor(grpc::health::v1::HealthCheckResponse::NOT_SERVING, absl::Seconds(10)))
          << health.History();
    }
    ASSERT_TRUE(run.cluster().redis().Restart().ok());
    fault.Done();
    for (int r = 0; r < run.cluster().replicas(); ++r) {
      ASSERT_TRUE(AwaitServing(run.cluster().address(r), absl::Seconds(30)));
    }
  }
  ASSERT_TRUE(run.AwaitMoreAcks(2000));
  const Report report = run.Finish();
  EXPECT_TRUE(report.ok()) << report.Summary();
  EXPECT_EQ(report.figures.lost, 0);
  EXPECT_EQ(report.figures.resets, 0);
}

// A replica SIGKILLed under load and started again on its address, three times (both replicas):
// its watchers and caches resume (no RESET, no gap), nothing acknowledged is lost.
TEST(Chaos, ServerKillRestart) {
  CHAOS_FULL_ONLY();
  ChaosRun run("server_kill_restart");
  ASSERT_TRUE(run.Start({.replicas = 2}).ok());
  ASSERT_TRUE(run.Seed(300).ok());
  run.StartLoad({});
  for (int victim : {0, 1, 0}) {
    ASSERT_TRUE(run.AwaitMoreAcks(2000));
    FaultScope fault(run.recorder(), absl::StrCat("replica-", victim, " SIGKILL + restart"));
    run.cluster().replica(victim).Kill();
    // The other replica goes on acknowledging changes meanwhile.
    ASSERT_TRUE(run.AwaitMoreAcks(1000));
    ASSERT_TRUE(run.cluster().RestartReplica(victim).ok());
    fault.Done();
  }
  ASSERT_TRUE(run.AwaitMoreAcks(2000));
  const Report report = run.Finish();
  EXPECT_TRUE(report.ok()) << report.Summary();
  EXPECT_EQ(report.figures.lost, 0);
  EXPECT_EQ(report.figures.resets, 0);
}

// Redis restored from an older copy of its own data (same epoch): the copy is taken while Redis
// runs and writes go on; then Redis is SIGKILLed, the copy restored and Redis restarted.
// Changes acknowledged after the copy may be lost (an operator restored an older backup); but
// once synced again no replica and no cache may answer a state Redis does not hold, and every
// watcher that had seen a revision of the lost history must have got a RESET.
//
// `race`: the divergence scenario: writes through replica 1 take the head past the old head
// before replica 0 (SIGSTOPped across the restore) can look, and replica 1's tailer races them.
// Otherwise (the control): the writers stop before the restore and start again only once both
// replicas have noticed that the revision went back, which the server handles today.
void RestoreOlderCopy(const std::string& scenario, bool race) {
  ChaosRun run(scenario);
  ASSERT_TRUE(run.Start({.replicas = 2}).ok());
  ASSERT_TRUE(run.Seed(static_cast<int>(Scaled(300, 1000))).ok());
  const LoadOptions load = {.noise_pause = absl::Milliseconds(50)};
  run.StartLoad(load);
  ASSERT_TRUE(run.AwaitMoreAcks(Scaled(300, 2000)));

  absl::StatusOr<std::string> backup = MakeTempDir("chaos-backup");
  absl::StatusOr<std::string> latest = MakeTempDir("chaos-latest");
  ASSERT_TRUE(backup.ok() && latest.ok());
  const int64_t copy_start = NowNs();
  ASSERT_TRUE(CopyRedisData(run.cluster().redis().dir(), *backup).ok());
  // Changes the copy does not hold: creations, disables, enables, deletes.
  ASSERT_TRUE(run.AwaitMoreAcks(Scaled(300, 2000)));

  std::optional<FaultScope> stop;
  if (race) {
    stop.emplace(run.recorder(), "replica-0 SIGSTOP across the restore");
    ASSERT_EQ(::kill(run.cluster().replica(0).pid(), SIGSTOP), 0);
  } else {
    run.StopWriters();
  }
  FaultScope restore(run.recorder(), "redis restored from an older copy", true, copy_start);
  run.cluster().redis().Kill();
  ASSERT_TRUE(CopyRedisData(run.cluster().redis().dir(), *latest).ok());
  ASSERT_TRUE(ReplaceRedisData(*backup, run.cluster().redis().dir()).ok());
  ASSERT_TRUE(run.cluster().redis().Restart().ok());
  restore.Done();
  absl::StatusOr<Branch> lost = ReadBranchFromData(*latest, run.cluster().prefix(), "lost");
  ASSERT_TRUE(lost.ok()) << lost.status();
  absl::StatusOr<std::pair<int64_t, std::string>> restored = run.cluster().Head();
  ASSERT_TRUE(restored.ok()) << restored.status();
  std::fprintf(stderr, "restored revision %lld of the old head %lld (epoch %s)\n",
               static_cast<long long>(restored->first), static_cast<long long>(lost->head()),
               restored->second.c_str());
  ASSERT_LT(restored->first, lost->head()) << "the copy holds everything: nothing to diverge";
  EXPECT_EQ(restored->second, lost->epoch()) << "a restore keeps the epoch";

  if (race) {
    // Writes through replica 1 take the head past the old one while replica 0 is stopped.
    ASSERT_TRUE(run.acks().AwaitRevision(lost->head() + 20, kStepTimeout));
    ASSERT_EQ(::kill(run.cluster().replica(0).pid(), SIGCONT), 0);
    stop->Done();
  } else {
    for (int r = 0; r < run.cluster().replicas(); ++r) {
      ASSERT_TRUE(AwaitLogCount(run.cluster().replica(r),
                                {"event=mirror_reload reason=revision_went_back"}, 1,
                                kStepTimeout));
    }
    run.StartWriters(load);
  }
  ASSERT_TRUE(run.AwaitMoreAcks(Scaled(300, 2000)));

  std::vector<Branch> replaced;
  replaced.push_back(*std::move(lost));
  const Report report = run.Finish(std::move(replaced));
  std::error_code ignored;
  std::filesystem::remove_all(*backup, ignored);
  std::filesystem::remove_all(*latest, ignored);
  EXPECT_TRUE(report.ok()) << report.Summary();
  EXPECT_GT(report.figures.lost_allowed, 0) << "the restore lost nothing: the scenario is void";
}

// The divergence scenario (see RestoreOlderCopy): fails until the server detects a store whose
// history was replaced under the same epoch (history marks).
TEST(Chaos, RestoreOlderCopy) { RestoreOlderCopy("restore_older_copy", /*race=*/true); }

// Its control: the same restore, noticed by both replicas before any new write. Passes today; it
// shows that the checker's rules for a restore (what may be lost, which RESETs are justified)
// accept a server that handles the restore.
TEST(Chaos, RestoreOlderCopyNoticed) {
  CHAOS_FULL_ONLY();
  RestoreOlderCopy("restore_older_copy_noticed", /*race=*/false);
}

// FLUSHALL under load: a new epoch. Every watcher and cache gets one RESET and the new (empty,
// then growing) dataset; changes acknowledged after the flush are all there.
TEST(Chaos, FlushAll) {
  CHAOS_FULL_ONLY();
  ChaosRun run("flushall");
  ASSERT_TRUE(run.Start({.replicas = 2}).ok());
  ASSERT_TRUE(run.Seed(300).ok());
  run.StartLoad({.create_percent = 30});
  ASSERT_TRUE(run.AwaitMoreAcks(3000));
  FaultScope fault(run.recorder(), "FLUSHALL", true, std::numeric_limits<int64_t>::min());
  absl::StatusOr<Branch> flushed =
      FlushAllKeepingHistory(run.cluster().redis(), run.cluster().prefix(), "flushed");
  fault.Done();
  ASSERT_TRUE(flushed.ok()) << flushed.status();
  ASSERT_TRUE(run.AwaitMoreAcks(3000));
  std::vector<Branch> replaced;
  replaced.push_back(*std::move(flushed));
  const Report report = run.Finish(std::move(replaced));
  EXPECT_TRUE(report.ok()) << report.Summary();
  EXPECT_GE(report.figures.resets, 1);
}

// A replica SIGSTOPped for 2.5 s (longer than the caches' and watchers' staleness, so they drop
// their streams and reconnect to a server that does not answer), then SIGCONTed, twice. The
// other replica takes the writes meanwhile. No RESET, no gap, nothing lost.
TEST(Chaos, ServerStopCont) {
  CHAOS_FULL_ONLY();
  ChaosRun run("server_sigstop");
  ASSERT_TRUE(run.Start({.replicas = 2}).ok());
  ASSERT_TRUE(run.Seed(300).ok());
  run.StartLoad({});
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(run.AwaitMoreAcks(2000));
    FaultScope fault(run.recorder(), "replica-0 SIGSTOP 2.5 s");
    ASSERT_EQ(::kill(run.cluster().replica(0).pid(), SIGSTOP), 0);
    // The fault's length, not a synchronisation.
    absl::SleepFor(absl::Milliseconds(2500));
    ASSERT_EQ(::kill(run.cluster().replica(0).pid(), SIGCONT), 0);
    fault.Done();
  }
  ASSERT_TRUE(run.AwaitMoreAcks(2000));
  const Report report = run.Finish();
  EXPECT_TRUE(report.ok()) << report.Summary();
  EXPECT_EQ(report.figures.resets, 0);
}

// Watchers in processes of their own SIGSTOPped while changes flow, then SIGCONTed, three times:
// two tokenstatus-chaos-watcher processes on narrow channels (so that the server's queue for
// their streams fills, not the kernel's socket buffers): the server ends their streams as too
// slow (--watch_queue_size=64) instead of buffering without bound, and after SIGCONT they resume
// from their revision without a gap and without a RESET; and a token-sidecar (its TokenCache on
// a normal channel) stopped for 3 s, which must answer the store's state in the end.
TEST(Chaos, WatcherProcessStopCont) {
  CHAOS_FULL_ONLY();
  ChaosRun run("watcher_process_sigstop");
  ASSERT_TRUE(run.Start({.replicas = 1, .server_flags = {"--watch_queue_size=64"}}).ok());
  ASSERT_TRUE(run.Seed(300).ok());
  const std::string address = run.cluster().address(0);
  absl::StatusOr<std::unique_ptr<ProcessWatcher>> all =
      ProcessWatcher::Start("process-all", address, "", /*narrow=*/true);
  ASSERT_TRUE(all.ok()) << all.status();
  absl::StatusOr<std::unique_ptr<ProcessWatcher>> one =
      ProcessWatcher::Start("process-account", address, run.accounts()[0], /*narrow=*/true);
  ASSERT_TRUE(one.ok()) << one.status();
  absl::StatusOr<std::unique_ptr<testing::ServerProcess>> sidecar =
      integration::StartSidecar(address, "127.0.0.1:0", {"--max_staleness=1s"});
  ASSERT_TRUE(sidecar.ok()) << sidecar.status();
  run.AddProcessWatcher(all->get());
  run.AddProcessWatcher(one->get());
  run.AddServerToCheck("sidecar", (*sidecar)->address());
  // Only the first writer, so that the account watcher sees every second change or so.
  run.StartLoad({.writer_pause = absl::ZeroDuration(), .create_percent = 5});
  ASSERT_TRUE(run.AwaitMoreAcks(200));
  const int64_t now = run.acks().max_revision();
  ASSERT_TRUE((*all)->AwaitRevision(now, "", kStepTimeout));
  ASSERT_TRUE((*one)->AwaitRevision(now, "", kStepTimeout));

  for (int round = 0; round < 3; ++round) {
    const absl::Time stopped = absl::Now();
    FaultScope fault(run.recorder(), "watcher processes and sidecar SIGSTOP");
    (*all)->Signal(SIGSTOP);
    (*one)->Signal(SIGSTOP);
    ASSERT_EQ(::kill((*sidecar)->pid(), SIGSTOP), 0);
    // Until the server has ended both watchers' streams as too slow.
    EXPECT_TRUE(AwaitLogCount(run.cluster().replica(0), {"event=watcher_fell_behind"},
                              2 * (round + 1), kStepTimeout));
    // The fault lasts at least 1.5 s: longer than the sidecar's max_staleness (it finds itself
    // stale when it runs again, and drops and resumes its stream).
    absl::SleepFor(stopped + absl::Milliseconds(1500) - absl::Now());
    ASSERT_EQ(::kill((*sidecar)->pid(), SIGCONT), 0);
    (*all)->Signal(SIGCONT);
    (*one)->Signal(SIGCONT);
    fault.Done();
    ASSERT_TRUE(run.AwaitMoreAcks(2000));
  }
  const Report report = run.Finish();
  EXPECT_TRUE(report.ok()) << report.Summary();
  EXPECT_EQ(report.figures.resets, 0);
}

// Garbage at a high rate (oversize, malformed and non-protobuf requests, invalid watch requests,
// raw TCP junk) from several clients next to the normal load: each gets an allowed answer,
// changes nothing, and the rest of the system is unaffected.
TEST(Chaos, GarbageRequests) {
  CHAOS_FULL_ONLY();
  ChaosRun run("garbage_requests");
  ASSERT_TRUE(run.Start({.replicas = 1}).ok());
  ASSERT_TRUE(run.Seed(300).ok());
  run.StartLoad({.noise_clients = 4, .noise_pause = absl::ZeroDuration()});
  ASSERT_TRUE(run.AwaitMoreAcks(6000));
  const Report report = run.Finish();
  EXPECT_TRUE(report.ok()) << report.Summary();
  EXPECT_GT(report.figures.noise, 1000);
}

// Thousands of WatchTokens streams that never read, without and with snapshots, while a reading
// watcher and a cache keep up with the changes. Without snapshots: the server's RSS growth stays
// within CHAOS_IDLE_STREAM_KIB per stream (default 128) and every stream is ended as too slow
// once changes pile up (WATCHER_FELL_BEHIND) instead of being buffered without bound. With
// snapshots: the RSS growth stays within CHAOS_SNAPSHOT_RSS_MIB (default: the server's
// --snapshot_memory_budget of 64 MiB, plus 32 MiB, plus 64 KiB per stream) whatever the number of
// tokens, and every stream ends without ever being read: as too slow once it had its snapshot,
// or refused (SNAPSHOT_BUDGET_EXHAUSTED) after waiting --snapshot_max_wait for its turn.
TEST(Chaos, NeverReadingStreams) {
  const int tokens = static_cast<int>(Scaled(10000, 40000));
  const int snapshot_streams = static_cast<int>(Scaled(50, 100));
  const int plain_streams = static_cast<int>(Scaled(500, 2000));
  constexpr int kQueue = 128;
  ChaosRun run("never_reading_streams");
  ASSERT_TRUE(run.Start({.replicas = 1,
                         .server_flags = {absl::StrCat("--watch_queue_size=", kQueue),
                                          "--max_watchers=50000", "--snapshot_max_wait=2s"}})
                  .ok());
  ASSERT_TRUE(run.Seed(tokens, 8).ok());
  testing::ServerProcess& server = run.cluster().replica(0);
  const std::string address = run.cluster().address(0);
  run.StartLoad({.writers_per_replica = 1,
                 .writer_pause = absl::Milliseconds(2),
                 .create_percent = 2,
                 .noise_pause = absl::Milliseconds(50)});
  ASSERT_TRUE(run.AwaitMoreAcks(50));
  RssSampler rss(server.pid());

  // Opens `count` paused streams over connections of `per_connection` streams, then one reading
  // stream after them on each connection, and waits until those have had their first message
  // (the connection's earlier streams have been started by then). Then it closes those markers:
  // a marker left open could fall behind too and be counted in the server's log as one of the
  // paused streams.
  struct Streams {
    std::vector<std::shared_ptr<grpc::Channel>> channels;
    std::vector<std::unique_ptr<TokenService::Stub>> stubs;
    std::vector<std::unique_ptr<integration::Watcher>> paused;
  };
  auto open = [&](int count, int per_connection, bool snapshot, Streams& streams) {
    for (int i = 0; i < count; ++i) {
      if (i % per_connection == 0) {
        streams.channels.push_back(integration::NewNarrowChannel(address));
        streams.stubs.push_back(TokenService::NewStub(streams.channels.back()));
      }
      apitoken::v1::WatchTokensRequest request = integration::FromNow("", absl::Seconds(5));
      request.set_send_initial_state(snapshot);
      streams.paused.push_back(
          std::make_unique<integration::Watcher>(*streams.stubs.back(), request, true));
    }
    // The markers take no snapshot: they must not wait for a turn behind the paused streams.
    apitoken::v1::WatchTokensRequest live = integration::FromNow("", absl::Milliseconds(200));
    live.set_send_initial_state(false);
    std::vector<std::unique_ptr<integration::Watcher>> markers;
    for (auto& stub : streams.stubs) {
      markers.push_back(std::make_unique<integration::Watcher>(*stub, live));
    }
    for (auto& marker : markers) {
      ASSERT_TRUE(marker->WaitForRevision(1, kStepTimeout)) << marker->Summary();
    }
  };

  // Without snapshots (first: the snapshots' memory, once freed, would be reused).
  absl::StatusOr<int64_t> plain_base_kib = ResidentKiB(server.pid());
  ASSERT_TRUE(plain_base_kib.ok());
  rss.Reset();
  const size_t plain_log_mark = server.LogLines().size();
  Streams plain;
  open(plain_streams, 100, false, plain);
  // Changes pile up until the server has ended every stream as too slow. No count of changes
  // tells when: a stream's queue holds kQueue messages, and several changes may share one (more
  // of them the busier the machine). A stream resumed before it was ended would keep up.
  ASSERT_TRUE(AwaitLogCount(server, {"event=watcher_fell_behind"}, plain_streams, kStepTimeout,
                            plain_log_mark));
  const int64_t plain_growth_kib = rss.max_kib() - *plain_base_kib;
  const int64_t plain_bound_kib = EnvInt("CHAOS_IDLE_STREAM_KIB", 128) * plain_streams;
  // A sample of them: each was ended as too slow.
  int sampled = 0, plain_fell_behind = 0;
  for (size_t i = 0; i < plain.paused.size(); i += plain.paused.size() / 20) {
    plain.paused[i]->Resume();
    std::optional<grpc::Status> end = plain.paused[i]->WaitForEnd(kStepTimeout);
    ++sampled;
    if (end.has_value() && integration::IsRpcError(*end, grpc::StatusCode::RESOURCE_EXHAUSTED,
                                                   "WATCHER_FELL_BEHIND")) {
      ++plain_fell_behind;
    }
  }
  EXPECT_EQ(plain_fell_behind, sampled);
  plain = Streams();

  // With snapshots.
  absl::StatusOr<int64_t> base_kib = ResidentKiB(server.pid());
  ASSERT_TRUE(base_kib.ok());
  rss.Reset();
  const size_t snapshot_log_mark = server.LogLines().size();
  Streams with_snapshots;
  open(snapshot_streams, 10, true, with_snapshots);
  ASSERT_TRUE(run.AwaitMoreAcks(20));  // changes flow meanwhile (fewer than the queue holds)
  const int64_t snapshot_bound_mib =
      EnvInt("CHAOS_SNAPSHOT_RSS_MIB", 64 + 32 + (int64_t{snapshot_streams} * 64 + 1023) / 1024);
  // Then changes pile up. The server ends every stream that never reads, those that had their
  // snapshot as too slow, those still waiting for their turn as refused; only then do they read
  // (a stream still waiting would otherwise get its turn and keep up).
  ASSERT_TRUE(AwaitLogCount(server, {"event=watcher_fell_behind", "event=snapshot_refused"},
                            snapshot_streams, kStepTimeout, snapshot_log_mark));
  for (auto& watcher : with_snapshots.paused) watcher->Resume();
  int fell_behind = 0, refused = 0;
  for (auto& watcher : with_snapshots.paused) {
    std::optional<grpc::Status> end = watcher->WaitForEnd(kStepTimeout);
    if (!end.has_value()) continue;
    fell_behind +=
        integration::IsRpcError(*end, grpc::StatusCode::RESOURCE_EXHAUSTED, "WATCHER_FELL_BEHIND");
    refused += integration::IsRpcError(*end, grpc::StatusCode::RESOURCE_EXHAUSTED,
                                       "SNAPSHOT_BUDGET_EXHAUSTED");
  }
  EXPECT_GT(fell_behind, 0);
  EXPECT_EQ(fell_behind + refused, snapshot_streams);
  const int64_t snapshot_growth_kib = rss.max_kib() - *base_kib;
  with_snapshots = Streams();

  const std::string figures = absl::StrFormat(
      "%d tokens; %d never-reading streams with snapshots: +%.1f MiB (%.0f KiB each, bound %d "
      "MiB; %d fell behind, %d refused); %d without: +%.1f MiB (%.1f KiB each, bound %d KiB "
      "each); max RSS %.0f MiB",
      tokens, snapshot_streams, snapshot_growth_kib / 1024.0,
      static_cast<double>(snapshot_growth_kib) / snapshot_streams, snapshot_bound_mib, fell_behind,
      refused, plain_streams, plain_growth_kib / 1024.0,
      static_cast<double>(plain_growth_kib) / plain_streams, plain_bound_kib / plain_streams,
      std::max(rss.max_kib(), *base_kib + snapshot_growth_kib) / 1024.0);
  std::fprintf(stderr, "never-reading streams: %s\n", figures.c_str());
  const Report report = run.Finish({}, 2000, figures);
  EXPECT_TRUE(report.ok()) << report.Summary();
  EXPECT_LE(snapshot_growth_kib, snapshot_bound_mib * 1024)
      << snapshot_streams << " never-reading streams with snapshots of " << tokens
      << " tokens grew the server's RSS by " << snapshot_growth_kib / 1024
      << " MiB (CHAOS_SNAPSHOT_RSS_MIB=" << snapshot_bound_mib << ")";
  EXPECT_LE(plain_growth_kib, plain_bound_kib)
      << plain_streams << " never-reading streams without snapshots grew the server's RSS by "
      << plain_growth_kib << " KiB (CHAOS_IDLE_STREAM_KIB=" << plain_bound_kib / plain_streams
      << " per stream)";
}

}  // namespace
}  // namespace tokenstatus::chaos
