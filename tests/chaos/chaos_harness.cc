#include "tests/chaos/chaos_harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/byte_buffer.h"
#include "server/store/token_record.h"
#include "tests/integration/integration_test_util.h"

#ifndef TOKENSTATUS_CHAOS_WATCHER_BINARY
#error "TOKENSTATUS_CHAOS_WATCHER_BINARY must name the tokenstatus-chaos-watcher executable"
#endif

namespace tokenstatus::chaos {
namespace {

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
using apitoken::v1::TokenService;
using apitoken::v1::VerifyTokenRequest;
using apitoken::v1::VerifyTokenResponse;
using apitoken::v1::WatchTokensRequest;
namespace fs = std::filesystem;

constexpr int kOk = static_cast<int>(grpc::StatusCode::OK);
constexpr int kInvalidArgument = static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT);
constexpr int kResourceExhausted = static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED);
constexpr int kInternal = static_cast<int>(grpc::StatusCode::INTERNAL);
// gRPC's callback API answers a request that does not deserialize with UNIMPLEMENTED and no
// message (grpcpp/impl/codegen/server_callback_handlers.h, gRPC 1.51).
constexpr int kUnimplemented = static_cast<int>(grpc::StatusCode::UNIMPLEMENTED);

void SetDeadline(grpc::ClientContext& context, absl::Duration timeout) {
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

// Fills the result of a finished call into `op`.
void Finish(Operation& op, const grpc::Status& status) {
  op.complete_ns = NowNs();
  op.code = status.error_code();
  op.error = status.error_message();
  op.outcome = OutcomeOf(op.code);
}

// The ErrorInfo reason of a failed call ("" if none).
std::string ReasonOf(const grpc::Status& status) {
  absl::StatusOr<google::rpc::ErrorInfo> info = integration::ErrorInfoOf(status);
  return info.ok() ? info->reason() : "";
}

}  // namespace

// --- Parameters ---

bool FullRun() {
  const char* level = std::getenv("CHAOS_LEVEL");
  return level != nullptr && std::string(level) == "full";
}

int64_t EnvInt(const char* name, int64_t fallback) {
  const char* value = std::getenv(name);
  int64_t parsed = 0;
  if (value == nullptr || !absl::SimpleAtoi(value, &parsed)) return fallback;
  return parsed;
}

std::vector<std::string> ExtraServerFlags() {
  const char* value = std::getenv("CHAOS_SERVER_FLAGS");
  if (value == nullptr) return {};
  return absl::StrSplit(value, ' ', absl::SkipEmpty());
}

// --- Recording ---

void Recorder::AddOperation(Operation op) {
  absl::MutexLock lock(&mu_);
  history_.operations.push_back(std::move(op));
}

void Recorder::AddFault(Fault fault) {
  absl::MutexLock lock(&mu_);
  history_.faults.push_back(std::move(fault));
}

void Recorder::AddAnswer(Answer answer) {
  absl::MutexLock lock(&mu_);
  history_.answers.push_back(std::move(answer));
}

int Recorder::NewWatchLog(std::string name, std::string account) {
  absl::MutexLock lock(&mu_);
  history_.watchers.push_back({std::move(name), std::move(account), {}});
  return static_cast<int>(history_.watchers.size()) - 1;
}

void Recorder::AddWatchRecord(int log, WatchRecord record) {
  absl::MutexLock lock(&mu_);
  history_.watchers[log].records.push_back(std::move(record));
}

void Recorder::AddWatchLog(WatchLog log) {
  absl::MutexLock lock(&mu_);
  history_.watchers.push_back(std::move(log));
}

History Recorder::TakeHistory() {
  absl::MutexLock lock(&mu_);
  return std::move(history_);
}

int64_t Recorder::operations() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(history_.operations.size());
}

FaultScope::FaultScope(Recorder& recorder, std::string name, bool replaces_history,
                       int64_t keeps_before_ns)
    : recorder_(recorder) {
  fault_.name = std::move(name);
  fault_.start_ns = NowNs();
  fault_.replaces_history = replaces_history;
  fault_.keeps_before_ns = keeps_before_ns;
}

void FaultScope::Done() {
  fault_.end_ns = NowNs();
  recorder_.AddFault(fault_);
}

void TokenDirectory::Add(KnownToken token) {
  absl::MutexLock lock(&mu_);
  tokens_.push_back(std::move(token));
}

std::vector<KnownToken> TokenDirectory::All() const {
  absl::MutexLock lock(&mu_);
  return tokens_;
}

std::optional<KnownToken> TokenDirectory::Random(absl::BitGen& random) const {
  absl::MutexLock lock(&mu_);
  if (tokens_.empty()) return std::nullopt;
  return tokens_[absl::Uniform<size_t>(random, 0, tokens_.size())];
}

size_t TokenDirectory::size() const {
  absl::MutexLock lock(&mu_);
  return tokens_.size();
}

// --- The system under test ---

bool AwaitServing(const std::string& address, absl::Duration timeout) {
  integration::HealthWatcher health(NewChaosChannel(address));
  return health.WaitFor(grpc::health::v1::HealthCheckResponse::SERVING, timeout);
}

absl::StatusOr<std::unique_ptr<Cluster>> Cluster::Start(ClusterOptions options) {
  auto cluster = std::unique_ptr<Cluster>(new Cluster());
  cluster->options_ = std::move(options);
  absl::StatusOr<std::unique_ptr<testing::RedisInstance>> redis = testing::RedisInstance::Start();
  if (!redis.ok()) return redis.status();
  cluster->redis_ = *std::move(redis);
  cluster->prefix_ = testing::UniqueKeyPrefix();
  cluster->addresses_.resize(cluster->options_.replicas);
  cluster->replicas_.resize(cluster->options_.replicas);
  for (int i = 0; i < cluster->options_.replicas; ++i) {
    if (absl::Status status = cluster->StartReplica(i); !status.ok()) return status;
  }
  return cluster;
}

