// WatchHub through TokenServiceImpl.WatchTokens on a real in-process gRPC server: a TokenMirror
// driven directly (Reset, and Apply of the events a MemoryTokenStore recorded) and the same
// store for resume catch-ups. No Redis.

#include "server/watch/watch_hub.h"

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "apitoken/v1/token_service.grpc.pb.h"
#include "core/status_util.h"
#include "core/token_secret.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/support/channel_arguments.h"
#include "gtest/gtest.h"
#include "server/auth/credential_table.h"
#include "server/mirror/token_mirror.h"
#include "server/service/token_service.h"
#include "server/store/memory_token_store.h"
#include "tests/testing/sync_store.h"

namespace tokenstatus {
namespace {

using apitoken::v1::WatchTokensRequest;
using apitoken::v1::WatchTokensResponse;
using ::testing::HasSubstr;

constexpr char kAccountA[] = "ACC-1000-0001";
constexpr char kAccountB[] = "ACC-2000-0002";
constexpr absl::Duration kWait = absl::Seconds(10);

std::string ReasonOf(const grpc::Status& status) {
  google::rpc::Status details;
  google::rpc::ErrorInfo info;
  if (details.ParseFromString(status.error_details()) && details.details_size() == 1) {
    details.details(0).UnpackTo(&info);
  }
  return info.reason();
}

// One WatchTokens call read by its own thread (or not read at all, for a slow consumer, until
// ReadAll()).
class Watcher {
 public:
  // With `bearer`, the call carries that bearer credential (else it is anonymous).
  Watcher(apitoken::v1::TokenService::Stub& stub, const WatchTokensRequest& request,
          bool read = true, const std::string& bearer = "")
      : reader_(Start(stub, request, bearer)) {
    if (read) ReadInBackground();
  }
  ~Watcher() {
    context_.TryCancel();
    if (thread_.joinable()) thread_.join();
  }

  // Starts reading on a thread of its own (a watcher made with read = false).
  void ReadInBackground() {
    if (!thread_.joinable()) thread_ = std::thread([this] { ReadAll(); });
  }

  // Reads every message, then the status.
  void ReadAll() {
    WatchTokensResponse message;
    while (reader_->Read(&message)) {
      absl::MutexLock lock(&mu_);
      messages_.push_back(message);
    }
    grpc::Status status = reader_->Finish();
    absl::MutexLock lock(&mu_);
    status_ = std::move(status);
    done_ = true;
  }

  // Waits until `ready(messages)` holds; false after kWait.
  bool Await(std::function<bool(const std::vector<WatchTokensResponse>&)> ready) {
    absl::MutexLock lock(&mu_);
    const auto holds = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return ready(messages_); };
    return mu_.AwaitWithTimeout(absl::Condition(&holds), kWait);
  }
  // Waits until the stream ended; returns its status (DEADLINE_EXCEEDED in the test after kWait).
  grpc::Status AwaitEnd() {
    absl::MutexLock lock(&mu_);
    if (!mu_.AwaitWithTimeout(absl::Condition(&done_), kWait)) {
      return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "stream did not end in time");
    }
    return status_;
  }
  std::vector<WatchTokensResponse> messages() const {
    absl::MutexLock lock(&mu_);
    return messages_;
  }
  void Cancel() { context_.TryCancel(); }

 private:
  std::unique_ptr<grpc::ClientReader<WatchTokensResponse>> Start(
      apitoken::v1::TokenService::Stub& stub, const WatchTokensRequest& request,
      const std::string& bearer) {
    if (!bearer.empty()) context_.AddMetadata("authorization", "Bearer " + bearer);
    return stub.WatchTokens(&context_, request);
  }

  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<WatchTokensResponse>> reader_;
  mutable absl::Mutex mu_;
  std::vector<WatchTokensResponse> messages_ ABSL_GUARDED_BY(mu_);
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// The kinds of `messages`, e.g. {SNAPSHOT, SYNCED, CHANGES}.
std::vector<WatchTokensResponse::Kind> KindsOf(const std::vector<WatchTokensResponse>& messages) {
  std::vector<WatchTokensResponse::Kind> kinds;
  for (const auto& message : messages) kinds.push_back(message.kind());
  return kinds;
}

// The revisions of every event in `messages`, in order.
std::vector<int64_t> EventRevisions(const std::vector<WatchTokensResponse>& messages) {
  std::vector<int64_t> revisions;
  for (const auto& message : messages) {
    for (const auto& event : message.events()) revisions.push_back(event.token().revision());
  }
  return revisions;
}

// The last revision a watcher has seen in `messages` (0 if none).
int64_t LastRevision(const std::vector<WatchTokensResponse>& messages) {
  return messages.empty() ? 0 : messages.back().revision();
}

// Predicates for Watcher::Await.
auto HasEventRevision(int64_t revision) {
  return [revision](const std::vector<WatchTokensResponse>& messages) {
    for (int64_t seen : EventRevisions(messages)) {
      if (seen == revision) return true;
    }
    return false;
  };
}
auto HasKind(WatchTokensResponse::Kind kind, int count = 1) {
  return [kind, count](const std::vector<WatchTokensResponse>& messages) {
    int seen = 0;
    for (const auto& message : messages) seen += message.kind() == kind ? 1 : 0;
    return seen >= count;
  };
}

WatchHubOptions TestHubOptions() {
  WatchHubOptions options;
  options.queue_size = 16;
  options.max_watchers = 6;
  options.max_watchers_per_connection = 4;
  options.snapshot_chunk = 2;
  options.catch_up_page = 3;
  options.tick = absl::Milliseconds(10);
  return options;
}

class WatchHubTest : public ::testing::Test {
 protected:
  explicit WatchHubTest(MemoryTokenStoreOptions store_options = {},
                        WatchHubOptions hub_options = TestHubOptions())
      : store_(store_options),
        hub_(mirror_, store_, hub_options),
        service_(store_, mirror_, hub_, open_access_) {}

