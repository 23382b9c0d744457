#include "tests/bench/watch_bench.h"

#include <sys/resource.h>
#include <unistd.h>

#include <deque>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "apitoken/v1/token_service.grpc.pb.h"
#include "core/status_util.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/support/server_callback.h"
#include "gtest/gtest.h"
#include "tests/bench/fake_etcd.h"

namespace tokenstatus::bench {
namespace {

using apitoken::v1::Token;
using apitoken::v1::TokenEvent;
using apitoken::v1::WatchTokensRequest;
using apitoken::v1::WatchTokensResponse;

class FakeWatchService;

// One WatchTokens stream of FakeWatchService: SYNCED, then whatever Send() queues, one write at
// a time. Deletes itself when done.
class FakeStream : public grpc::ServerWriteReactor<WatchTokensResponse> {
 public:
  FakeStream(FakeWatchService& service, int64_t revision);
  void Send(WatchTokensResponse message) {
    absl::MutexLock lock(&mu_);
    queue_.push_back(std::move(message));
    WriteNextLocked();
  }
  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) return;
    queue_.pop_front();
    WriteNextLocked();
  }
  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    if (!finished_) Finish(grpc::Status::CANCELLED);
    finished_ = true;
  }
  void OnDone() override;

 private:
  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_ || queue_.empty()) return;
    writing_ = true;
    StartWrite(&queue_.front());
  }

  FakeWatchService& service_;
  absl::Mutex mu_;
  std::deque<WatchTokensResponse> queue_ ABSL_GUARDED_BY(mu_);  // front: the write in flight
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

// A TokenService with one revision counter: CreateToken, DisableToken and EnableToken each take
// the next revision; every Disable/Enable is sent to every open WatchTokens stream as one
// KIND_CHANGES message, except to the stream that the `skip` setting names. Thread-safe.
class FakeWatchService final : public apitoken::v1::TokenService::CallbackService {
 public:
  // Changes of revision `revision` are not sent to the `stream`-th stream opened (0-based).
  void Skip(int stream, int64_t revision) {
    absl::MutexLock lock(&mu_);
    skip_stream_ = stream;
    skip_revision_ = revision;
  }

  grpc::ServerUnaryReactor* CreateToken(grpc::CallbackServerContext* context,
                                        const apitoken::v1::CreateTokenRequest* request,
                                        apitoken::v1::CreateTokenResponse* response) override {
    absl::MutexLock lock(&mu_);
    Token& token = *response->mutable_token();
    token.set_id("TKN-0000-0003");
    token.set_account_id(request->account_id());
    token.set_state(Token::STATE_ACTIVE);
    token.set_revision(++revision_);
    return Done(context);
  }
  // The first DisableToken answers only after `delay` (a slow first request).
  void DelayFirstDisable(absl::Duration delay) {
    absl::MutexLock lock(&mu_);
    first_disable_delay_ = delay;
  }

  grpc::ServerUnaryReactor* DisableToken(grpc::CallbackServerContext* context,
                                         const apitoken::v1::DisableTokenRequest* request,
                                         apitoken::v1::DisableTokenResponse* response) override {
    absl::Duration delay;
    {
      absl::MutexLock lock(&mu_);
      std::swap(delay, first_disable_delay_);
    }
    absl::SleepFor(delay);
    *response->mutable_token() = Change(request->token_id(), TokenEvent::TYPE_DISABLED);
    return Done(context);
  }
  grpc::ServerUnaryReactor* EnableToken(grpc::CallbackServerContext* context,
                                        const apitoken::v1::EnableTokenRequest* request,
                                        apitoken::v1::EnableTokenResponse* response) override {
    *response->mutable_token() = Change(request->token_id(), TokenEvent::TYPE_ENABLED);
    return Done(context);
  }
  grpc::ServerWriteReactor<WatchTokensResponse>* WatchTokens(
      grpc::CallbackServerContext* /*context*/, const WatchTokensRequest* /*request*/) override {
    absl::MutexLock lock(&mu_);
    auto* stream = new FakeStream(*this, revision_);
    streams_.push_back(stream);
    return stream;
  }

  void Remove(FakeStream* stream) {
    absl::MutexLock lock(&mu_);
    for (FakeStream*& open : streams_) {
      if (open == stream) open = nullptr;
    }
  }