absl::Status Cluster::StartReplica(int i) {
  std::vector<std::string> flags = {"--shutdown_grace=1s"};
  flags.insert(flags.end(), options_.server_flags.begin(), options_.server_flags.end());
  const std::vector<std::string> extra = ExtraServerFlags();
  flags.insert(flags.end(), extra.begin(), extra.end());
  absl::StatusOr<std::unique_ptr<testing::ServerProcess>> server =
      testing::ServerProcess::Start({.redis_address = redis_->address(),
                                     .key_prefix = prefix_,
                                     .extra_flags = flags,
                                     .listen_address = addresses_[i]});
  if (!server.ok()) return server.status();
  replicas_[i] = *std::move(server);
  addresses_[i] = replicas_[i]->address();
  if (!AwaitServing(addresses_[i], absl::Seconds(30))) {
    return absl::DeadlineExceededError(absl::StrCat("replica ", i, " did not report SERVING"));
  }
  return absl::OkStatus();
}

absl::Status Cluster::RestartReplica(int i) {
  replicas_[i].reset();
  return StartReplica(i);
}

std::string Cluster::Key(absl::string_view suffix) const {
  return absl::StrCat(prefix_, ":", suffix);
}

absl::StatusOr<std::pair<int64_t, std::string>> Cluster::Head() {
  absl::StatusOr<std::vector<std::string>> rev = redis_->Command({"GET", Key("rev")});
  if (!rev.ok()) return rev.status();
  absl::StatusOr<std::vector<std::string>> epoch = redis_->Command({"HGET", Key("meta"), "epoch"});
  if (!epoch.ok()) return epoch.status();
  int64_t revision = 0;
  if (!rev->empty() && !(*rev)[0].empty() && !absl::SimpleAtoi((*rev)[0], &revision)) {
    return absl::InternalError(absl::StrCat("rev is not a number: ", (*rev)[0]));
  }
  return std::make_pair(revision, epoch->empty() ? std::string() : (*epoch)[0]);
}

// --- Clients ---

void AckCounter::Add(int64_t revision) {
  absl::MutexLock lock(&mu_);
  ++count_;
  max_revision_ = std::max(max_revision_, revision);
}

int64_t AckCounter::count() const {
  absl::MutexLock lock(&mu_);
  return count_;
}

int64_t AckCounter::max_revision() const {
  absl::MutexLock lock(&mu_);
  return max_revision_;
}

bool AckCounter::AwaitCount(int64_t count, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto reached = [&]() {
    mu_.AssertReaderHeld();
    return count_ >= count;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
}

bool AckCounter::AwaitRevision(int64_t revision, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto reached = [&]() {
    mu_.AssertReaderHeld();
    return max_revision_ >= revision;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
}

Writer::Writer(WriterOptions options, Recorder& recorder, TokenDirectory& directory,
               AckCounter& acks)
    : options_(std::move(options)),
      recorder_(recorder),
      directory_(directory),
      acks_(acks),
      thread_([this] { Run(); }) {}

Writer::~Writer() { Stop(); }

void Writer::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void Writer::Run() {
  const std::unique_ptr<TokenService::Stub> stub =
      TokenService::NewStub(NewChaosChannel(options_.address));
  absl::BitGen random;
  struct Owned {
    std::string id;
    Token::State state;  // STATE_UNSPECIFIED: not known (after an indeterminate call)
  };
  std::vector<Owned> owned;
  const std::string client = absl::StrCat(options_.name, "@", options_.address);
  for (int64_t n = 0; n < options_.max_ops && !stop_; ++n) {
    Operation op;
    op.client = client;
    op.tag = absl::StrCat(options_.name, "-", n);
    grpc::ClientContext context;
    SetDeadline(context, options_.deadline);
    if (owned.empty() || absl::Uniform(random, 0, 100) < options_.create_percent) {
      const std::string id = integration::NewTokenId();
      const std::string secret = integration::NewSecret(id);
      directory_.Add({id, options_.account, secret});
      CreateTokenRequest request = integration::ImportRequest(id, secret, options_.account);
      request.set_description(op.tag);
      op.type = OpType::kCreate;
      op.token_id = id;
      op.invoke_ns = NowNs();
      CreateTokenResponse response;
      Finish(op, stub->CreateToken(&context, request, &response));
      if (op.outcome == Outcome::kOk) {
        op.found = true;
        op.token = TokenState::FromToken(response.token());
        owned.push_back({id, response.token().state()});
        acks_.Add(op.token.revision);
      } else if (op.outcome == Outcome::kUnknown) {
        owned.push_back({id, Token::STATE_UNSPECIFIED});
      }
    } else {
      const size_t index = absl::Uniform<size_t>(random, 0, owned.size());
      Owned& token = owned[index];
      const bool remove = absl::Uniform(random, 0, 100) < options_.delete_percent;
      op.type = remove                                 ? OpType::kDelete
                : token.state == Token::STATE_ACTIVE   ? OpType::kDisable
                : token.state == Token::STATE_DISABLED ? OpType::kEnable
                : absl::Bernoulli(random, 0.5)         ? OpType::kDisable
                                                       : OpType::kEnable;
      op.token_id = token.id;
      op.invoke_ns = NowNs();
      grpc::Status status;
      Token after;
      if (op.type == OpType::kDelete) {
        DeleteTokenRequest request;
        request.set_token_id(token.id);
        request.set_reason(op.tag);
        DeleteTokenResponse response;
        status = stub->DeleteToken(&context, request, &response);
        after = response.token();
      } else if (op.type == OpType::kDisable) {
        DisableTokenRequest request;
        request.set_token_id(token.id);
        request.set_reason(op.tag);
        DisableTokenResponse response;
        status = stub->DisableToken(&context, request, &response);
        after = response.token();
      } else {
        EnableTokenRequest request;
        request.set_token_id(token.id);
        request.set_reason(op.tag);
        EnableTokenResponse response;
        status = stub->EnableToken(&context, request, &response);
        after = response.token();
      }
      Finish(op, status);
      if (op.outcome == Outcome::kOk) {
        op.found = true;
        op.token = TokenState::FromToken(after);
        token.state = after.state();
        acks_.Add(op.token.revision);
      } else {
        const std::string reason = ReasonOf(status);
        token.state = reason == "TOKEN_ALREADY_DISABLED" ? Token::STATE_DISABLED
                      : reason == "TOKEN_ALREADY_ACTIVE" ? Token::STATE_ACTIVE
                      : reason == "TOKEN_DELETED"        ? Token::STATE_DELETED
                                                         : Token::STATE_UNSPECIFIED;
        // A token that is gone (deleted, or lost with a flushed or restored store) is dropped.
        if (reason == "TOKEN_NOT_FOUND") token.state = Token::STATE_DELETED;
      }
      if (token.state == Token::STATE_DELETED) owned.erase(owned.begin() + index);
    }
    const bool unknown = op.outcome == Outcome::kUnknown;
    recorder_.AddOperation(std::move(op));
    ++operations_;
    // A client backs off when the server is unreachable or slow.
    if (unknown) absl::SleepFor(absl::Milliseconds(50));
    if (options_.pause > absl::ZeroDuration()) absl::SleepFor(options_.pause);
  }
}

absl::Status CreateTokens(const std::string& address, const std::string& account, int count,
                          int threads, const std::string& tag_prefix, Recorder& recorder,
                          TokenDirectory& directory, AckCounter& acks) {
  absl::Mutex mu;
  absl::Status first_error;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      const std::unique_ptr<TokenService::Stub> stub =
          TokenService::NewStub(NewChaosChannel(address));
      for (int i = t; i < count; i += threads) {
        const std::string id = integration::NewTokenId();
        const std::string secret = integration::NewSecret(id);
        directory.Add({id, account, secret});
        Operation op;
        op.client = absl::StrCat(tag_prefix, "@", address);
        op.tag = absl::StrCat(tag_prefix, "-", i);
        op.type = OpType::kCreate;
        op.token_id = id;
        CreateTokenRequest request = integration::ImportRequest(id, secret, account);
        request.set_description(op.tag);
        grpc::ClientContext context;
        SetDeadline(context, absl::Seconds(10));
        CreateTokenResponse response;
        op.invoke_ns = NowNs();
        const grpc::Status status = stub->CreateToken(&context, request, &response);
        Finish(op, status);
        if (status.ok()) {
          op.found = true;
          op.token = TokenState::FromToken(response.token());
          acks.Add(op.token.revision);
        }
        recorder.AddOperation(std::move(op));
        if (!status.ok()) {
          absl::MutexLock lock(&mu);
          if (first_error.ok()) {
            first_error = absl::InternalError(
                absl::StrCat("CreateToken ", id, ": ", integration::Describe(status)));
          }
          return;
        }
      }
    });
  }
  for (std::thread& worker : workers) worker.join();
  return first_error;
}

