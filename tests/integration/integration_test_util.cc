#include "tests/integration/integration_test_util.h"

#include <openssl/sha.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace tokenstatus::integration {
namespace {

std::string StatusCodeName(grpc::StatusCode code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

void SetDeadline(grpc::ClientContext& context, absl::Duration timeout) {
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

std::atomic<int> next_token_number{0};
std::atomic<int> next_account_number{0};

// "<prefix>-NNNN-NNNN" for the n-th id of a process (10^8 - 10^7 of them).
std::string NumberedId(absl::string_view prefix, int n) {
  return absl::StrFormat("%s-%04d-%04d", prefix, 1000 + n / 10000, n % 10000);
}

}  // namespace

absl::StatusOr<google::rpc::ErrorInfo> ErrorInfoOf(const grpc::Status& status) {
  if (status.error_details().empty()) {
    return absl::NotFoundError("no grpc-status-details-bin (error_details) in the status");
  }
  google::rpc::Status details;
  if (!details.ParseFromString(status.error_details())) {
    return absl::DataLossError("error_details is not a google.rpc.Status");
  }
  if (details.code() != status.error_code()) {
    return absl::InvalidArgumentError(absl::StrCat("google.rpc.Status code ", details.code(),
                                                   " differs from the gRPC code ",
                                                   status.error_code()));
  }
  std::vector<google::rpc::ErrorInfo> infos;
  for (const google::protobuf::Any& any : details.details()) {
    google::rpc::ErrorInfo info;
    if (any.Is<google::rpc::ErrorInfo>() && any.UnpackTo(&info)) infos.push_back(info);
  }
  if (infos.size() != 1) {
    return absl::NotFoundError(
        absl::StrCat("expected one google.rpc.ErrorInfo in the details, found ", infos.size()));
  }
  return infos[0];
}

std::string Describe(const grpc::Status& status) {
  if (status.ok()) return "OK";
  absl::StatusOr<google::rpc::ErrorInfo> info = ErrorInfoOf(status);
  return absl::StrCat(StatusCodeName(status.error_code()), ": ", status.error_message(), " [",
                      info.ok() ? absl::StrCat("reason ", info->reason())
                                : absl::StrCat("no ErrorInfo: ", info.status().message()),
                      "]");
}

::testing::AssertionResult IsRpcError(const grpc::Status& status, grpc::StatusCode code,
                                      absl::string_view reason, absl::string_view field) {
  if (status.error_code() != code) {
    return ::testing::AssertionFailure() << "expected " << StatusCodeName(code) << " / " << reason
                                         << ", got " << Describe(status);
  }
  absl::StatusOr<google::rpc::ErrorInfo> info = ErrorInfoOf(status);
  if (!info.ok())
    return ::testing::AssertionFailure() << info.status() << " in " << Describe(status);
  if (info->reason() != reason || info->domain() != kErrorDomain) {
    return ::testing::AssertionFailure()
           << "expected ErrorInfo " << reason << " in domain " << kErrorDomain << ", got "
           << info->reason() << " in domain " << info->domain() << " (" << Describe(status) << ")";
  }
  if (!field.empty()) {
    auto it = info->metadata().find("field");
    if (it == info->metadata().end() || it->second != field) {
      return ::testing::AssertionFailure()
             << "expected ErrorInfo metadata field=" << field << ", got "
             << (it == info->metadata().end() ? "none" : it->second) << " (" << Describe(status)
             << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

std::shared_ptr<grpc::Channel> NewDedicatedChannel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

Api::Api(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout)
    : stub_(TokenService::NewStub(std::move(channel))), timeout_(timeout) {}

template <typename Request, typename Response>
Rpc<Response> Api::Call(grpc::Status (TokenService::Stub::*method)(grpc::ClientContext*,
                                                                   const Request&, Response*),
                        const Request& request) const {
  grpc::ClientContext context;
  SetDeadline(context, timeout_);
  Rpc<Response> rpc;
  rpc.status = (stub_.get()->*method)(&context, request, &rpc.response);
  return rpc;
}

Rpc<CreateTokenResponse> Api::Create(const CreateTokenRequest& request) const {
  return Call(&TokenService::Stub::CreateToken, request);
}

Rpc<GetTokenResponse> Api::Get(const GetTokenRequest& request) const {
  return Call(&TokenService::Stub::GetToken, request);
}

Rpc<GetTokenResponse> Api::Get(const std::string& token_id) const {
  GetTokenRequest request;
  request.set_token_id(token_id);
  return Get(request);
}

Rpc<ListTokensResponse> Api::List(const ListTokensRequest& request) const {
  return Call(&TokenService::Stub::ListTokens, request);
}

Rpc<EnableTokenResponse> Api::Enable(const EnableTokenRequest& request) const {
  return Call(&TokenService::Stub::EnableToken, request);
}

Rpc<EnableTokenResponse> Api::Enable(const std::string& token_id) const {
  EnableTokenRequest request;
  request.set_token_id(token_id);
  return Enable(request);
}

Rpc<DisableTokenResponse> Api::Disable(const DisableTokenRequest& request) const {
  return Call(&TokenService::Stub::DisableToken, request);
}

Rpc<DisableTokenResponse> Api::Disable(const std::string& token_id) const {
  DisableTokenRequest request;
  request.set_token_id(token_id);
  return Disable(request);
}

Rpc<DeleteTokenResponse> Api::Delete(const DeleteTokenRequest& request) const {
  return Call(&TokenService::Stub::DeleteToken, request);
}

Rpc<DeleteTokenResponse> Api::Delete(const std::string& token_id) const {
  DeleteTokenRequest request;
  request.set_token_id(token_id);
  return Delete(request);
}

Rpc<VerifyTokenResponse> Api::Verify(const std::string& secret) const {
  VerifyTokenRequest request;
  request.set_secret(secret);
  return Call(&TokenService::Stub::VerifyToken, request);
}

absl::StatusOr<std::vector<Token>> Api::ListAll(ListTokensRequest request) const {
  std::vector<Token> tokens;
  while (true) {
    Rpc<ListTokensResponse> page = List(request);
    if (!page.ok())
      return absl::Status(static_cast<absl::StatusCode>(page.status.error_code()),
                          Describe(page.status));
    tokens.insert(tokens.end(), page.response.tokens().begin(), page.response.tokens().end());
    if (page.response.next_page_token().empty()) return tokens;
    request.set_page_token(page.response.next_page_token());
  }
}

std::string NewTokenId() { return NewTokenIds(1)[0]; }

std::vector<std::string> NewTokenIds(int count) {
  const int first = next_token_number.fetch_add(count);
  std::vector<std::string> ids;
  for (int n = first; n < first + count; ++n) ids.push_back(NumberedId("TKN", n));
  return ids;
}

std::string NewAccountId() { return NumberedId("ACC", next_account_number.fetch_add(1)); }

std::string NewSecret(absl::string_view token_id) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  absl::BitGen gen;
  std::string secret = absl::StrCat("idt:", token_id, ":");
  for (int i = 0; i < 43; ++i) secret += kAlphabet[absl::Uniform(gen, 0, 64)];
  return secret;
}

std::string Sha256Hex(absl::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  std::string hex;
  for (unsigned char byte : digest) absl::StrAppendFormat(&hex, "%02x", byte);
  return hex;
}

CreateTokenRequest ImportRequest(const std::string& token_id, const std::string& secret,
                                 const std::string& account_id) {
  CreateTokenRequest request;
  request.set_account_id(account_id);
  request.set_name(absl::StrCat("imported ", token_id));
  request.set_token_id(token_id);
  request.set_secret_sha256(Sha256Hex(secret));
  return request;
}

std::string StreamEntry::Field(absl::string_view name) const {
  for (const auto& [field, value] : fields) {
    if (field == name) return value;
  }
  return "";
}

bool StreamEntry::HasValue(absl::string_view value) const {
  for (const auto& field : fields) {
    if (field.second == value) return true;
  }
  return false;
}

int64_t StreamEntry::Revision() const {
  int64_t revision;
  absl::string_view rest = id;
  if (!absl::ConsumeSuffix(&rest, "-0") || !absl::SimpleAtoi(rest, &revision)) return -1;
  return revision;
}

absl::StatusOr<std::vector<StreamEntry>> ReadStream(testing::RedisInstance& redis,
                                                    const std::string& key) {
  absl::StatusOr<testing::RedisReply> reply = redis.CommandReply({"XRANGE", key, "-", "+"});
  if (!reply.ok()) return reply.status();
  std::vector<StreamEntry> entries;
  for (const testing::RedisReply& element : reply->elements) {
    if (element.elements.size() != 2 || element.elements[1].elements.size() % 2 != 0) {
      return absl::InternalError("XRANGE: unexpected reply shape");
    }
    StreamEntry entry;
    entry.id = element.elements[0].str;
    const std::vector<testing::RedisReply>& pairs = element.elements[1].elements;
    for (size_t i = 0; i < pairs.size(); i += 2) {
      entry.fields.emplace_back(pairs[i].str, pairs[i + 1].str);
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

std::string Normalized(absl::string_view value, absl::string_view prefix) {
  std::string upper = absl::AsciiStrToUpper(value);
  absl::string_view rest = upper;
  absl::ConsumePrefix(&rest, prefix);
  return std::string(rest);
}

HealthWatcher::HealthWatcher(std::shared_ptr<grpc::Channel> channel, std::string service)
    : reader_([this, channel = std::move(channel), service = std::move(service)]() mutable {
        Run(std::move(channel), std::move(service));
      }) {}

HealthWatcher::~HealthWatcher() {
  context_.TryCancel();
  reader_.join();
}

void HealthWatcher::Run(std::shared_ptr<grpc::Channel> channel, std::string service) {
  std::unique_ptr<grpc::health::v1::Health::Stub> stub =
      grpc::health::v1::Health::NewStub(std::move(channel));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(std::move(service));
  std::unique_ptr<grpc::ClientReader<grpc::health::v1::HealthCheckResponse>> reader =
      stub->Watch(&context_, request);
  grpc::health::v1::HealthCheckResponse response;
  while (reader->Read(&response)) {
    absl::MutexLock lock(&mu_);
    seen_.push_back(response.status());
  }
  grpc::Status status = reader->Finish();
  absl::MutexLock lock(&mu_);
  ended_ = true;
  end_status_ = std::move(status);
}

bool HealthWatcher::WaitFor(ServingStatus status, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto reached = [this, status]() {
    mu_.AssertReaderHeld();
    return (!seen_.empty() && seen_.back() == status) || ended_;
  };
  mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
  return !seen_.empty() && seen_.back() == status;
}

std::string HealthWatcher::History() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> names;
  for (ServingStatus status : seen_) {
    names.push_back(grpc::health::v1::HealthCheckResponse::ServingStatus_Name(status));
  }
  return absl::StrCat("health statuses seen: [", absl::StrJoin(names, ", "), "]",
                      ended_ ? absl::StrCat("; stream ended: ", Describe(end_status_)) : "");
}

testing::ServerProcess* ServerTest::server_ = nullptr;
std::string* ServerTest::key_prefix_ = nullptr;
Api* ServerTest::api_ = nullptr;
std::string* ServerTest::start_error_ = nullptr;

TempDir::TempDir() {
  std::string pattern =
      (std::filesystem::temp_directory_path() / "tokenstatus-test.XXXXXX").string();
  path_ = ::mkdtemp(pattern.data()) != nullptr ? pattern : "";
}

TempDir::~TempDir() {
  std::error_code ignored;
  if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
}

std::string TempDir::File(absl::string_view name) const { return absl::StrCat(path_, "/", name); }

absl::StatusOr<std::unique_ptr<testing::ServerProcess>> StartSidecar(
    const std::string& upstream, const std::string& listen,
    const std::vector<std::string>& extra_flags) {
  std::vector<std::string> argv = {
      TOKENSTATUS_SIDECAR_BINARY, absl::StrCat("--upstream=", upstream),
      absl::StrCat("--listen=", listen), "--reconnect_max_backoff=200ms"};
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  return testing::ServerProcess::StartCommand(std::move(argv), "sidecar");
}

void ServerTest::SetUpTestSuite() {
  key_prefix_ = new std::string(testing::UniqueKeyPrefix());
  absl::StatusOr<std::unique_ptr<testing::ServerProcess>> server = testing::ServerProcess::Start(
      {.redis_address = redis().address(), .key_prefix = *key_prefix_});
  if (!server.ok()) {
    start_error_ = new std::string(server.status().ToString());
    return;
  }
  server_ = server->release();
  api_ = new Api(server_->NewChannel());
}

void ServerTest::TearDownTestSuite() {
  delete api_;
  delete server_;
  delete key_prefix_;
  delete start_error_;
  api_ = nullptr;
  server_ = nullptr;
  key_prefix_ = nullptr;
  start_error_ = nullptr;
}

void ServerTest::SetUp() {
  ASSERT_NE(server_, nullptr) << "tokenstatus-server did not start: "
                              << (start_error_ != nullptr ? *start_error_ : "?");
}

std::string ServerTest::Key(absl::string_view suffix) {
  return absl::StrCat(*key_prefix_, ":", suffix);
}

std::unique_ptr<TokenCache> NewCache(const std::string& address, TokenCacheOptions options) {
  grpc::ChannelArguments args = TokenCache::ChannelArguments(options);
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  absl::StatusOr<std::unique_ptr<TokenCache>> cache =
      TokenCache::Create(grpc::CreateCustomChannel(absl::StrCat("ipv4:", address),
                                                   grpc::InsecureChannelCredentials(), args),
                         options);
  EXPECT_TRUE(cache.ok()) << cache.status();
  return cache.ok() ? *std::move(cache) : nullptr;
}

}  // namespace tokenstatus::integration