  void SetUp() override {
    // The first write makes the store's epoch; the mirror loads with it.
    CreateToken("TKN-0000-0001", kAccountA);
    StoreHead head = Head();
    absl::StatusOr<TokenAtRevision> first = sync_.Get("TKN-0000-0001");
    ASSERT_TRUE(first.ok()) << first.status();
    mirror_.Reset({first->token}, head.revision, head.epoch, head.chain);
    mirror_.SetListener(&hub_);

    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = NewStub();
  }

  void TearDown() override {
    hub_.Shutdown();
    server_->Shutdown();
    mirror_.SetListener(nullptr);
  }

  // A stub on a connection of its own.
  std::unique_ptr<apitoken::v1::TokenService::Stub> NewStub(int window_bytes = 0) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    if (window_bytes > 0) {
      args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
      args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, window_bytes);
    }
    return apitoken::v1::TokenService::NewStub(grpc::CreateCustomChannel(
        absl::StrCat("127.0.0.1:", port_), grpc::InsecureChannelCredentials(), args));
  }

  StoreHead Head() {
    absl::StatusOr<StoreHead> head = sync_.ReadHead();
    EXPECT_TRUE(head.ok()) << head.status();
    return head.value_or(StoreHead());
  }

  // Applies the store's events the mirror does not have yet (the tailer's job).
  void Sync() {
    absl::StatusOr<std::vector<TokenEvent>> events = sync_.ReadEvents(mirror_.revision(), 100000);
    ASSERT_TRUE(events.ok()) << events.status();
    mirror_.Apply(*std::move(events));
  }

  void CreateToken(const std::string& id, const std::string& account,
                   const std::string& description = "") {
    CreateTokenParams params;
    params.token_id = id;
    params.account_id = account;
    params.name = "n";
    params.description = description;
    params.secret_sha256 = std::string(32, 's');
    params.actor = "test";
    absl::StatusOr<Token> created = sync_.Create(std::move(params));
    EXPECT_TRUE(created.ok()) << created.status();
  }
  // Disables or enables `id` (whichever applies) in the store; returns the new revision.
  int64_t Toggle(const std::string& id) {
    absl::StatusOr<TokenAtRevision> current = sync_.Get(id);
    EXPECT_TRUE(current.ok()) << current.status();
    if (!current.ok()) return 0;
    TransitionParams params;
    params.token_id = id;
    params.transition =
        current->token.state() == Token::STATE_ACTIVE ? Transition::kDisable : Transition::kEnable;
    params.actor = "test";
    absl::StatusOr<AppliedTransition> applied = sync_.Apply(std::move(params));
    EXPECT_TRUE(applied.ok()) << applied.status();
    return applied.ok() ? applied->token.revision() : 0;
  }
  // Toggles `id` and applies the change to the mirror.
  int64_t ToggleLive(const std::string& id) {
    const int64_t revision = Toggle(id);
    Sync();
    return revision;
  }

  // Live changes from the mirror's current revision on (a request with since_revision=0 would
  // miss those made before the server has started the stream).
  WatchTokensRequest FromNow(const std::string& account = "") {
    WatchTokensRequest request = Request(mirror_.revision(), false, account);
    request.set_epoch(mirror_.epoch());
    return request;
  }

  static WatchTokensRequest Request(int64_t since_revision, bool initial_state,
                                    const std::string& account = "") {
    WatchTokensRequest request;
    request.set_since_revision(since_revision);
    request.set_send_initial_state(initial_state);
    request.set_account_id(account);
    return request;
  }

  MemoryTokenStore store_;
  testing::SyncStore sync_{store_};
  TokenMirror mirror_;
  WatchHub hub_;
  Authenticator open_access_{/*allow_unauthenticated=*/true};
  TokenServiceImpl service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<apitoken::v1::TokenService::Stub> stub_;
};

TEST_F(WatchHubTest, SnapshotInChunksThenSyncedThenLiveChangesInOrder) {
  CreateToken("TKN-0000-0002", kAccountA);
  CreateToken("TKN-0000-0003", kAccountB);
  Sync();  // revision 3
  Watcher watcher(*stub_, Request(0, true));
  ASSERT_TRUE(watcher.Await(HasKind(WatchTokensResponse::KIND_SYNCED)));
  ToggleLive("TKN-0000-0002");  // 4
  ToggleLive("TKN-0000-0003");  // 5
  ASSERT_TRUE(watcher.Await(HasEventRevision(5)));

  const std::vector<WatchTokensResponse> messages = watcher.messages();
  EXPECT_THAT(
      KindsOf(messages),
      ::testing::ElementsAre(WatchTokensResponse::KIND_SNAPSHOT, WatchTokensResponse::KIND_SNAPSHOT,
                             WatchTokensResponse::KIND_SYNCED, WatchTokensResponse::KIND_CHANGES,
                             WatchTokensResponse::KIND_CHANGES));
  EXPECT_EQ(messages[0].tokens_size(), 2);  // chunks of at most snapshot_chunk tokens
  EXPECT_EQ(messages[1].tokens_size(), 1);
  EXPECT_EQ(messages[2].revision(), 3);
  EXPECT_EQ(messages[2].epoch(), mirror_.epoch());
  EXPECT_THAT(EventRevisions(messages), ::testing::ElementsAre(4, 5));
  EXPECT_EQ(messages[3].events(0).type(), TokenEvent::TYPE_DISABLED);
  for (const auto& message : messages) {
    for (const Token& token : message.tokens()) EXPECT_TRUE(token.secret_sha256().empty());
    for (const auto& event : message.events()) {
      EXPECT_TRUE(event.token().secret_sha256().empty());
    }
  }
}