Reader::Reader(std::string name, std::string address, Recorder& recorder, TokenDirectory& directory,
               int64_t max_ops, absl::Duration pause)
    : name_(std::move(name)),
      address_(std::move(address)),
      recorder_(recorder),
      directory_(directory),
      max_ops_(max_ops),
      pause_(pause),
      thread_([this] { Run(); }) {}

Reader::~Reader() { Stop(); }

void Reader::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void Reader::Run() {
  const std::unique_ptr<TokenService::Stub> stub = TokenService::NewStub(NewChaosChannel(address_));
  absl::BitGen random;
  const std::string client = absl::StrCat(name_, "@", address_);
  for (int64_t n = 0; n < max_ops_ && !stop_; ++n) {
    std::optional<KnownToken> known = directory_.Random(random);
    if (!known.has_value()) {
      absl::SleepFor(pause_);
      continue;
    }
    Operation op;
    op.client = client;
    op.token_id = known->id;
    grpc::ClientContext context;
    SetDeadline(context, absl::Seconds(2));
    op.invoke_ns = NowNs();
    if (n % 2 == 0) {
      op.type = OpType::kGet;
      GetTokenRequest request;
      request.set_token_id(known->id);
      GetTokenResponse response;
      Finish(op, stub->GetToken(&context, request, &response));
      if (op.outcome == Outcome::kOk) {
        op.found = true;
        op.token = TokenState::FromToken(response.token());
        op.served_revision = response.revision();
      }
    } else {
      op.type = OpType::kVerify;
      VerifyTokenRequest request;
      request.set_secret(known->secret);
      VerifyTokenResponse response;
      Finish(op, stub->VerifyToken(&context, request, &response));
      if (op.outcome == Outcome::kOk) {
        const auto result = response.result();
        op.found = result == VerifyTokenResponse::RESULT_VALID ||
                   result == VerifyTokenResponse::RESULT_DISABLED ||
                   result == VerifyTokenResponse::RESULT_DELETED;
        op.token = {known->id, response.account_id(),
                    result == VerifyTokenResponse::RESULT_VALID      ? Token::STATE_ACTIVE
                    : result == VerifyTokenResponse::RESULT_DISABLED ? Token::STATE_DISABLED
                    : result == VerifyTokenResponse::RESULT_DELETED  ? Token::STATE_DELETED
                                                                     : Token::STATE_UNSPECIFIED,
                    response.revision()};
      }
    }
    recorder_.AddOperation(std::move(op));
    absl::SleepFor(pause_);
  }
}

NoiseClient::NoiseClient(std::string name, std::string address, Recorder& recorder,
                         TokenDirectory& directory, int64_t max_ops, absl::Duration pause)
    : name_(std::move(name)),
      address_(std::move(address)),
      recorder_(recorder),
      directory_(directory),
      max_ops_(max_ops),
      pause_(pause),
      channel_(NewChaosChannel(address_)),
      thread_([this] { Run(); }) {}

