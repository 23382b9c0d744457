#include "tests/bench/load_generator.h"

#include <unistd.h>

#include <initializer_list>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/status_util.h"
#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "tests/bench/fake_etcd.h"
#include "tests/bench/noop_token_service.h"

namespace tokenstatus::bench {
namespace {

using ::testing::HasSubstr;

// A TokenService whose CreateToken works and whose GetToken always fails.
class FailingGetService final : public apitoken::v1::TokenService::CallbackService {
 public:
  grpc::ServerUnaryReactor* CreateToken(grpc::CallbackServerContext* context,
                                        const apitoken::v1::CreateTokenRequest* /*request*/,
                                        apitoken::v1::CreateTokenResponse* response) override {
    response->mutable_token()->set_id("TKN-0000-0002");
    return Finish(context, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* GetToken(grpc::CallbackServerContext* context,
                                     const apitoken::v1::GetTokenRequest* /*request*/,
                                     apitoken::v1::GetTokenResponse* /*response*/) override {
    return Finish(context, grpc::Status(grpc::StatusCode::NOT_FOUND, "no such token"));
  }

 private:
  static grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context,
                                          const grpc::Status& status) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(status);
    return reactor;
  }
};

// An etcd KV service that acknowledges every Put and finds no key.
class ForgetfulKv final : public etcdserverpb::KV::CallbackService {
 public:
  grpc::ServerUnaryReactor* Range(grpc::CallbackServerContext* context,
                                  const etcdserverpb::RangeRequest* /*request*/,
                                  etcdserverpb::RangeResponse* /*response*/) override {
    return Finish(context);
  }
  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* context,
                                const etcdserverpb::PutRequest* /*request*/,
                                etcdserverpb::PutResponse* /*response*/) override {
    return Finish(context);
  }

 private:
  static grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

// The load generator against in-process services on a free loopback port.
class LoadGeneratorTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  void Serve(std::initializer_list<grpc::Service*> services) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    for (grpc::Service* service : services) builder.RegisterService(service);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(port_, 0);
  }

  LoadOptions Options(LoadMode mode) const {
    LoadOptions options;
    options.target = absl::StrCat("127.0.0.1:", port_);
    options.mode = mode;
    options.concurrency = 4;
    options.connections = 2;
    options.threads = 2;
    options.warmup = absl::Milliseconds(100);
    options.duration = absl::Milliseconds(400);
    return options;
  }

  NoopTokenService noop_;
  FakeEtcd etcd_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(LoadGeneratorTest, GetMeasuresSuccessfulCalls) {
  ASSERT_NO_FATAL_FAILURE(Serve({&noop_}));
  absl::StatusOr<LoadReport> report = RunLoad(Options(LoadMode::kGet));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->errors, 0);
  EXPECT_GT(report->requests, 10);
  EXPECT_DOUBLE_EQ(report->requests_per_second, report->requests / 0.4);
  EXPECT_GT(report->p50, absl::ZeroDuration());
  EXPECT_LE(report->p50, report->p99);
  EXPECT_LT(report->p99, absl::Seconds(1));
  EXPECT_GT(report->client_cpu_percent, 0);
}

// The server is this process: its CPU over the window, read from /proc, is the client's (the
// same process, from getrusage) to within /proc's clock ticks.
TEST_F(LoadGeneratorTest, MeasuresTheServersCpuOverTheWindow) {
  ASSERT_NO_FATAL_FAILURE(Serve({&noop_}));
  LoadOptions options = Options(LoadMode::kGet);
  options.server_pid = getpid();
  absl::StatusOr<LoadReport> report = RunLoad(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_GT(report->server_cpu, absl::ZeroDuration());
  const absl::Duration tick = absl::Seconds(1.0 / sysconf(_SC_CLK_TCK));
  EXPECT_LE(absl::AbsDuration(report->server_cpu - report->client_cpu), 2 * tick)
      << report->server_cpu << " against " << report->client_cpu;
  EXPECT_EQ(report->store_cpu, absl::ZeroDuration());  // not asked for
}

TEST_F(LoadGeneratorTest, ToggleMeasuresSuccessfulCalls) {
  ASSERT_NO_FATAL_FAILURE(Serve({&noop_}));
  absl::StatusOr<LoadReport> report = RunLoad(Options(LoadMode::kToggle));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->errors, 0);
  EXPECT_GT(report->requests, 10);
}

TEST_F(LoadGeneratorTest, CreateMeasuresSuccessfulCalls) {
  ASSERT_NO_FATAL_FAILURE(Serve({&noop_}));
  absl::StatusOr<LoadReport> report = RunLoad(Options(LoadMode::kCreate));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->errors, 0);
  EXPECT_GT(report->requests, 10);
}