TEST_F(WatchHubTest, AccountFilterSeesOnlyItsAccount) {
  CreateToken("TKN-0000-0002", kAccountB);
  Sync();  // 2
  Watcher only_b(*stub_, Request(0, true, kAccountB));
  Watcher all(*stub_, FromNow());
  ASSERT_TRUE(only_b.Await(HasKind(WatchTokensResponse::KIND_SYNCED)));
  ToggleLive("TKN-0000-0001");  // 3, account A
  ToggleLive("TKN-0000-0002");  // 4, account B
  ASSERT_TRUE(all.Await(HasEventRevision(4)));
  ASSERT_TRUE(only_b.Await(HasEventRevision(4)));

  const std::vector<WatchTokensResponse> messages = only_b.messages();
  ASSERT_EQ(messages[0].tokens_size(), 1);
  EXPECT_EQ(messages[0].tokens(0).id(), "TKN-0000-0002");
  EXPECT_THAT(EventRevisions(messages), ::testing::ElementsAre(4));
  EXPECT_THAT(EventRevisions(all.messages()), ::testing::ElementsAre(3, 4));
}

TEST_F(WatchHubTest, SecretHashesOnlyForStreamsThatAskForThem) {
  CreateToken("TKN-0000-0002", kAccountB);
  Sync();  // 2
  WatchTokensRequest hashed_request = Request(0, true);
  hashed_request.set_include_secret_hash(true);
  Watcher hashed(*stub_, hashed_request);
  Watcher plain(*stub_, Request(0, true));
  ASSERT_TRUE(hashed.Await(HasKind(WatchTokensResponse::KIND_SYNCED)));
  ASSERT_TRUE(plain.Await(HasKind(WatchTokensResponse::KIND_SYNCED)));
  ToggleLive("TKN-0000-0002");  // 3
  ASSERT_TRUE(hashed.Await(HasEventRevision(3)));
  ASSERT_TRUE(plain.Await(HasEventRevision(3)));
  // A resume replays (1, 3] from the store, with the hashes too.
  WatchTokensRequest resumed_request = Request(1, false);
  resumed_request.set_epoch(mirror_.epoch());
  resumed_request.set_include_secret_hash(true);
  Watcher resumed(*stub_, resumed_request);
  ASSERT_TRUE(resumed.Await(HasEventRevision(3)));

  const std::string hash(32, 's');  // CreateToken's
  const auto hashes_of = [](const std::vector<WatchTokensResponse>& messages) {
    std::vector<std::string> hashes;
    for (const auto& message : messages) {
      for (const Token& token : message.tokens()) hashes.push_back(token.secret_sha256());
      for (const auto& event : message.events()) hashes.push_back(event.token().secret_sha256());
    }
    return hashes;
  };
  // Snapshot (2 tokens) and change (1), and the replayed events 2 and 3.
  EXPECT_THAT(hashes_of(hashed.messages()), ::testing::ElementsAre(hash, hash, hash));
  EXPECT_THAT(hashes_of(resumed.messages()), ::testing::ElementsAre(hash, hash));
  EXPECT_THAT(hashes_of(plain.messages()), ::testing::ElementsAre("", "", ""));
}