NoiseClient::~NoiseClient() { Stop(); }

void NoiseClient::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void NoiseClient::Run() {
  constexpr int kKinds = 16;
  for (int64_t n = 0; n < max_ops_ && !stop_; ++n) {
    OneRequest(static_cast<int>(n % kKinds));
    ++operations_;
    absl::SleepFor(pause_);
  }
}

void NoiseClient::OneRequest(int kind) {
  const std::unique_ptr<TokenService::Stub> stub = TokenService::NewStub(channel_);
  Operation op;
  op.client = absl::StrCat(name_, "@", address_);
  op.type = OpType::kNoise;
  op.tag = absl::StrCat(name_, "-", next_tag_++);
  grpc::ClientContext context;
  SetDeadline(context, absl::Seconds(2));
  op.invoke_ns = NowNs();
  grpc::Status status;
  auto fresh_create = [&](std::string account, std::string name, std::string description) {
    const std::string id = integration::NewTokenId();
    CreateTokenRequest request =
        integration::ImportRequest(id, integration::NewSecret(id), account);
    request.set_name(std::move(name));
    request.set_description(std::move(description));
    op.token_id = id;  // a token this request must never create
    CreateTokenResponse response;
    return stub->CreateToken(&context, request, &response);
  };
  switch (kind) {
    case 0:  // oversize: more than --max_request_bytes (64 KiB)
      op.expected_codes = {kResourceExhausted};
      status = fresh_create("ACC-9000-0001", "oversize", op.tag + std::string(70000, 'x'));
      break;
    case 1: {
      op.expected_codes = {kInvalidArgument};
      GetTokenRequest request;
      request.set_token_id("not-a-token-id");
      GetTokenResponse response;
      status = stub->GetToken(&context, request, &response);
      break;
    }
    case 2: {
      op.expected_codes = {kInvalidArgument};
      DisableTokenRequest request;
      request.set_token_id("TKN-12");
      request.set_reason(op.tag);
      DisableTokenResponse response;
      status = stub->DisableToken(&context, request, &response);
      break;
    }
    case 3:
      op.expected_codes = {kInvalidArgument};
      status = fresh_create("ACC-1", "bad account", op.tag);
      break;
    case 4:
      op.expected_codes = {kInvalidArgument};
      status = fresh_create("ACC-9000-0001", "", op.tag);
      break;
    case 5: {  // a reason longer than 1000 characters, on a real token
      op.expected_codes = {kInvalidArgument};
      std::optional<KnownToken> known = directory_.Random(random_);
      DisableTokenRequest request;
      request.set_token_id(known.has_value() ? known->id : "TKN-9999-9999");
      request.set_reason(op.tag + std::string(1100, 'r'));
      DisableTokenResponse response;
      status = stub->DisableToken(&context, request, &response);
      break;
    }
    case 6: {
      op.expected_codes = {kInvalidArgument};
      ListTokensRequest request;
      request.set_page_size(-1);
      ListTokensResponse response;
      status = stub->ListTokens(&context, request, &response);
      break;
    }
    case 7: {
      op.expected_codes = {kInvalidArgument};
      ListTokensRequest request;
      request.set_page_token("bm90IGEgcGFnZSB0b2tlbg");
      ListTokensResponse response;
      status = stub->ListTokens(&context, request, &response);
      break;
    }
    case 8:
    case 9:
    case 15: {  // bytes that are no protobuf message, to a change RPC; a string that is no UTF-8
      op.expected_codes = {kUnimplemented, kInternal, kInvalidArgument};
      std::string bytes;
      std::string method;
      if (kind == 15) {
        bytes = std::string(
            "\x0a\x05\xff\xfe\x01"
            "ab",
            7);  // secret (field 1): 5 bytes, not UTF-8
        method = "/apitoken.v1.TokenService/VerifyToken";
      } else {
        bytes = std::string(1, '\x0f');  // field 1 with wire type 7, which does not exist
        for (int i = 0; i < 200; ++i) bytes += static_cast<char>(absl::Uniform(random_, 0, 256));
        method = kind == 8 ? "/apitoken.v1.TokenService/DisableToken"
                           : "/apitoken.v1.TokenService/CreateToken";
      }
      grpc::Slice slice(bytes);
      grpc::ByteBuffer request(&slice, 1);
      grpc::ByteBuffer response;
      grpc::GenericStub generic(channel_);
      absl::Notification done;
      generic.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                        [&](grpc::Status s) {
                          status = std::move(s);
                          done.Notify();
                        });
      done.WaitForNotification();
      break;
    }
    case 10:
    case 11:
    case 12: {  // watch requests with an invalid field
      op.expected_codes = {kInvalidArgument};
      WatchTokensRequest request;
      if (kind == 10) request.set_since_revision(-1);
      if (kind == 11) request.set_account_id("ACC-bad");
      if (kind == 12) request.mutable_progress_interval()->set_nanos(1000000);
      std::unique_ptr<grpc::ClientReader<WatchTokensResponse>> reader =
          stub->WatchTokens(&context, request);
      WatchTokensResponse message;
      bool got_message = false;
      while (reader->Read(&message)) got_message = true;
      status = reader->Finish();
      if (got_message && status.ok()) status = grpc::Status(grpc::StatusCode::UNKNOWN, "messages");
      break;
    }
    case 13: {  // VerifyToken of garbage is an answer, not an error
      op.expected_codes = {kOk};
      VerifyTokenRequest request;
      request.set_secret("idt:TKN-1000-0001:not a secret at all");
      VerifyTokenResponse response;
      status = stub->VerifyToken(&context, request, &response);
      if (status.ok() && response.result() != VerifyTokenResponse::RESULT_MALFORMED) {
        status = grpc::Status(grpc::StatusCode::UNKNOWN,
                              absl::StrCat("result ", response.result(), " for a garbage secret"));
      }
      break;
    }
    case 14: {  // raw TCP junk: the server must drop the connection
      op.expected_codes = {kOk};
      std::pair<std::string, std::string> host_port = absl::StrSplit(address_, ':');
      int port = 0;
      (void)absl::SimpleAtoi(host_port.second, &port);
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in addr = {};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(static_cast<uint16_t>(port));
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "connect failed");
      if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
        std::string junk;
        for (int i = 0; i < 256; ++i) junk += static_cast<char>(absl::Uniform(random_, 0, 256));
        ssize_t ignored = ::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL);
        (void)ignored;
        const absl::Time deadline = absl::Now() + absl::Seconds(2);
        status = grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "connection kept open");
        char buffer[1024];
        while (absl::Now() < deadline) {
          pollfd pfd = {.fd = fd, .events = POLLIN, .revents = 0};
          if (::poll(&pfd, 1, 100) <= 0) continue;
          const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
          if (n <= 0) {
            status = grpc::Status::OK;  // closed by the server
            break;
          }
        }
      }
      if (fd >= 0) ::close(fd);
      break;
    }
    default:
      return;
  }
  Finish(op, status);
  op.outcome = Outcome::kFailed;
  recorder_.AddOperation(std::move(op));
}

