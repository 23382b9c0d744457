#pragma once

// Shared helpers of the integration tests: a typed client with per-call deadlines, error
// details as a client sees them, unique ids, the event stream as stored in Redis, a
// grpc.health.v1 watcher, and a fixture with one server per test suite.

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "apitoken/v1/token_service.grpc.pb.h"
#include "client/token_cache.h"
#include "google/rpc/error_details.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "tests/testing/redis_instance.h"
#include "tests/testing/server_process.h"

namespace tokenstatus::integration {

using apitoken::v1::CreateTokenRequest;
using apitoken::v1::CreateTokenResponse;
using apitoken::v1::DeleteTokenRequest;
using apitoken::v1::DeleteTokenResponse;
using apitoken::v1::DisableTokenRequest;
using apitoken::v1::DisableTokenResponse;
using apitoken::v1::EnableTokenRequest;
using apitoken::v1::EnableTokenResponse;
using apitoken::v1::GetTokenRequest;
using apitoken::v1::GetTokenResponse;
using apitoken::v1::ListTokensRequest;
using apitoken::v1::ListTokensResponse;
using apitoken::v1::Token;
using apitoken::v1::TokenService;
using apitoken::v1::VerifyTokenRequest;
using apitoken::v1::VerifyTokenResponse;
using ServingStatus = grpc::health::v1::HealthCheckResponse::ServingStatus;

// The ErrorInfo domain every error of the service carries.
inline constexpr char kErrorDomain[] = "tokenstatus.apitoken.v1";
// The deadline of a call unless a test says otherwise.
inline constexpr absl::Duration kRpcTimeout = absl::Seconds(10);

// The outcome of one unary call.
template <typename Response>
struct Rpc {
  grpc::Status status;
  Response response;
  bool ok() const { return status.ok(); }
};

// The ErrorInfo details of `status` (from grpc-status-details-bin), or an error describing
// what is missing: no details, an undecodable google.rpc.Status, no or several ErrorInfos.
absl::StatusOr<google::rpc::ErrorInfo> ErrorInfoOf(const grpc::Status& status);

// "NOT_FOUND: message [reason TOKEN_NOT_FOUND]", for failure messages.
std::string Describe(const grpc::Status& status);

// Succeeds if `status` has `code`, its google.rpc.Status details carry the same code and one
// ErrorInfo with domain kErrorDomain and `reason`, and (unless `field` is empty) metadata
// {"field": field}.
::testing::AssertionResult IsRpcError(const grpc::Status& status, grpc::StatusCode code,
                                      absl::string_view reason, absl::string_view field = "");

// A channel with its own TCP connection (a local subchannel pool), so that several of them
// put real concurrency on the server.
std::shared_ptr<grpc::Channel> NewDedicatedChannel(const std::string& address);

// A TokenService client whose every call has a deadline. Thread-safe.
class Api {
 public:
  explicit Api(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout = kRpcTimeout);

  Rpc<CreateTokenResponse> Create(const CreateTokenRequest& request) const;
  Rpc<GetTokenResponse> Get(const GetTokenRequest& request) const;
  Rpc<GetTokenResponse> Get(const std::string& token_id) const;
  Rpc<ListTokensResponse> List(const ListTokensRequest& request) const;
  Rpc<EnableTokenResponse> Enable(const EnableTokenRequest& request) const;
  Rpc<EnableTokenResponse> Enable(const std::string& token_id) const;
  Rpc<DisableTokenResponse> Disable(const DisableTokenRequest& request) const;
  Rpc<DisableTokenResponse> Disable(const std::string& token_id) const;
  Rpc<DeleteTokenResponse> Delete(const DeleteTokenRequest& request) const;
  Rpc<DeleteTokenResponse> Delete(const std::string& token_id) const;
  Rpc<VerifyTokenResponse> Verify(const std::string& secret) const;

  // Every token of a listing with `request`'s filters, following next_page_token to the end;
  // the first failing page's status otherwise.
  absl::StatusOr<std::vector<Token>> ListAll(ListTokensRequest request) const;

  absl::Duration timeout() const { return timeout_; }

 private:
  template <typename Request, typename Response>
  Rpc<Response> Call(grpc::Status (TokenService::Stub::*method)(grpc::ClientContext*,
                                                                const Request&, Response*),
                     const Request& request) const;

