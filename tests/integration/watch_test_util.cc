#include "tests/integration/watch_test_util.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/message_differencer.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace tokenstatus::integration {
namespace {

WatchTokensRequest Request(int64_t since_revision, const std::string& epoch,
                           const std::string& account_id, absl::Duration progress_interval) {
  WatchTokensRequest request;
  request.set_since_revision(since_revision);
  request.set_epoch(epoch);
  request.set_send_initial_state(true);
  request.set_account_id(account_id);
  const int64_t millis = absl::ToInt64Milliseconds(progress_interval);
  request.mutable_progress_interval()->set_seconds(millis / 1000);
  request.mutable_progress_interval()->set_nanos(static_cast<int32_t>(millis % 1000) * 1000000);
  return request;
}

// "SYNCED" for KIND_SYNCED.
std::string KindName(WatchTokensResponse::Kind kind) {
  return std::string(absl::StripPrefix(WatchTokensResponse::Kind_Name(kind), "KIND_"));
}

// An RPC's failure as an absl::Status (the code, and Describe() as the message).
absl::Status ToStatus(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), Describe(status));
}

// How many of `messages` are of `kind`.
int CountKind(const std::vector<WatchTokensResponse>& messages, WatchTokensResponse::Kind kind) {
  return static_cast<int>(std::count_if(messages.begin(), messages.end(),
                                        [kind](const auto& m) { return m.kind() == kind; }));
}

}  // namespace

WatchTokensRequest FromNow(const std::string& account_id, absl::Duration progress_interval) {
  return Request(0, "", account_id, progress_interval);
}

WatchTokensRequest ResumeAfter(int64_t revision, const std::string& epoch,
                               const std::string& account_id, absl::Duration progress_interval) {
  return Request(revision, epoch, account_id, progress_interval);
}

std::shared_ptr<grpc::Channel> NewNarrowChannel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 16 * 1024);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

Watcher::Watcher(TokenService::Stub& stub, WatchTokensRequest request, bool paused)
    : request_(std::move(request)), paused_(paused) {
  stub.async()->WatchTokens(&context_, &request_, this);
  if (paused) {
    // Keeps OnDone (and any unread message) back until Resume().
    AddHold();
  } else {
    StartRead(&incoming_);
  }
  StartCall();
}

Watcher::~Watcher() {
  Cancel();
  Resume();
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&ended_));
}

void Watcher::Resume() {
  {
    absl::MutexLock lock(&mu_);
    if (!paused_) return;
    paused_ = false;
  }
  StartRead(&incoming_);
  RemoveHold();
}

void Watcher::Cancel() { context_.TryCancel(); }

void Watcher::OnReadDone(bool ok) {
  if (!ok) return;  // the stream ended; OnDone follows
  {
    absl::MutexLock lock(&mu_);
    revision_ = incoming_.revision();
    messages_.push_back(std::move(incoming_));
  }
  incoming_.Clear();
  StartRead(&incoming_);
}

void Watcher::OnDone(const grpc::Status& status) {
  absl::MutexLock lock(&mu_);
  status_ = status;
  ended_ = true;
}

bool Watcher::WaitUntil(absl::FunctionRef<bool(const std::vector<WatchTokensResponse>&)> predicate,
                        absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto done = [&]() {
    mu_.AssertReaderHeld();
    return ended_ || predicate(messages_);
  };
  mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
  return predicate(messages_);
}

bool Watcher::WaitForRevision(int64_t revision, absl::Duration timeout) {
  return WaitUntil(
      [revision](const std::vector<WatchTokensResponse>& messages) {
        return !messages.empty() && messages.back().revision() >= revision;
      },
      timeout);
}

bool Watcher::WaitForSynced(absl::Duration timeout) {
  return WaitForKind(WatchTokensResponse::KIND_SYNCED, 1, timeout);
}

bool Watcher::WaitForKind(WatchTokensResponse::Kind kind, int count, absl::Duration timeout) {
  return WaitUntil(
      [kind, count](const std::vector<WatchTokensResponse>& messages) {
        return CountKind(messages, kind) >= count;
      },
      timeout);
}

std::optional<grpc::Status> Watcher::WaitForEnd(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  if (!mu_.AwaitWithTimeout(absl::Condition(&ended_), timeout)) return std::nullopt;
  return status_;
}

int64_t Watcher::revision() const {
  absl::MutexLock lock(&mu_);
  return revision_;
}

std::string Watcher::epoch() const {
  absl::MutexLock lock(&mu_);
  return messages_.empty() ? "" : messages_.back().epoch();
}

bool Watcher::ended() const {
  absl::MutexLock lock(&mu_);
  return ended_;
}

std::vector<WatchTokensResponse> Watcher::messages() const {
  absl::MutexLock lock(&mu_);
  return messages_;
}