RecordingWatcher::RecordingWatcher(std::string name, const std::string& address, Recorder& recorder,
                                   WatchLoopOptions options) {
  const int log = recorder.NewWatchLog(std::move(name), options.account);
  loop_ = std::make_unique<WatchLoop>(
      NewChaosChannel(address), options,
      [&recorder, log](const WatchRecord& record) { recorder.AddWatchRecord(log, record); });
}

ProcessWatcher::ProcessWatcher(std::string name, std::string account, std::string dir)
    : name_(std::move(name)), account_(std::move(account)), dir_(std::move(dir)) {}

absl::StatusOr<std::unique_ptr<ProcessWatcher>> ProcessWatcher::Start(std::string name,
                                                                      const std::string& address,
                                                                      const std::string& account,
                                                                      bool narrow) {
  absl::StatusOr<std::string> dir = MakeTempDir("chaos-watcher");
  if (!dir.ok()) return dir.status();
  auto watcher =
      std::unique_ptr<ProcessWatcher>(new ProcessWatcher(std::move(name), account, *dir));
  testing::SpawnOptions spawn;
  spawn.argv = {TOKENSTATUS_CHAOS_WATCHER_BINARY, absl::StrCat("--server=", address),
                absl::StrCat("--out=", *dir, "/records")};
  if (!account.empty()) spawn.argv.push_back(absl::StrCat("--account=", account));
  if (narrow) spawn.argv.push_back("--narrow");
  absl::StatusOr<std::unique_ptr<testing::Subprocess>> process = testing::Subprocess::Spawn(spawn);
  if (!process.ok()) return process.status();
  watcher->process_ = *std::move(process);
  return watcher;
}

ProcessWatcher::~ProcessWatcher() {
  if (process_ != nullptr) process_->Kill();
  std::error_code ignored;
  fs::remove_all(dir_, ignored);
}

absl::StatusOr<std::vector<WatchRecord>> ProcessWatcher::Read() const {
  std::ifstream file(dir_ + "/records");
  std::stringstream content;
  content << file.rdbuf();
  return ParseRecords(content.str());
}