 private:
  static grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* context) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  // Takes the next revision and sends the change to the streams.
  Token Change(const std::string& token_id, TokenEvent::Type type) {
    absl::MutexLock lock(&mu_);
    WatchTokensResponse message;
    message.set_kind(WatchTokensResponse::KIND_CHANGES);
    message.set_revision(++revision_);
    TokenEvent& event = *message.add_events();
    event.set_type(type);
    event.mutable_token()->set_id(token_id);
    event.mutable_token()->set_state(type == TokenEvent::TYPE_DISABLED ? Token::STATE_DISABLED
                                                                       : Token::STATE_ACTIVE);
    event.mutable_token()->set_revision(revision_);
    for (size_t i = 0; i < streams_.size(); ++i) {
      if (streams_[i] == nullptr) continue;
      if (static_cast<int>(i) == skip_stream_ && revision_ == skip_revision_) continue;
      streams_[i]->Send(message);
    }
    return event.token();
  }

  absl::Mutex mu_;
  int64_t revision_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<FakeStream*> streams_ ABSL_GUARDED_BY(mu_);  // in opening order; nullptr: done
  int skip_stream_ ABSL_GUARDED_BY(mu_) = -1;
  int64_t skip_revision_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration first_disable_delay_ ABSL_GUARDED_BY(mu_);
};

FakeStream::FakeStream(FakeWatchService& service, int64_t revision) : service_(service) {
  WatchTokensResponse synced;
  synced.set_kind(WatchTokensResponse::KIND_SYNCED);
  synced.set_revision(revision);
  Send(std::move(synced));
}

void FakeStream::OnDone() {
  service_.Remove(this);
  delete this;
}

class WatchBenchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(port_, 0);
  }
  void TearDown() override { server_->Shutdown(); }

  WatchBenchOptions Options() const {
    WatchBenchOptions options;
    options.target = absl::StrCat("127.0.0.1:", port_);
    options.watchers = 20;
    options.connections = 3;
    options.changes = 6;
    options.interval = absl::Milliseconds(5);
    options.warmup = absl::ZeroDuration();
    options.drain_timeout = absl::Seconds(2);
    options.server_pid = getpid();  // this process serves: its RSS is the server's
    return options;
  }

  FakeWatchService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(WatchBenchTest, CountsEveryDeliveryAndMeasuresIt) {
  absl::StatusOr<WatchBenchReport> report = RunWatchBench(Options());
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->expected, 20 * 6);
  EXPECT_EQ(report->delivered, 20 * 6);
  EXPECT_EQ(report->duplicates, 0);
  EXPECT_EQ(report->out_of_order, 0);
  EXPECT_EQ(report->ended, 0);
  EXPECT_EQ(report->messages, 20 * 6);  // one message per change
  EXPECT_LE(report->p50, report->p99);
  EXPECT_LE(report->p99, report->max);
  EXPECT_LT(report->max, absl::Seconds(1));
  EXPECT_GT(report->first_change, absl::ZeroDuration());
  EXPECT_GT(report->change_p50, absl::ZeroDuration());
  EXPECT_LE(report->change_p50, report->change_p99);
  EXPECT_LT(report->change_p99, absl::Seconds(1));
  EXPECT_GT(report->server_rss_before_kib, 0);
  EXPECT_GT(report->server_rss_after_kib, 0);
  EXPECT_GT(report->client_cpu_percent, 0);
  const std::string line = FormatWatchReport(Options(), *report);
  EXPECT_NE(line.find("watchers=20 connections=3 changes=6 interval_ms=5 "), std::string::npos)
      << line;
  EXPECT_NE(line.find(" expected=120 delivered=120 duplicates=0 out_of_order=0 ended=0 "),
            std::string::npos)
      << line;
}

// The server is this process, so its CPU time while the changes fan out is part of what
// getrusage counts over the whole run.
TEST_F(WatchBenchTest, MeasuresTheServersCpuWhileTheChangesFanOut) {
  WatchBenchOptions options = Options();
  options.watchers = 200;
  options.changes = 30;
  options.interval = absl::Milliseconds(1);
  const auto cpu = [] {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return absl::DurationFromTimeval(usage.ru_utime) + absl::DurationFromTimeval(usage.ru_stime);
  };
  const absl::Duration before = cpu();
  absl::StatusOr<WatchBenchReport> report = RunWatchBench(options);
  const absl::Duration used = cpu() - before;
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->delivered, 200 * 30);
  EXPECT_GT(report->server_cpu, absl::ZeroDuration());
  // /proc counts in clock ticks: one more than getrusage at most.
  EXPECT_LE(report->server_cpu, used + absl::Seconds(1.0 / sysconf(_SC_CLK_TCK)));
  const std::string line = FormatWatchReport(options, *report);
  EXPECT_NE(line.find(absl::StrFormat(" server_cpu_us_per_event=%.1f ",
                                      absl::ToDoubleMicroseconds(report->server_cpu) / 6000)),
            std::string::npos)
      << line;
}