std::vector<TokenEvent> Watcher::events() const {
  absl::MutexLock lock(&mu_);
  std::vector<TokenEvent> events;
  for (const WatchTokensResponse& message : messages_) {
    if (message.kind() != WatchTokensResponse::KIND_CHANGES) continue;
    events.insert(events.end(), message.events().begin(), message.events().end());
  }
  return events;
}

int Watcher::CountOf(WatchTokensResponse::Kind kind) const {
  absl::MutexLock lock(&mu_);
  return CountKind(messages_, kind);
}

std::map<std::string, Token> Watcher::view() const {
  absl::MutexLock lock(&mu_);
  std::map<std::string, Token> view;
  for (const WatchTokensResponse& message : messages_) {
    switch (message.kind()) {
      case WatchTokensResponse::KIND_RESET:
        view.clear();
        break;
      case WatchTokensResponse::KIND_SNAPSHOT:
        for (const Token& token : message.tokens()) view[token.id()] = token;
        break;
      case WatchTokensResponse::KIND_CHANGES:
        for (const TokenEvent& event : message.events()) view[event.token().id()] = event.token();
        break;
      default:
        break;
    }
  }
  return view;
}

std::string Watcher::Summary() const {
  absl::MutexLock lock(&mu_);
  // The first and last few messages: enough to see how a stream went, short enough to read.
  constexpr size_t kShown = 8;
  std::vector<std::string> shown;
  for (size_t i = 0; i < messages_.size(); ++i) {
    if (i == kShown && messages_.size() > 2 * kShown) {
      shown.push_back("...");
      i = messages_.size() - kShown;
    }
    const WatchTokensResponse& message = messages_[i];
    shown.push_back(absl::StrCat(
        KindName(message.kind()), "@", message.revision(),
        message.events_size() > 0 ? absl::StrCat("(", message.events_size(), " events)") : "",
        message.tokens_size() > 0 ? absl::StrCat("(", message.tokens_size(), " tokens)") : ""));
  }
  return absl::StrCat(messages_.size(), " messages [", absl::StrJoin(shown, ", "), "], revision ",
                      revision_, ended_ ? absl::StrCat(", ended: ", Describe(status_)) : ", open");
}