bool ProcessWatcher::AwaitRevision(int64_t revision, const std::string& epoch,
                                   absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    absl::StatusOr<std::vector<WatchRecord>> records = Read();
    if (records.ok()) {
      bool synced = false;
      int64_t at = 0;
      std::string at_epoch;
      for (const WatchRecord& record : *records) {
        if (record.type != WatchRecord::Type::kMessage) continue;
        if (record.kind == WatchTokensResponse::KIND_RESET) synced = false;
        if (record.kind == WatchTokensResponse::KIND_SYNCED ||
            record.kind == WatchTokensResponse::KIND_CHANGES ||
            record.kind == WatchTokensResponse::KIND_PROGRESS) {
          synced = true;
          at = record.revision;
          at_epoch = record.epoch;
        }
      }
      if (synced && at >= revision && (epoch.empty() || epoch == at_epoch)) return true;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return false;
}

absl::StatusOr<WatchLog> ProcessWatcher::Collect() {
  process_->Signal(SIGTERM);
  if (!process_->Wait(absl::Seconds(10)).ok()) process_->Kill();
  absl::StatusOr<std::vector<WatchRecord>> records = Read();
  if (!records.ok()) return records.status();
  return WatchLog{name_, account_, *std::move(records)};
}

namespace {

// Records the stream under a TokenCache.
class RecordingStream final : public WatchStream {
 public:
  RecordingStream(std::unique_ptr<WatchStream> inner, Recorder& recorder, int log)
      : inner_(std::move(inner)), recorder_(recorder), log_(log) {}
  bool Read(WatchTokensResponse* response) override {
    if (!inner_->Read(response)) return false;
    recorder_.AddWatchRecord(log_, WatchRecord::Message(NowNs(), *response));
    return true;
  }
  void Cancel() override { inner_->Cancel(); }
  absl::Status Finish() override {
    absl::Status status = inner_->Finish();
    recorder_.AddWatchRecord(log_, WatchRecord::End(NowNs(), static_cast<int>(status.code()),
                                                    std::string(status.message())));
    return status;
  }

 private:
  std::unique_ptr<WatchStream> inner_;
  Recorder& recorder_;
  const int log_;
};

class RecordingSource final : public WatchSource {
 public:
  RecordingSource(std::unique_ptr<WatchSource> inner, Recorder& recorder, int log)
      : inner_(std::move(inner)), recorder_(recorder), log_(log) {}
  std::unique_ptr<WatchStream> Open(const WatchTokensRequest& request) override {
    recorder_.AddWatchRecord(log_, WatchRecord::Open(NowNs(), request.since_revision(),
                                                     request.epoch(), request.since_chain()));
    return std::make_unique<RecordingStream>(inner_->Open(request), recorder_, log_);
  }

 private:
  std::unique_ptr<WatchSource> inner_;
  Recorder& recorder_;
  const int log_;
};

}  // namespace

TokenCacheOptions ChaosCacheOptions() {
  TokenCacheOptions options;
  options.max_staleness = absl::Seconds(1);
  options.initial_backoff = absl::Milliseconds(50);
  options.max_backoff = absl::Milliseconds(500);
  return options;
}

absl::StatusOr<std::unique_ptr<RecordedCache>> RecordedCache::Create(std::string name,
                                                                     const std::string& address,
                                                                     Recorder& recorder,
                                                                     TokenCacheOptions options) {
  auto recorded = std::unique_ptr<RecordedCache>(new RecordedCache(name));
  const int log = recorder.NewWatchLog(std::move(name), options.account_id);
  grpc::ChannelArguments args = TokenCache::ChannelArguments(options);
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto source =
      std::make_unique<RecordingSource>(NewGrpcWatchSource(grpc::CreateCustomChannel(
                                            address, grpc::InsecureChannelCredentials(), args)),
                                        recorder, log);
  absl::StatusOr<std::unique_ptr<TokenCache>> cache =
      TokenCache::Create(std::move(source), std::move(options));
  if (!cache.ok()) return cache.status();
  recorded->cache_ = *std::move(cache);
  return recorded;
}

// --- The truth ---

namespace {

// The changes of an XRANGE reply.
absl::StatusOr<std::vector<Change>> ChangesOf(const testing::RedisReply& reply) {
  std::vector<Change> changes;
  for (const testing::RedisReply& entry : reply.elements) {
    if (entry.elements.size() != 2) return absl::InternalError("XRANGE: unexpected shape");
    std::vector<absl::string_view> fields;
    std::string chain;
    const std::vector<testing::RedisReply>& pairs = entry.elements[1].elements;
    for (size_t i = 0; i + 1 < pairs.size(); i += 2) {
      fields.push_back(pairs[i].str);
      fields.push_back(pairs[i + 1].str);
      if (pairs[i].str == "chain") chain = pairs[i + 1].str;
    }
    absl::StatusOr<TokenEvent> event = TokenEventFromFields(fields);
    if (!event.ok()) return event.status();
    Change change = Change::FromEvent(*event);
    change.chain = chain;
    changes.push_back(std::move(change));
  }
  return changes;
}

}  // namespace

absl::StatusOr<Branch> ReadBranch(testing::RedisInstance& redis, const std::string& prefix,
                                  std::string name) {
  constexpr int kPage = 5000;
  const std::string key = absl::StrCat(prefix, ":events");
  std::vector<Change> changes;
  std::string start = "-";
  while (true) {
    absl::StatusOr<testing::RedisReply> reply =
        redis.CommandReply({"XRANGE", key, start, "+", "COUNT", absl::StrCat(kPage)});
    if (!reply.ok()) return reply.status();
    absl::StatusOr<std::vector<Change>> page = ChangesOf(*reply);
    if (!page.ok()) return page.status();
    changes.insert(changes.end(), page->begin(), page->end());
    if (reply->elements.size() < kPage) break;
    start = absl::StrCat("(", reply->elements.back().elements[0].str);
  }
  absl::StatusOr<std::vector<std::string>> epoch =
      redis.Command({"HGET", absl::StrCat(prefix, ":meta"), "epoch"});
  if (!epoch.ok()) return epoch.status();
  return Branch::Create(std::move(name), epoch->empty() ? "" : (*epoch)[0], std::move(changes));
}

absl::StatusOr<Branch> FlushAllKeepingHistory(testing::RedisInstance& redis,
                                              const std::string& prefix, std::string name) {
  // One transaction: the history read is exactly the one the FLUSHALL throws away.
  for (const std::vector<std::string>& command :
       std::vector<std::vector<std::string>>{{"MULTI"},
                                             {"XRANGE", absl::StrCat(prefix, ":events"), "-", "+"},
                                             {"HGET", absl::StrCat(prefix, ":meta"), "epoch"},
                                             {"FLUSHALL"}}) {
    absl::StatusOr<testing::RedisReply> reply = redis.CommandReply(command);
    if (!reply.ok()) return reply.status();
  }
  absl::StatusOr<testing::RedisReply> done = redis.CommandReply({"EXEC"});
  if (!done.ok()) return done.status();
  if (done->elements.size() != 3) return absl::InternalError("EXEC: unexpected shape");
  absl::StatusOr<std::vector<Change>> changes = ChangesOf(done->elements[0]);
  if (!changes.ok()) return changes.status();
  return Branch::Create(std::move(name), done->elements[1].str, *std::move(changes));
}

absl::StatusOr<std::map<std::string, TokenState>> ReadRecords(testing::RedisInstance& redis,
                                                              const std::string& prefix) {
  // One script: every id of the all-tokens index, then each record's fields.
  static constexpr char kScript[] = R"lua(
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local r = redis.call('HMGET', ARGV[1] .. ':t:' .. id, 'id', 'account_id', 'state', 'revision')
  out[#out + 1] = {id, r[1] or '', r[2] or '', r[3] or '', r[4] or ''}
end
return out
)lua";
  absl::StatusOr<testing::RedisReply> reply =
      redis.CommandReply({"EVAL", kScript, "1", absl::StrCat(prefix, ":idx:all"), prefix});
  if (!reply.ok()) return reply.status();
  std::map<std::string, TokenState> records;
  for (const testing::RedisReply& row : reply->elements) {
    if (row.elements.size() != 5) return absl::InternalError("records: unexpected shape");
    TokenState state;
    state.token_id = row.elements[1].str.empty() ? row.elements[0].str : row.elements[1].str;
    state.account_id = row.elements[2].str;
    absl::StatusOr<Token::State> parsed = StateFromField(row.elements[3].str);
    state.state = parsed.ok() ? *parsed : Token::STATE_UNSPECIFIED;
    (void)absl::SimpleAtoi(row.elements[4].str, &state.revision);
    records[row.elements[0].str] = state;
  }
  return records;
}

absl::StatusOr<std::string> MakeTempDir(absl::string_view name) {
  std::string pattern =
      (fs::temp_directory_path() / absl::StrCat("tokenstatus-", name, ".XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp: ", std::strerror(errno)));
  }
  return pattern;
}