TEST_F(WatchBenchTest, AMissedChangeIsNotDelivered) {
  // The 5th stream does not get the 3rd change (revision 4: the token was created at 1).
  service_.Skip(4, 4);
  absl::StatusOr<WatchBenchReport> report = RunWatchBench(Options());
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->delivered, 20 * 6 - 1);
  EXPECT_EQ(report->duplicates, 0);
  EXPECT_EQ(report->out_of_order, 0);
}

TEST_F(WatchBenchTest, NoWatchersMeasuresOnlyTheAcknowledgements) {
  WatchBenchOptions options = Options();
  options.watchers = 0;
  absl::StatusOr<WatchBenchReport> report = RunWatchBench(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->expected, 0);
  EXPECT_EQ(report->delivered, 0);
  EXPECT_GT(report->first_change, absl::ZeroDuration());
  EXPECT_GT(report->change_p50, absl::ZeroDuration());
  EXPECT_LE(report->change_p50, report->change_p99);
  EXPECT_NE(FormatWatchReport(options, *report).find(" kib_per_watcher=0.0"), std::string::npos);
}

TEST_F(WatchBenchTest, TheFirstAcknowledgementIsReportedApart) {
  service_.DelayFirstDisable(absl::Milliseconds(500));
  WatchBenchOptions options = Options();
  options.watchers = 0;
  absl::StatusOr<WatchBenchReport> report = RunWatchBench(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_GE(report->first_change, absl::Milliseconds(500));
  EXPECT_LT(report->change_p99, absl::Milliseconds(500));  // the other five changes only
  EXPECT_NE(FormatWatchReport(options, *report).find(" first_change_us="), std::string::npos);
}

TEST_F(WatchBenchTest, InvalidOptionsAreRejected) {
  WatchBenchOptions options = Options();
  options.watchers = -1;
  absl::StatusOr<WatchBenchReport> report = RunWatchBench(options);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), absl::StatusCode::kInvalidArgument);
}

// The bench against a fake etcd that batches the events of two puts into one WatchResponse.
class EtcdWatchBenchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(etcd_.kv());
    builder.RegisterService(etcd_.watch());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(port_, 0);
  }
  void TearDown() override { server_->Shutdown(); }

  WatchBenchOptions Options() const {
    WatchBenchOptions options;
    options.server = WatchServer::kEtcd;
    options.target = absl::StrCat("127.0.0.1:", port_);
    options.watchers = 20;
    options.connections = 3;
    options.changes = 6;
    options.interval = absl::Milliseconds(5);
    options.warmup = absl::ZeroDuration();
    options.drain_timeout = absl::Seconds(2);
    return options;
  }

  FakeEtcd etcd_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(EtcdWatchBenchTest, CountsEventsNotMessages) {
  etcd_.BatchPairs();
  WatchBenchOptions options = Options();
  // The bench's first put (the key, before the watchers) pairs with the first change: 8 puts go
  // out in 4 messages per watcher, with the 7 changes in them.
  options.changes = 7;
  absl::StatusOr<WatchBenchReport> report = RunWatchBench(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(etcd_.puts(), 1 + 7);
  EXPECT_EQ(report->expected, 20 * 7);
  EXPECT_EQ(report->delivered, 20 * 7);
  EXPECT_EQ(report->messages, 20 * 4);
  EXPECT_EQ(report->duplicates, 0);
  EXPECT_EQ(report->out_of_order, 0);
  EXPECT_EQ(report->ended, 0) << report->first_end;
  EXPECT_LE(report->p50, report->p99);
  EXPECT_LE(report->p99, report->max);
  const std::string line = FormatWatchReport(options, *report);
  EXPECT_NE(line.find("server=etcd watchers=20 connections=3 changes=7 "), std::string::npos)
      << line;
  EXPECT_NE(line.find(" delivered=140 duplicates=0 out_of_order=0 ended=0 messages=80 "),
            std::string::npos)
      << line;
}

TEST_F(EtcdWatchBenchTest, EveryPutIsOneEventWithoutBatching) {
  absl::StatusOr<WatchBenchReport> report = RunWatchBench(Options());
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->delivered, 20 * 6);
  EXPECT_EQ(report->messages, 20 * 6);
  EXPECT_EQ(report->ended, 0) << report->first_end;
}

TEST(WatchBenchOptionsTest, ParsesServers) {
  EXPECT_EQ(*ParseWatchServer("tokenstatus"), WatchServer::kTokenstatus);
  EXPECT_EQ(*ParseWatchServer("etcd"), WatchServer::kEtcd);
  EXPECT_EQ(ParseWatchServer("redis").status().code(), absl::StatusCode::kInvalidArgument);
  for (WatchServer server : {WatchServer::kTokenstatus, WatchServer::kEtcd}) {
    EXPECT_EQ(*ParseWatchServer(WatchServerName(server)), server);
  }
}

}  // namespace
}  // namespace tokenstatus::bench