  std::unique_ptr<TokenService::Stub> stub_;
  absl::Duration timeout_;
};

// Unique, well-formed ids for this test process: TKN-NNNN-NNNN / ACC-NNNN-NNNN from counters
// (the server allocates random ids, so a clash with them is a 1 in 10^8 event per id).
std::string NewTokenId();
// `count` consecutive token ids, in id order.
std::vector<std::string> NewTokenIds(int count);
std::string NewAccountId();

// A well-formed secret for `token_id` with a random opaque part (43 base64url characters).
std::string NewSecret(absl::string_view token_id);
// Lowercase hex SHA-256 of `data`.
std::string Sha256Hex(absl::string_view data);

// A CreateTokenRequest that imports `token_id` with `secret` (its SHA-256) for `account_id`.
CreateTokenRequest ImportRequest(const std::string& token_id, const std::string& secret,
                                 const std::string& account_id);

// One entry of the event stream as stored in Redis.
struct StreamEntry {
  std::string id;                                           // "<revision>-0"
  std::vector<std::pair<std::string, std::string>> fields;  // in stored order

  // The value of the first field named `name`; empty if there is none.
  std::string Field(absl::string_view name) const;
  // Whether some field's value is exactly `value` (how an event names its token).
  bool HasValue(absl::string_view value) const;
  // The revision of the entry id's first part; -1 if the id is not "<n>-0".
  int64_t Revision() const;
};

// Every entry of the stream `key` (XRANGE - +).
absl::StatusOr<std::vector<StreamEntry>> ReadStream(testing::RedisInstance& redis,
                                                    const std::string& key);

// `value` upper-cased without a leading `prefix` ("TYPE_", "STATE_"), so that "disabled",
// "DISABLED" and "TYPE_DISABLED" compare equal.
std::string Normalized(absl::string_view value, absl::string_view prefix);

// Follows grpc.health.v1.Health/Watch for one service on a reader thread and remembers every
// status it reports. Thread-safe.
class HealthWatcher {
 public:
  explicit HealthWatcher(std::shared_ptr<grpc::Channel> channel, std::string service = "");
  // Cancels the stream and joins the reader.
  ~HealthWatcher();

  // Waits until the latest reported status is `status`; false after `timeout` or if the
  // stream ended.
  bool WaitFor(ServingStatus status, absl::Duration timeout);
  // The statuses seen so far and how the stream ended, for failure messages.
  std::string History() const;

 private:
  void Run(std::shared_ptr<grpc::Channel> channel, std::string service);

  grpc::ClientContext context_;
  mutable absl::Mutex mu_;
  std::vector<ServingStatus> seen_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status end_status_ ABSL_GUARDED_BY(mu_);
  std::thread reader_;  // last: it uses every member above
};

// A fresh temporary directory of this test process (tests run in parallel processes, so fixed
// names would collide), removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  // "<dir>/<name>".
  std::string File(absl::string_view name) const;

 private:
  std::string path_;
};

// Starts `token-sidecar --upstream=<upstream> --listen=<listen> --reconnect_max_backoff=200ms
// <extra_flags>` (TOKENSTATUS_SIDECAR_BINARY) and returns once it listens; its log lines are
// echoed prefixed "[sidecar] " (see testing::ServerProcess::StartCommand for the errors).
absl::StatusOr<std::unique_ptr<testing::ServerProcess>> StartSidecar(
    const std::string& upstream, const std::string& listen,
    const std::vector<std::string>& extra_flags = {});

// A fixture with one tokenstatus-server on SharedRedis() and its own key prefix, started once
// per test suite and shared by its tests (which isolate themselves with unique ids and
// accounts). A test fails in SetUp if the server could not be started.
class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();
  void SetUp() override;

  static testing::ServerProcess& server() { return *server_; }
  static testing::RedisInstance& redis() { return testing::SharedRedis(); }
  static const std::string& key_prefix() { return *key_prefix_; }
  static const Api& api() { return *api_; }
  // "<prefix>:<suffix>", a key of this suite's dataset (e.g. Key("rev")).
  static std::string Key(absl::string_view suffix);

 private:
  static testing::ServerProcess* server_;
  static std::string* key_prefix_;
  static Api* api_;
  static std::string* start_error_;
};

// A TokenCache of the server at `address` (plaintext) on a connection of its own, with
// `options`; null (and a test failure) if it cannot be created.
std::unique_ptr<TokenCache> NewCache(const std::string& address, TokenCacheOptions options = {});

}  // namespace tokenstatus::integration