absl::Status CopyRedisData(const std::string& from, const std::string& to) {
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(from, error)) {
    const std::string name = entry.path().filename().string();
    if (name == "redis.log" || name == "notify.sock") continue;
    fs::copy(entry.path(), fs::path(to) / name,
             fs::copy_options::recursive | fs::copy_options::overwrite_existing, error);
    if (error)
      return absl::InternalError(
          absl::StrCat("copy ", entry.path().string(), ": ", error.message()));
  }
  if (error) return absl::InternalError(absl::StrCat("list ", from, ": ", error.message()));
  return absl::OkStatus();
}

absl::Status ReplaceRedisData(const std::string& from, const std::string& dir) {
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, error)) {
    const std::string name = entry.path().filename().string();
    if (name == "redis.log" || name == "notify.sock") continue;
    fs::remove_all(entry.path(), error);
    if (error)
      return absl::InternalError(
          absl::StrCat("remove ", entry.path().string(), ": ", error.message()));
  }
  return CopyRedisData(from, dir);
}

absl::StatusOr<Branch> ReadBranchFromData(const std::string& data_dir, const std::string& prefix,
                                          std::string name) {
  absl::StatusOr<std::unique_ptr<testing::RedisInstance>> redis = testing::RedisInstance::Start();
  if (!redis.ok()) return redis.status();
  (*redis)->Kill();
  if (absl::Status status = ReplaceRedisData(data_dir, (*redis)->dir()); !status.ok()) {
    return status;
  }
  if (absl::Status status = (*redis)->Restart(); !status.ok()) return status;
  return ReadBranch(**redis, prefix, std::move(name));
}

// --- After the faults ---

namespace {

// Waits until `read_head` says the reader serves `head` of `epoch`; "" when it does, else where
// it stopped.
std::string AwaitHead(
    absl::FunctionRef<absl::StatusOr<std::pair<int64_t, std::string>>()> read_head, int64_t head,
    const std::string& epoch, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::string last = "no answer";
  while (true) {
    absl::StatusOr<std::pair<int64_t, std::string>> at = read_head();
    if (at.ok()) {
      if (at->first >= head && at->second == epoch) return "";
      last = absl::StrCat("at revision ", at->first, " of epoch ", at->second);
    } else {
      last = at.status().ToString();
    }
    if (absl::Now() >= deadline) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::StrCat("did not reach revision ", head, " of epoch ", epoch, " within ",
                      absl::FormatDuration(timeout), ": ", last);
}

Token::State StateOfResult(VerifyTokenResponse::Result result) {
  switch (result) {
    case VerifyTokenResponse::RESULT_VALID:
      return Token::STATE_ACTIVE;
    case VerifyTokenResponse::RESULT_DISABLED:
      return Token::STATE_DISABLED;
    case VerifyTokenResponse::RESULT_DELETED:
      return Token::STATE_DELETED;
    default:
      return Token::STATE_UNSPECIFIED;
  }
}

// What one replica, cache or sidecar (`who`) answered, added to `recorder` as it comes.
class AnswerLog {
 public:
  AnswerLog(const std::string& who, Recorder& recorder) : who_(who), recorder_(recorder) {}

  // It did not reach the store's head: `detail` says where it stopped.
  void NotSynced(std::string detail) {
    Answer answer = New();
    answer.synced = false;
    answer.detail = std::move(detail);
    recorder_.AddAnswer(std::move(answer));
  }

  // `via` answered about `id`: `found` with `state` at `revision`, or not found.
  void Add(const char* via, const std::string& id, bool found, Token::State state,
           int64_t revision) {
    Answer answer = New();
    answer.via = via;
    answer.token_id = id;
    answer.found = found;
    answer.state = state;
    answer.token_revision = revision;
    recorder_.AddAnswer(std::move(answer));
  }

  // Every token of `known` that a listing through `via` left out of `listed`, as not found.
  void AddUnlisted(const char* via, const std::set<std::string>& listed,
                   const std::vector<KnownToken>& known) {
    for (const KnownToken& token : known) {
      if (!listed.contains(token.id)) Add(via, token.id, false, Token::STATE_UNSPECIFIED, 0);
    }
  }

  // `via` failed after the sync.
  void Failed(const char* via, const grpc::Status& status) {
    Answer answer = New();
    answer.via = via;
    answer.synced = false;
    answer.detail = absl::StrCat(via, " failed after sync: ", integration::Describe(status));
    recorder_.AddAnswer(std::move(answer));
  }

 private:
  Answer New() const {
    Answer answer;
    answer.who = who_;
    return answer;
  }

  const std::string who_;
  Recorder& recorder_;
};

}  // namespace

void RecordServerAnswers(const std::string& who, const std::string& address, int64_t head,
                         const std::string& epoch, const TokenDirectory& directory,
                         Recorder& recorder, absl::Duration timeout, size_t max_asked) {
  const std::unique_ptr<TokenService::Stub> stub = TokenService::NewStub(NewChaosChannel(address));
  const std::string not_synced = AwaitHead(
      [&]() -> absl::StatusOr<std::pair<int64_t, std::string>> {
        ListTokensRequest request;
        request.set_page_size(1);
        request.set_min_revision(head);
        grpc::ClientContext context;
        SetDeadline(context, absl::Seconds(2));
        ListTokensResponse response;
        const grpc::Status status = stub->ListTokens(&context, request, &response);
        if (!status.ok()) return absl::UnavailableError(integration::Describe(status));
        return std::make_pair(response.revision(), response.epoch());
      },
      head, epoch, timeout);
  AnswerLog log(who, recorder);
  if (!not_synced.empty()) {
    log.NotSynced(not_synced);
    return;
  }
  // The whole listing.
  std::set<std::string> listed;
  ListTokensRequest list;
  list.set_page_size(1000);
  list.set_show_deleted(true);
  list.set_min_revision(head);
  while (true) {
    grpc::ClientContext context;
    SetDeadline(context, absl::Seconds(10));
    ListTokensResponse page;
    const grpc::Status status = stub->ListTokens(&context, list, &page);
    if (!status.ok()) {
      log.Failed("ListTokens", status);
      break;
    }
    for (const Token& token : page.tokens()) {
      listed.insert(token.id());
      log.Add("ListTokens", token.id(), true, token.state(), token.revision());
    }
    if (page.next_page_token().empty()) break;
    list.set_page_token(page.next_page_token());
  }
  const std::vector<KnownToken> known_tokens = directory.All();
  log.AddUnlisted("ListTokens", listed, known_tokens);
  // GetToken and VerifyToken of every token, or of an even sample of at most max_asked.
  const size_t step = std::max<size_t>(1, (known_tokens.size() + max_asked - 1) / max_asked);
  for (size_t i = 0; i < known_tokens.size(); i += step) {
    const KnownToken& known = known_tokens[i];
    {
      GetTokenRequest request;
      request.set_token_id(known.id);
      request.set_min_revision(head);
      grpc::ClientContext context;
      SetDeadline(context, absl::Seconds(5));
      GetTokenResponse response;
      const grpc::Status status = stub->GetToken(&context, request, &response);
      if (status.ok()) {
        log.Add("GetToken", known.id, true, response.token().state(), response.token().revision());
      } else if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
        log.Add("GetToken", known.id, false, Token::STATE_UNSPECIFIED, 0);
      } else {
        log.Failed("GetToken", status);
      }
    }
    {
      VerifyTokenRequest request;
      request.set_secret(known.secret);
      grpc::ClientContext context;
      SetDeadline(context, absl::Seconds(5));
      VerifyTokenResponse response;
      const grpc::Status status = stub->VerifyToken(&context, request, &response);
      if (!status.ok()) {
        log.Failed("VerifyToken", status);
      } else {
        const Token::State state = StateOfResult(response.result());
        log.Add("VerifyToken", known.id, state != Token::STATE_UNSPECIFIED, state,
                response.revision());
      }
    }
  }
}