::testing::AssertionResult StrictlyIncreasing(const std::vector<TokenEvent>& events) {
  for (size_t i = 1; i < events.size(); ++i) {
    if (events[i].token().revision() <= events[i - 1].token().revision()) {
      return ::testing::AssertionFailure()
             << "event " << i << " has revision " << events[i].token().revision()
             << " after revision " << events[i - 1].token().revision();
    }
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult RevisionsAre(const std::vector<TokenEvent>& events,
                                        const std::vector<int64_t>& expected) {
  std::vector<int64_t> actual;
  for (const TokenEvent& event : events) actual.push_back(event.token().revision());
  if (actual == expected) return ::testing::AssertionSuccess();
  std::vector<int64_t> missing, extra;
  std::vector<int64_t> sorted_actual = actual;
  std::sort(sorted_actual.begin(), sorted_actual.end());
  std::set_difference(expected.begin(), expected.end(), sorted_actual.begin(), sorted_actual.end(),
                      std::back_inserter(missing));
  std::set_difference(sorted_actual.begin(), sorted_actual.end(), expected.begin(), expected.end(),
                      std::back_inserter(extra));
  auto head = [](const std::vector<int64_t>& v) {
    return absl::StrJoin(v.begin(), v.begin() + std::min<size_t>(v.size(), 20), ",");
  };
  return ::testing::AssertionFailure()
         << "got " << actual.size() << " events, expected " << expected.size() << "; missing "
         << missing.size() << " (first: " << head(missing) << "), unexpected or repeated "
         << extra.size() << " (first: " << head(extra) << ")"
         << (missing.empty() && extra.empty() ? "; same revisions, wrong order" : "");
}

::testing::AssertionResult ViewEquals(const std::map<std::string, Token>& view,
                                      const std::vector<Token>& listed,
                                      bool deleted_may_be_absent) {
  std::map<std::string, const Token*> expected;
  for (const Token& token : listed) expected[token.id()] = &token;
  for (const auto& [id, token] : view) {
    if (!expected.contains(id)) {
      return ::testing::AssertionFailure()
             << "the watcher has " << id << ", the store has not: " << token.ShortDebugString();
    }
  }
  for (const auto& [id, token] : expected) {
    auto it = view.find(id);
    if (it == view.end()) {
      if (deleted_may_be_absent && token->state() == Token::STATE_DELETED) continue;
      return ::testing::AssertionFailure()
             << "the watcher lacks " << id << ": " << token->ShortDebugString();
    }
    if (!google::protobuf::util::MessageDifferencer::Equals(it->second, *token)) {
      return ::testing::AssertionFailure()
             << id << " differs: the watcher has " << it->second.ShortDebugString()
             << "; the store has " << token->ShortDebugString();
    }
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult NoSecretHashes(const std::vector<TokenEvent>& events) {
  for (const TokenEvent& event : events) {
    if (!event.token().secret_sha256().empty()) {
      return ::testing::AssertionFailure()
             << "the event of revision " << event.token().revision() << " carries secret_sha256";
    }
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult ResetThenSnapshot(const std::vector<WatchTokensResponse>& messages) {
  if (messages.empty() || messages[0].kind() != WatchTokensResponse::KIND_RESET) {
    return ::testing::AssertionFailure() << "the first message is not KIND_RESET";
  }
  size_t i = 1;
  while (i < messages.size() && messages[i].kind() == WatchTokensResponse::KIND_SNAPSHOT) ++i;
  if (i == messages.size() || messages[i].kind() != WatchTokensResponse::KIND_SYNCED) {
    return ::testing::AssertionFailure()
           << "KIND_RESET is not followed by KIND_SNAPSHOT chunks and KIND_SYNCED";
  }
  for (; i < messages.size(); ++i) {
    if (messages[i].kind() == WatchTokensResponse::KIND_RESET) {
      return ::testing::AssertionFailure() << "another KIND_RESET at message " << i;
    }
  }
  return ::testing::AssertionSuccess();
}

absl::StatusOr<Token> NewToken(const Api& api, const std::string& account_id,
                               const std::string& description) {
  const std::string id = NewTokenId();
  CreateTokenRequest request = ImportRequest(id, NewSecret(id), account_id);
  request.set_description(description);
  Rpc<CreateTokenResponse> created = api.Create(request);
  if (!created.ok()) return ToStatus(created.status);
  return created.response.token();
}

absl::StatusOr<Token> Flip(const Api& api, const Token& token, const std::string& reason) {
  if (token.state() == Token::STATE_ACTIVE) {
    DisableTokenRequest request;
    request.set_token_id(token.id());
    request.set_reason(reason);
    Rpc<DisableTokenResponse> disabled = api.Disable(request);
    if (!disabled.ok()) return ToStatus(disabled.status);
    return disabled.response.token();
  }
  EnableTokenRequest request;
  request.set_token_id(token.id());
  request.set_reason(reason);
  Rpc<EnableTokenResponse> enabled = api.Enable(request);
  if (!enabled.ok()) return ToStatus(enabled.status);
  return enabled.response.token();
}

absl::StatusOr<std::vector<Token>> ListEverything(const Api& api, const std::string& account_id,
                                                  int64_t min_revision) {
  ListTokensRequest request;
  request.set_account_id(account_id);
  request.set_show_deleted(true);
  request.set_page_size(1000);
  request.set_min_revision(min_revision);
  return api.ListAll(request);
}

void ChangeLog::Add(const Token& token) {
  absl::MutexLock lock(&mu_);
  account_by_revision_[token.revision()] = token.account_id();
}

std::vector<int64_t> ChangeLog::Revisions(const std::string& account_id) const {
  absl::MutexLock lock(&mu_);
  std::vector<int64_t> revisions;
  for (const auto& [revision, account] : account_by_revision_) {
    if (account_id.empty() || account == account_id) revisions.push_back(revision);
  }
  return revisions;
}

int64_t ChangeLog::LastRevision() const {
  absl::MutexLock lock(&mu_);
  return account_by_revision_.empty() ? 0 : account_by_revision_.rbegin()->first;
}

int ChangeLog::size() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(account_by_revision_.size());
}

absl::StatusOr<std::vector<std::unique_ptr<testing::ServerProcess>>> StartReplicas(
    testing::RedisInstance& redis, const std::string& key_prefix, int count,
    const std::vector<std::string>& extra_flags) {
  std::vector<std::unique_ptr<testing::ServerProcess>> replicas;
  for (int i = 0; i < count; ++i) {
    absl::StatusOr<std::unique_ptr<testing::ServerProcess>> server = testing::ServerProcess::Start(
        {.redis_address = redis.address(), .key_prefix = key_prefix, .extra_flags = extra_flags});
    if (!server.ok()) return server.status();
    HealthWatcher health((*server)->NewChannel());
    if (!health.WaitFor(grpc::health::v1::HealthCheckResponse::SERVING, kWatchTimeout)) {
      return absl::DeadlineExceededError(
          absl::StrCat("replica ", i, " did not report SERVING: ", health.History()));
    }
    replicas.push_back(*std::move(server));
  }
  return replicas;
}

::testing::AssertionResult MirrorReached(const testing::ServerProcess& server, int64_t revision) {
  ListTokensRequest request;
  request.set_page_size(1);
  request.set_min_revision(revision);
  Rpc<ListTokensResponse> page = Api(server.NewChannel()).List(request);
  if (page.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "the mirror of " << server.address() << " did not reach revision " << revision << ": "
         << Describe(page.status);
}

}  // namespace tokenstatus::integration