TEST_F(LoadGeneratorTest, EtcdRangeReadsEachSlotsKey) {
  ASSERT_NO_FATAL_FAILURE(Serve({etcd_.kv(), etcd_.watch()}));
  absl::StatusOr<LoadReport> report = RunLoad(Options(LoadMode::kEtcdRange));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->errors, 0) << report->first_error;
  EXPECT_GT(report->requests, 10);
  EXPECT_EQ(etcd_.puts(), 4);  // the setup: one key per slot
  EXPECT_EQ(etcd_.keys(), 4u);
}

TEST_F(LoadGeneratorTest, EtcdPutWritesANewKeyEveryCall) {
  ASSERT_NO_FATAL_FAILURE(Serve({etcd_.kv(), etcd_.watch()}));
  absl::StatusOr<LoadReport> report = RunLoad(Options(LoadMode::kEtcdPut));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->errors, 0) << report->first_error;
  EXPECT_GT(report->requests, 10);
  EXPECT_GE(etcd_.puts(), report->requests);
  EXPECT_EQ(static_cast<int64_t>(etcd_.keys()), etcd_.puts());
}

TEST_F(LoadGeneratorTest, EtcdRangeThatFindsNoKeyFails) {
  ForgetfulKv forgetful;
  ASSERT_NO_FATAL_FAILURE(Serve({&forgetful}));
  absl::StatusOr<LoadReport> report = RunLoad(Options(LoadMode::kEtcdRange));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->requests, 0);
  EXPECT_GT(report->errors, 10);
  EXPECT_THAT(report->first_error,
              HasSubstr("NOT_FOUND: etcd has no key /tokenstatus-bench/load/"));
}

TEST_F(LoadGeneratorTest, CountsFailedCallsAndKeepsTheFirst) {
  FailingGetService failing;
  ASSERT_NO_FATAL_FAILURE(Serve({&failing}));
  absl::StatusOr<LoadReport> report = RunLoad(Options(LoadMode::kGet));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->requests, 0);
  EXPECT_GT(report->errors, 10);
  EXPECT_EQ(report->first_error, "NOT_FOUND: no such token");
  EXPECT_EQ(report->p99, absl::ZeroDuration());
}

TEST_F(LoadGeneratorTest, UnreachableTargetIsAnError) {
  ASSERT_NO_FATAL_FAILURE(Serve({&noop_}));
  LoadOptions options = Options(LoadMode::kGet);
  options.rpc_timeout = absl::Milliseconds(200);
  server_->Shutdown();
  server_.reset();
  absl::StatusOr<LoadReport> report = RunLoad(options);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorReason(report.status()), "TARGET_UNREACHABLE");
}

TEST(LoadGeneratorOptionsTest, RejectsBadOptions) {
  LoadOptions options;
  options.concurrency = 0;
  EXPECT_EQ(RunLoad(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.concurrency = 1;
  options.duration = absl::ZeroDuration();
  EXPECT_EQ(RunLoad(options).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(LoadGeneratorOptionsTest, ParsesModesAndFormatsReports) {
  EXPECT_EQ(*ParseLoadMode("get"), LoadMode::kGet);
  EXPECT_EQ(*ParseLoadMode("toggle"), LoadMode::kToggle);
  EXPECT_EQ(*ParseLoadMode("create"), LoadMode::kCreate);
  EXPECT_EQ(*ParseLoadMode("etcd-range"), LoadMode::kEtcdRange);
  EXPECT_EQ(*ParseLoadMode("etcd-put"), LoadMode::kEtcdPut);
  EXPECT_EQ(*ParseLoadMode("verify"), LoadMode::kVerify);
  EXPECT_EQ(*ParseLoadMode("check"), LoadMode::kCheck);
  EXPECT_EQ(ParseLoadMode("put").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseLoadMode("etcd").status().code(), absl::StatusCode::kInvalidArgument);
  for (LoadMode mode : {LoadMode::kGet, LoadMode::kToggle, LoadMode::kCreate, LoadMode::kEtcdRange,
                        LoadMode::kEtcdPut, LoadMode::kVerify, LoadMode::kCheck}) {
    EXPECT_EQ(*ParseLoadMode(LoadModeName(mode)), mode);
  }

  LoadOptions options;
  options.mode = LoadMode::kToggle;
  options.concurrency = 16;
  LoadReport report;
  report.requests = 5000;
  report.requests_per_second = 1000;
  report.p50 = absl::Microseconds(250);
  report.p99 = absl::Microseconds(1500);
  report.client_cpu_percent = 42;
  report.client_cpu = absl::Milliseconds(100);
  report.server_cpu = absl::Milliseconds(250);
  EXPECT_THAT(FormatReport(options, report),
              HasSubstr("mode=toggle concurrency=16 connections=1 threads=1 requests=5000 "
                        "errors=0 rps=1000 p50_us=250 p99_us=1500 client_cpu_pct=42 "
                        "client_us_per_request=20.0 server_us_per_request=50.0 "
                        "store_us_per_request=0.0"));
}

}  // namespace
}  // namespace tokenstatus::bench