void RecordCacheAnswers(const std::string& who, TokenCache& cache, int64_t head,
                        const std::string& epoch, const TokenDirectory& directory,
                        Recorder& recorder, absl::Duration timeout) {
  const std::string not_synced = AwaitHead(
      [&]() -> absl::StatusOr<std::pair<int64_t, std::string>> {
        cache.WaitForRevision(head, absl::Milliseconds(200));
        return std::make_pair(cache.revision(), cache.epoch());
      },
      head, epoch, timeout);
  AnswerLog log(who, recorder);
  if (!not_synced.empty()) {
    log.NotSynced(not_synced);
    return;
  }
  std::set<std::string> listed;
  ListParams params;
  params.page_size = 1000;
  params.show_deleted = true;
  while (true) {
    ListResult page = cache.List(params);
    for (const Token& token : page.page.tokens) {
      listed.insert(token.id());
      log.Add("List", token.id(), true, token.state(), token.revision());
    }
    if (page.page.next_after_id.empty()) break;
    params.after_id = page.page.next_after_id;
  }
  const std::vector<KnownToken> known_tokens = directory.All();
  log.AddUnlisted("List", listed, known_tokens);
  for (const KnownToken& known : known_tokens) {
    const CheckResult check = cache.Check(known.id);
    log.Add("Check", known.id, check.state != Token::STATE_UNSPECIFIED, check.state,
            check.token_revision);
    const VerifyResult verify = cache.Verify(known.secret);
    const Token::State state = StateOfResult(verify.result);
    log.Add("Verify", known.id, state != Token::STATE_UNSPECIFIED, state, verify.token_revision);
  }
}

RssSampler::RssSampler(int pid) : pid_(pid) {
  thread_ = std::thread([this] {
    absl::MutexLock lock(&mu_);
    do {
      absl::StatusOr<int64_t> kib = ResidentKiB(pid_);
      if (kib.ok()) max_kib_ = std::max(max_kib_, *kib);
    } while (!mu_.AwaitWithTimeout(absl::Condition(&stop_), absl::Milliseconds(20)));
  });
}

RssSampler::~RssSampler() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

int64_t RssSampler::max_kib() const {
  absl::MutexLock lock(&mu_);
  return max_kib_;
}

void RssSampler::Reset() {
  absl::StatusOr<int64_t> kib = ResidentKiB(pid_);
  absl::MutexLock lock(&mu_);
  max_kib_ = kib.ok() ? *kib : 0;
}

bool AwaitLogCount(const testing::ServerProcess& process, const std::vector<std::string>& needles,
                   int count, absl::Duration timeout, size_t first_line) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    const std::vector<std::string> lines = process.LogLines();
    int found = 0;
    for (size_t i = first_line; i < lines.size(); ++i) {
      found += absl::c_any_of(
          needles, [&](const std::string& needle) { return absl::StrContains(lines[i], needle); });
    }
    if (found >= count) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(50));
  }
}

void AppendFigures(const std::string& line) {
  const char* path = std::getenv("CHAOS_FIGURES_FILE");
  if (path == nullptr || *path == '\0') return;
  std::ofstream out(path, std::ios::app);
  out << line << "\n";
}

}  // namespace tokenstatus::chaos