TEST_F(WatchHubTest, RejectsInvalidRequests) {
  WatchTokensRequest bad_account = Request(0, false, "ACC-1");
  Watcher account(*stub_, bad_account);
  EXPECT_EQ(account.AwaitEnd().error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  WatchTokensRequest fast_progress = Request(0, false);
  fast_progress.mutable_progress_interval()->set_nanos(50 * 1000 * 1000);
  Watcher progress(*stub_, fast_progress);
  const grpc::Status status = progress.AwaitEnd();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("progress_interval"));

  Watcher negative(*stub_, Request(-1, false));
  EXPECT_EQ(negative.AwaitEnd().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(WatchHubTest, ResumeReplaysTheHistoryWithoutGapOrDuplicateThenGoesLive) {
  for (int i = 0; i < 10; ++i) ToggleLive("TKN-0000-0001");  // 2..11
  // Resume after 4: the catch-up reads 5..11 from the store in pages of 3.
  Watcher watcher(*stub_, Request(4, false));
  ASSERT_TRUE(watcher.Await(HasEventRevision(11)));
  ToggleLive("TKN-0000-0001");  // 12, live
  ASSERT_TRUE(watcher.Await(HasEventRevision(12)));
  EXPECT_THAT(EventRevisions(watcher.messages()),
              ::testing::ElementsAre(5, 6, 7, 8, 9, 10, 11, 12));
  EXPECT_EQ(LastRevision(watcher.messages()), 12);
}

TEST_F(WatchHubTest, ChangesDuringTheCatchUpAreHeldBackAndFollowIt) {
  for (int i = 0; i < 6; ++i) ToggleLive("TKN-0000-0001");  // 2..7
  // The store is ahead of the mirror while the watcher starts: its catch-up must stop at the
  // mirror's revision (7) and the rest come live, in order, once.
  for (int i = 0; i < 3; ++i) Toggle("TKN-0000-0001");  // 8..10 in the store only
  Watcher watcher(*stub_, Request(2, false));
  ASSERT_TRUE(watcher.Await(HasEventRevision(7)));
  Sync();  // 8..10 reach the mirror
  ASSERT_TRUE(watcher.Await(HasEventRevision(10)));
  EXPECT_THAT(EventRevisions(watcher.messages()), ::testing::ElementsAre(3, 4, 5, 6, 7, 8, 9, 10));
}

TEST_F(WatchHubTest, EveryMessageWithARevisionCarriesTheMarkOfThatRevision) {
  Watcher watcher(*stub_, Request(0, true));
  ASSERT_TRUE(watcher.Await(HasKind(WatchTokensResponse::KIND_SYNCED)));
  ToggleLive("TKN-0000-0001");  // 2
  ASSERT_TRUE(watcher.Await(HasEventRevision(2)));
  for (const WatchTokensResponse& message : watcher.messages()) {
    EXPECT_EQ(message.chain().size(), 16u) << message.DebugString();
  }
  EXPECT_EQ(watcher.messages().back().chain(), Head().chain);
  EXPECT_EQ(watcher.messages().back().events(0).chain(), Head().chain);
}

TEST_F(WatchHubTest, ResumeWithTheStoresMarkReplaysWithoutReset) {
  for (int i = 0; i < 6; ++i) ToggleLive("TKN-0000-0001");  // 2..7
  std::string mark_of_4;
  store_.ReadEvents(3, 1, absl::InfiniteFuture(),
                    [&](absl::StatusOr<std::vector<TokenEvent>> events) {
                      ASSERT_TRUE(events.ok() && events->size() == 1u);
                      mark_of_4 = (*events)[0].chain();
                    });
  WatchTokensRequest request = Request(4, false);
  request.set_since_chain(mark_of_4);
  Watcher watcher(*stub_, request);
  ASSERT_TRUE(watcher.Await(HasEventRevision(7)));
  EXPECT_THAT(EventRevisions(watcher.messages()), ::testing::ElementsAre(5, 6, 7));
  EXPECT_THAT(KindsOf(watcher.messages()), ::testing::Each(WatchTokensResponse::KIND_CHANGES));

  // At the mirror's own revision, with its mark: live at once, no reset either.
  WatchTokensRequest current = FromNow();
  current.set_since_chain(mirror_.chain());
  Watcher live(*stub_, current);
  ToggleLive("TKN-0000-0001");  // 8
  ASSERT_TRUE(live.Await(HasEventRevision(8)));
  EXPECT_THAT(KindsOf(live.messages()), ::testing::Each(WatchTokensResponse::KIND_CHANGES));
}

TEST_F(WatchHubTest, ResumeWithAMarkTheStoreDoesNotHoldGivesReset) {
  // A client whose revision 4 came from another history (a store restored older, then changed
  // again): the numbers fit, the mark does not.
  for (int i = 0; i < 6; ++i) ToggleLive("TKN-0000-0001");  // 2..7
  WatchTokensRequest request = Request(4, true);
  request.set_epoch(mirror_.epoch());
  request.set_since_chain("0123456789abcdef");
  Watcher watcher(*stub_, request);
  ASSERT_TRUE(watcher.Await(HasKind(WatchTokensResponse::KIND_SYNCED)));
  EXPECT_THAT(
      KindsOf(watcher.messages()),
      ::testing::ElementsAre(WatchTokensResponse::KIND_RESET, WatchTokensResponse::KIND_SNAPSHOT,
                             WatchTokensResponse::KIND_SYNCED));
  EXPECT_EQ(watcher.messages().back().chain(), mirror_.chain());

  // The same at the mirror's own revision.
  WatchTokensRequest current = FromNow();
  current.set_since_chain("0123456789abcdef");
  Watcher at_head(*stub_, current);
  EXPECT_TRUE(at_head.AwaitEnd().ok());
  EXPECT_THAT(KindsOf(at_head.messages()), ::testing::ElementsAre(WatchTokensResponse::KIND_RESET));
}

class TrimmedWatchHubTest : public WatchHubTest {
 protected:
  TrimmedWatchHubTest() : WatchHubTest(MemoryTokenStoreOptions{.event_retention = 3}) {}
};

TEST_F(TrimmedWatchHubTest, TrimmedHistoryGivesResetThenASnapshotOfTheState) {
  for (int i = 0; i < 6; ++i) ToggleLive("TKN-0000-0001");  // 2..7; the store keeps 5..7
  Watcher watcher(*stub_, Request(2, true));
  ASSERT_TRUE(watcher.Await(HasKind(WatchTokensResponse::KIND_SYNCED)));
  const std::vector<WatchTokensResponse> messages = watcher.messages();
  EXPECT_THAT(KindsOf(messages), ::testing::ElementsAre(WatchTokensResponse::KIND_RESET,
                                                        WatchTokensResponse::KIND_SNAPSHOT,
                                                        WatchTokensResponse::KIND_SYNCED));
  EXPECT_EQ(messages[1].tokens(0).revision(), 7);
  EXPECT_EQ(messages[2].revision(), 7);
  ToggleLive("TKN-0000-0001");  // 8
  EXPECT_TRUE(watcher.Await(HasEventRevision(8)));
}

TEST_F(WatchHubTest, RevisionFromTheFutureGivesReset) {
  Watcher watcher(*stub_, Request(99, true));
  ASSERT_TRUE(watcher.Await(HasKind(WatchTokensResponse::KIND_SYNCED)));
  EXPECT_THAT(
      KindsOf(watcher.messages()),
      ::testing::ElementsAre(WatchTokensResponse::KIND_RESET, WatchTokensResponse::KIND_SNAPSHOT,
                             WatchTokensResponse::KIND_SYNCED));
}

TEST_F(WatchHubTest, AnotherEpochGivesResetAndWithoutInitialStateTheStreamEnds) {
  WatchTokensRequest request = Request(1, false);
  request.set_epoch("another-epoch");
  Watcher watcher(*stub_, request);
  EXPECT_TRUE(watcher.AwaitEnd().ok());
  const std::vector<WatchTokensResponse> messages = watcher.messages();
  ASSERT_THAT(KindsOf(messages), ::testing::ElementsAre(WatchTokensResponse::KIND_RESET));
  EXPECT_EQ(messages[0].epoch(), mirror_.epoch());
}

TEST_F(WatchHubTest, MirrorResetGivesEveryStreamResetThenAFreshSnapshot) {
  Watcher with_state(*stub_, Request(0, true));
  Watcher without_state(*stub_, FromNow());
  ASSERT_TRUE(with_state.Await(HasKind(WatchTokensResponse::KIND_SYNCED)));
  Token replacement;
  replacement.set_id("TKN-0000-0009");
  replacement.set_account_id(kAccountA);
  replacement.set_revision(1);
  mirror_.Reset({replacement}, 1, "new-epoch");

  ASSERT_TRUE(with_state.Await(HasKind(WatchTokensResponse::KIND_SYNCED, 2)));
  const std::vector<WatchTokensResponse> messages = with_state.messages();
  EXPECT_THAT(
      KindsOf(messages),
      ::testing::ElementsAre(WatchTokensResponse::KIND_SNAPSHOT, WatchTokensResponse::KIND_SYNCED,
                             WatchTokensResponse::KIND_RESET, WatchTokensResponse::KIND_SNAPSHOT,
                             WatchTokensResponse::KIND_SYNCED));
  EXPECT_EQ(messages[2].epoch(), "new-epoch");
  EXPECT_EQ(messages[3].tokens(0).id(), "TKN-0000-0009");
  EXPECT_EQ(messages[4].epoch(), "new-epoch");

  EXPECT_TRUE(without_state.AwaitEnd().ok());
  EXPECT_THAT(KindsOf(without_state.messages()),
              ::testing::ElementsAre(WatchTokensResponse::KIND_RESET));
}

TEST_F(WatchHubTest, SlowConsumerIsEndedWhileAnotherKeepsReceiving) {
  // The slow watcher's connection takes little in flight and its client never reads: its
  // queue (16 messages) overflows.
  auto slow_stub = NewStub(/*window_bytes=*/16 * 1024);
  Watcher slow(*slow_stub, FromNow(), /*read=*/false);
  Watcher fast(*stub_, FromNow());
  const std::string description(2000, 'd');
  int64_t last = 0;
  for (int i = 0; i < 200; ++i) {
    CreateToken(absl::StrFormat("TKN-1000-%04d", i), kAccountA, description);
    Sync();
    last = mirror_.revision();
    // The fast watcher keeps up (this test produces faster than any client reads).
    ASSERT_TRUE(fast.Await(HasEventRevision(last)));
  }
  EXPECT_EQ(EventRevisions(fast.messages()).size(), 200u);

  slow.ReadAll();
  const grpc::Status status = slow.AwaitEnd();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(ReasonOf(status), reason::kWatcherFellBehind);
  // It names the revision of the last message it got, to resume from.
  const int64_t seen = LastRevision(slow.messages());
  EXPECT_LT(seen, last);
  EXPECT_THAT(status.error_message(), HasSubstr(absl::StrCat("resume with since_revision=", seen)));
}

// Room for the streams of a test that starts many while changes keep coming.
class BusyWatchHubTest : public WatchHubTest {
 protected:
  BusyWatchHubTest() : WatchHubTest({}, Options()) {}
  static WatchHubOptions Options() {
    WatchHubOptions options = TestHubOptions();
    options.queue_size = 4096;
    options.max_watchers = 64;
    options.max_watchers_per_connection = 64;
    return options;
  }
};

TEST_F(BusyWatchHubTest, StreamsStartedDuringAStreamOfChangesGetEveryLaterChangeOnce) {
  // The fan-out runs behind the mirror: a stream that starts at the mirror's revision may find
  // batches up to it still waiting for the fan-out. It must skip those (its start covers them)
  // and get every later one, exactly once, in order. (How often a start meets a waiting batch
  // is up to the scheduler; a start that skipped too much or too little fails at once.)
  constexpr int kChanges = 400;
  constexpr int kWatchers = 24;
  std::thread writer([this] {
    for (int i = 0; i < kChanges; ++i) ToggleLive("TKN-0000-0001");
  });
  std::vector<std::unique_ptr<Watcher>> watchers;
  std::vector<int64_t> since;
  for (int i = 0; i < kWatchers; ++i) {
    const WatchTokensRequest request = FromNow();
    since.push_back(request.since_revision());
    watchers.push_back(std::make_unique<Watcher>(*stub_, request));
    absl::SleepFor(absl::Microseconds(500));  // pacing only: starts spread over the changes
  }
  writer.join();
  const int64_t last = mirror_.revision();
  for (int i = 0; i < kWatchers; ++i) {
    if (since[i] < last) {
      ASSERT_TRUE(watchers[i]->Await(HasEventRevision(last))) << "watcher " << i;
    }
    std::vector<int64_t> expected;
    for (int64_t revision = since[i] + 1; revision <= last; ++revision) {
      expected.push_back(revision);
    }
    EXPECT_EQ(EventRevisions(watchers[i]->messages()), expected) << "watcher " << i;
  }
}

TEST_F(WatchHubTest, ProgressComesAtTheIntervalAndNeverOvertakesAChange) {
  WatchTokensRequest request = Request(0, false);
  request.mutable_progress_interval()->set_nanos(100 * 1000 * 1000);
  Watcher watcher(*stub_, request);
  ASSERT_TRUE(watcher.Await(HasKind(WatchTokensResponse::KIND_PROGRESS)));
  for (int i = 0; i < 5; ++i) ToggleLive("TKN-0000-0001");  // 2..6
  ASSERT_TRUE(watcher.Await(HasKind(WatchTokensResponse::KIND_PROGRESS, 3)));
  const std::vector<WatchTokensResponse> messages = watcher.messages();
  EXPECT_EQ(messages[0].kind(), WatchTokensResponse::KIND_PROGRESS);
  EXPECT_EQ(messages[0].revision(), 1);
  // Revisions never go back: a PROGRESS at R comes after every change <= R.
  int64_t previous = 0;
  for (const auto& message : messages) {
    EXPECT_GE(message.revision(), previous);
    if (message.kind() == WatchTokensResponse::KIND_CHANGES) {
      EXPECT_GT(message.revision(), previous);
    }
    previous = message.revision();
  }
  EXPECT_EQ(LastRevision(messages), 6);
}

TEST_F(WatchHubTest, WatcherLimitsPerConnectionAndServerWide) {
  std::vector<std::unique_ptr<Watcher>> watchers;
  for (int i = 0; i < 4; ++i) {
    watchers.push_back(std::make_unique<Watcher>(*stub_, Request(0, true)));
    ASSERT_TRUE(watchers.back()->Await(HasKind(WatchTokensResponse::KIND_SYNCED)));
  }
  Watcher fifth_on_connection(*stub_, Request(0, false));
  grpc::Status status = fifth_on_connection.AwaitEnd();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(ReasonOf(status), reason::kTooManyWatchers);
  EXPECT_THAT(status.error_message(), HasSubstr("connection"));

  auto other = NewStub();
  for (int i = 0; i < 2; ++i) {
    watchers.push_back(std::make_unique<Watcher>(*other, Request(0, true)));
    ASSERT_TRUE(watchers.back()->Await(HasKind(WatchTokensResponse::KIND_SYNCED)));
  }
  EXPECT_EQ(hub_.watcher_count(), 6);
  Watcher seventh(*other, Request(0, false));
  status = seventh.AwaitEnd();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(ReasonOf(status), reason::kTooManyWatchers);

  // An ended stream frees its place (once the server has seen it end).
  watchers.back()->Cancel();
  EXPECT_FALSE(watchers.back()->AwaitEnd().ok());
  watchers.pop_back();
  const absl::Time give_up = absl::Now() + kWait;
  while (hub_.watcher_count() > 5 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(1));
  ASSERT_EQ(hub_.watcher_count(), 5);
  Watcher again(*other, Request(0, true));
  EXPECT_TRUE(again.Await(HasKind(WatchTokensResponse::KIND_SYNCED)));
}

TEST_F(WatchHubTest, ShutdownEndsEveryStreamWithUnavailableAndTheRevisionToResumeFrom) {
  Watcher watcher(*stub_, FromNow());
  Watcher filtered(*stub_, FromNow(kAccountB));
  ToggleLive("TKN-0000-0001");  // 2
  ASSERT_TRUE(watcher.Await(HasEventRevision(2)));
  hub_.Shutdown();
  const grpc::Status status = watcher.AwaitEnd();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ReasonOf(status), reason::kServerShuttingDown);
  EXPECT_THAT(status.error_message(), HasSubstr("resume with since_revision=2 elsewhere"));
  EXPECT_EQ(filtered.AwaitEnd().error_code(), grpc::StatusCode::UNAVAILABLE);

  Watcher late(*stub_, Request(0, false));
  EXPECT_EQ(late.AwaitEnd().error_code(), grpc::StatusCode::UNAVAILABLE);
}

// --- Snapshots within the budget. ---

// The ErrorInfo of a failed call.
google::rpc::ErrorInfo InfoOf(const grpc::Status& status) {
  google::rpc::Status details;
  google::rpc::ErrorInfo info;
  if (details.ParseFromString(status.error_details()) && details.details_size() == 1) {
    details.details(0).UnpackTo(&info);
  }
  return info;
}

// The tokens of every KIND_SNAPSHOT chunk in `messages`, by id.
std::map<std::string, Token> SnapshotTokens(const std::vector<WatchTokensResponse>& messages) {
  std::map<std::string, Token> tokens;
  for (const auto& message : messages) {
    if (message.kind() != WatchTokensResponse::KIND_SNAPSHOT) continue;
    for (const Token& token : message.tokens()) tokens[token.id()] = token;
  }
  return tokens;
}

// The revision of the first KIND_SYNCED in `messages` (-1 if none).
int64_t SyncedRevision(const std::vector<WatchTokensResponse>& messages) {
  for (const auto& message : messages) {
    if (message.kind() == WatchTokensResponse::KIND_SYNCED) return message.revision();
  }
  return -1;
}

// Tokens large enough (a 2,000-character description: 2 tokens, ~4 KiB, per chunk) that a
// snapshot of them (~650 KB) far exceeds what a narrow connection takes in, and a budget with
// room for one such snapshot (its capture, ~5 KB, and one 16 KiB chunk) but not two.
WatchHubOptions BudgetOptions() {
  WatchHubOptions options = TestHubOptions();
  options.max_watchers = 20;
  options.max_watchers_per_connection = 20;
  options.snapshot_chunk_bytes = 16 * 1024;
  options.snapshot_memory_budget = 30 * 1024;
  return options;
}

class SnapshotBudgetTest : public WatchHubTest {
 protected:
  static constexpr int kTokens = 300;  // and SetUp's first one

  explicit SnapshotBudgetTest(WatchHubOptions options = BudgetOptions())
      : WatchHubTest({}, options) {}

  void SetUp() override {
    WatchHubTest::SetUp();
    const std::string description(2000, 'd');
    for (int i = 0; i < kTokens; ++i) {
      CreateToken(absl::StrFormat("TKN-2000-%04d", i), kAccountA, description);
    }
    Sync();
  }

  // Waits until `holds` is true of the hub's snapshot figures; false after kWait.
  bool AwaitStats(const std::function<bool(const WatchHub::SnapshotStats&)>& holds) {
    const absl::Time give_up = absl::Now() + kWait;
    while (!holds(hub_.snapshot_stats())) {
      if (absl::Now() > give_up) return false;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return true;
  }
  // Waits until the hub has built no snapshot chunk for 300 ms (every snapshot in progress is
  // stalled or done); returns the chunks built.
  int64_t AwaitChunksSettled() {
    int64_t built = hub_.snapshot_stats().chunks_built;
    for (absl::Time quiet_since = absl::Now(); absl::Now() - quiet_since < absl::Milliseconds(300);
         absl::SleepFor(absl::Milliseconds(20))) {
      const int64_t now_built = hub_.snapshot_stats().chunks_built;
      if (now_built != built) {
        built = now_built;
        quiet_since = absl::Now();
      }
    }
    return built;
  }

  // A watcher whose client reads nothing, on a connection of its own that takes in 16 KiB: its
  // snapshot stalls after a few chunks, holding its share of the budget. ReadInBackground() lets
  // it go on.
  std::unique_ptr<Watcher> StalledWatcher(const WatchTokensRequest& request,
                                          const std::string& bearer = "") {
    narrow_stubs_.push_back(NewStub(/*window_bytes=*/16 * 1024));
    return std::make_unique<Watcher>(*narrow_stubs_.back(), request, /*read=*/false, bearer);
  }

  std::vector<std::unique_ptr<apitoken::v1::TokenService::Stub>> narrow_stubs_;
};

TEST_F(SnapshotBudgetTest, ChunksAreBuiltAsTheStreamDrainsFromOneConsistentCut) {
  const int64_t captured_at = mirror_.revision();
  std::unique_ptr<Watcher> watcher = StalledWatcher(Request(0, true));
  ASSERT_TRUE(AwaitStats([](const auto& stats) { return stats.in_progress == 1; }));
  // 151 chunks in all; a client that reads nothing has made the server build only the few its
  // connection took in (the whole snapshot is ~650 KB, the window 16 KiB).
  const int64_t built_while_stalled = AwaitChunksSettled();
  EXPECT_GT(built_while_stalled, 0);
  EXPECT_LT(built_while_stalled, 30) << "chunks were built ahead of the stream";
  const WatchHub::SnapshotStats stalled = hub_.snapshot_stats();
  EXPECT_LE(stalled.reserved_bytes, 30 * 1024);
  EXPECT_GE(stalled.reserved_bytes, (kTokens + 1) * 16) << "the capture is counted";

  // Changes while the snapshot is in progress: the snapshot still shows the state at the
  // revision it was captured at, and the changes follow its SYNCED.
  const int64_t first_change = ToggleLive("TKN-2000-0000");
  ToggleLive("TKN-2000-0299");
  const int64_t last_change = ToggleLive("TKN-2000-0000");
  watcher->ReadInBackground();
  ASSERT_TRUE(watcher->Await(HasEventRevision(last_change)));

  const std::vector<WatchTokensResponse> messages = watcher->messages();
  EXPECT_EQ(SyncedRevision(messages), captured_at);
  const std::map<std::string, Token> snapshot = SnapshotTokens(messages);
  EXPECT_EQ(snapshot.size(), static_cast<size_t>(kTokens + 1));
  for (const auto& [id, token] : snapshot) {
    EXPECT_LE(token.revision(), captured_at) << id;
    EXPECT_EQ(token.state(), Token::STATE_ACTIVE) << id;
  }
  for (const auto& message : messages) {
    if (message.kind() == WatchTokensResponse::KIND_SNAPSHOT) {
      EXPECT_EQ(message.revision(), captured_at);
      EXPECT_LE(message.tokens_size(), 2);
    }
  }
  EXPECT_THAT(EventRevisions(messages),
              ::testing::ElementsAre(first_change, first_change + 1, last_change));
  EXPECT_EQ(hub_.snapshot_stats().chunks_built, (kTokens + 2) / 2);
  EXPECT_TRUE(AwaitStats([](const auto& stats) {
    return stats.in_progress == 0 && stats.reserved_bytes == 0;
  })) << "the snapshot's share of the budget goes back once it is sent";
}

TEST_F(SnapshotBudgetTest, AStreamBeyondTheBudgetWaitsThenGetsTheStateOfItsTurnWithoutAGap) {
  std::unique_ptr<Watcher> holder = StalledWatcher(Request(0, true));
  ASSERT_TRUE(AwaitStats([](const auto& stats) { return stats.in_progress == 1; }));
  Watcher waiting(*stub_, Request(0, true));
  ASSERT_TRUE(AwaitStats([](const auto& stats) { return stats.waiting == 1; }));
  EXPECT_EQ(hub_.snapshot_stats().in_progress, 1);
  EXPECT_LE(hub_.snapshot_stats().reserved_bytes, 30 * 1024);
  // Changes while it waits: it is sent none of them (its snapshot will show them).
  ToggleLive("TKN-2000-0001");
  ToggleLive("TKN-2000-0002");
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_TRUE(waiting.messages().empty()) << "a waiting stream was sent something";

  // The holder goes: the waiting stream's turn, at the mirror's revision then.
  holder->Cancel();
  ASSERT_TRUE(waiting.Await(HasKind(WatchTokensResponse::KIND_SYNCED)));
  const int64_t turn = mirror_.revision();
  const int64_t later = ToggleLive("TKN-2000-0003");
  ASSERT_TRUE(waiting.Await(HasEventRevision(later)));
  const std::vector<WatchTokensResponse> messages = waiting.messages();
  EXPECT_EQ(SyncedRevision(messages), turn);
  const std::map<std::string, Token> snapshot = SnapshotTokens(messages);
  ASSERT_EQ(snapshot.size(), static_cast<size_t>(kTokens + 1));
  EXPECT_EQ(snapshot.at("TKN-2000-0001").state(), Token::STATE_DISABLED);
  EXPECT_EQ(snapshot.at("TKN-2000-0002").state(), Token::STATE_DISABLED);
  EXPECT_EQ(snapshot.at("TKN-2000-0003").state(), Token::STATE_ACTIVE);
  EXPECT_THAT(EventRevisions(messages), ::testing::ElementsAre(later));
}

class RoomyBudgetTest : public SnapshotBudgetTest {
 protected:
  RoomyBudgetTest() : SnapshotBudgetTest(Options()) {}
  static WatchHubOptions Options() {
    WatchHubOptions options = BudgetOptions();
    options.snapshot_memory_budget = 1 << 20;
    options.max_snapshots_per_principal = 1;
    return options;
  }
};

TEST_F(RoomyBudgetTest, StreamsStartingAtTheSameRevisionShareOneCapture) {
  const std::string alice = "alice-secret", bob = "bob-secret";
  open_access_.SetCredentials(std::make_shared<const CredentialTable>(
      *CredentialTable::Parse(absl::StrCat(absl::BytesToHexString(Sha256(alice)), " reader alice\n",
                                           absl::BytesToHexString(Sha256(bob)), " reader bob\n"))));
  // One per principal (each has one snapshot slot), all at the same revision.
  std::unique_ptr<Watcher> first = StalledWatcher(Request(0, true), alice);
  ASSERT_TRUE(AwaitStats([](const auto& stats) { return stats.in_progress == 1; }));
  const int64_t one = hub_.snapshot_stats().reserved_bytes;
  std::unique_ptr<Watcher> second = StalledWatcher(Request(0, true), bob);
  ASSERT_TRUE(AwaitStats([](const auto& stats) { return stats.in_progress == 2; }));
  const int64_t two = hub_.snapshot_stats().reserved_bytes;
  // At the next revision a new capture is needed.
  ToggleLive("TKN-2000-0001");
  std::unique_ptr<Watcher> third = StalledWatcher(Request(0, true));
  ASSERT_TRUE(AwaitStats([](const auto& stats) { return stats.in_progress == 3; }));
  const int64_t three = hub_.snapshot_stats().reserved_bytes;
  const int64_t per_stream = two - one;
  const int64_t capture = three - two - per_stream;
  EXPECT_GE(per_stream, 16 * 1024) << "a chunk's room per stream";
  EXPECT_GE(capture, (kTokens + 1) * 16) << "16 bytes per captured token";
  EXPECT_LT(capture, 2 * (kTokens + 1) * 16);
  EXPECT_EQ(one, capture + per_stream);
}

TEST_F(RoomyBudgetTest, APrincipalAtItsLimitLetsOthersPass) {
  const std::string alice = "alice-secret";
  open_access_.SetCredentials(std::make_shared<const CredentialTable>(*CredentialTable::Parse(
      absl::StrCat(absl::BytesToHexString(Sha256(alice)), " reader alice\n"))));
  std::unique_ptr<Watcher> alice_first = StalledWatcher(Request(0, true), alice);
  ASSERT_TRUE(AwaitStats([](const auto& stats) { return stats.in_progress == 1; }));
  Watcher alice_second(*stub_, Request(0, true), /*read=*/true, alice);
  ASSERT_TRUE(AwaitStats([](const auto& stats) { return stats.waiting == 1; }));
  // Another principal (anonymous) is not held up behind alice's second stream.
  Watcher other(*stub_, Request(0, true));
  ASSERT_TRUE(other.Await(HasKind(WatchTokensResponse::KIND_SYNCED)));
  EXPECT_TRUE(alice_second.messages().empty());
  EXPECT_EQ(hub_.snapshot_stats().waiting, 1);
  alice_first->Cancel();
  EXPECT_TRUE(alice_second.Await(HasKind(WatchTokensResponse::KIND_SYNCED)));
}

class ImpatientBudgetTest : public SnapshotBudgetTest {
 protected:
  ImpatientBudgetTest() : SnapshotBudgetTest(Options()) {}
  static WatchHubOptions Options() {
    WatchHubOptions options = BudgetOptions();
    options.snapshot_max_wait = absl::Milliseconds(300);
    options.snapshot_retry_after = absl::Seconds(2);
    options.snapshot_stall_timeout = absl::Seconds(1);
    return options;
  }
};

TEST_F(ImpatientBudgetTest, AStreamThatWaitedTooLongIsRefusedWithARetryHint) {
  std::unique_ptr<Watcher> holder = StalledWatcher(Request(0, true));
  ASSERT_TRUE(AwaitStats([](const auto& stats) { return stats.in_progress == 1; }));
  const absl::Time start = absl::Now();
  Watcher refused(*stub_, Request(0, true));
  const grpc::Status status = refused.AwaitEnd();
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(300));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  const google::rpc::ErrorInfo info = InfoOf(status);
  EXPECT_EQ(info.reason(), reason::kSnapshotBudgetExhausted);
  int64_t retry_after_ms = 0;
  ASSERT_TRUE(absl::SimpleAtoi(info.metadata().at("retry_after_ms"), &retry_after_ms));
  EXPECT_GE(retry_after_ms, 2000);
  EXPECT_LT(retry_after_ms, 4000);
  EXPECT_THAT(status.error_message(), HasSubstr("resume with since_revision=0"));
  EXPECT_TRUE(refused.messages().empty());
  EXPECT_EQ(hub_.snapshot_stats().waiting, 0);
}

TEST_F(ImpatientBudgetTest, AStalledSnapshotIsCancelledAndItsShareGoesToTheNext) {
  std::unique_ptr<Watcher> stalled = StalledWatcher(Request(0, true));
  ASSERT_TRUE(AwaitStats([](const auto& stats) { return stats.in_progress == 1; }));
  // Within its wait (300 ms), the stalled snapshot (1 s) is not yet cancelled: it waits in vain.
  Watcher refused(*stub_, Request(0, true));
  EXPECT_EQ(refused.AwaitEnd().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  // Once the stall is cancelled, the next stream gets its snapshot.
  ASSERT_TRUE(AwaitStats([](const auto& stats) { return stats.in_progress == 0; }));
  Watcher next(*stub_, Request(0, true));
  EXPECT_TRUE(next.Await(HasKind(WatchTokensResponse::KIND_SYNCED)));
  stalled->ReadInBackground();
  EXPECT_EQ(stalled->AwaitEnd().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(SnapshotBudgetTest, TheSnapshotAfterAResetWaitsForTheBudgetToo) {
  Watcher watcher(*stub_, Request(0, true));
  ASSERT_TRUE(watcher.Await(HasKind(WatchTokensResponse::KIND_SYNCED)));
  std::unique_ptr<Watcher> holder = StalledWatcher(Request(0, true));
  ASSERT_TRUE(AwaitStats([](const auto& stats) { return stats.in_progress == 1; }));
  AwaitChunksSettled();

  Token replacement;
  replacement.set_id("TKN-0000-0009");
  replacement.set_account_id(kAccountA);
  replacement.set_revision(1);
  mirror_.Reset({replacement}, 1, "new-epoch");
  ASSERT_TRUE(watcher.Await(HasKind(WatchTokensResponse::KIND_RESET)));
  // The holder's chunk is still being written: its share is still held, the watcher waits.
  ASSERT_TRUE(AwaitStats([](const auto& stats) { return stats.waiting >= 1; }));
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(watcher.messages().back().kind(), WatchTokensResponse::KIND_RESET);

  holder->Cancel();
  ASSERT_TRUE(watcher.Await(HasKind(WatchTokensResponse::KIND_SYNCED, 2)));
  const std::vector<WatchTokensResponse> messages = watcher.messages();
  ASSERT_GE(messages.size(), 3u);
  EXPECT_EQ(messages[messages.size() - 3].kind(), WatchTokensResponse::KIND_RESET);
  EXPECT_EQ(messages[messages.size() - 2].kind(), WatchTokensResponse::KIND_SNAPSHOT);
  EXPECT_EQ(messages[messages.size() - 2].tokens(0).id(), "TKN-0000-0009");
  EXPECT_EQ(messages.back().epoch(), "new-epoch");
}

}  // namespace
}  // namespace tokenstatus
