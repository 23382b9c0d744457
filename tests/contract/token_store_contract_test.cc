// The TokenStore contract (server/store/token_store.h), pinned by one typed suite that runs
// against every implementation: MemoryTokenStore, and RedisTokenStore on the shared test Redis
// with a fresh key prefix per test.

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "core/status_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "server/redis/redis_client.h"
#include "server/store/memory_token_store.h"
#include "server/store/redis_token_store.h"
#include "server/store/token_store.h"
#include "tests/testing/redis_instance.h"
#include "tests/testing/sync_store.h"

namespace tokenstatus {
namespace {

using testing::SyncStore;

constexpr int64_t kRetention = 10;  // small, so that the retention test trims

// How the suite makes a store of each kind.
template <typename Store>
struct StoreFactory;

template <>
struct StoreFactory<MemoryTokenStore> {
  static void SetUpSuite() {}
  static void TearDownSuite() {}
  static std::unique_ptr<TokenStore> New(int64_t retention = kRetention) {
    return std::make_unique<MemoryTokenStore>(MemoryTokenStoreOptions{retention});
  }
};

template <>
struct StoreFactory<RedisTokenStore> {
  // One client for the suite, and one for blocking reads (as the server has); every test gets
  // a store with its own key prefix.
  static std::unique_ptr<RedisClient>& Client() {
    static auto* client = new std::unique_ptr<RedisClient>();
    return *client;
  }
  static std::unique_ptr<RedisClient>& BlockingClient() {
    static auto* client = new std::unique_ptr<RedisClient>();
    return *client;
  }
  static void StartClient(int connections, std::unique_ptr<RedisClient>& into) {
    RedisClientOptions options;
    options.address = testing::SharedRedis().address();
    options.connections = connections;
    absl::StatusOr<std::unique_ptr<RedisClient>> client = RedisClient::Start(options);
    ASSERT_TRUE(client.ok()) << client.status();
    into = *std::move(client);
  }
  static void SetUpSuite() {
    StartClient(2, Client());
    StartClient(1, BlockingClient());
  }
  static void TearDownSuite() {
    Client().reset();
    BlockingClient().reset();
  }
  static std::unique_ptr<TokenStore> New(int64_t retention = kRetention) {
    RedisTokenStoreOptions options;
    options.key_prefix = testing::UniqueKeyPrefix();
    options.event_retention = retention;
    return std::make_unique<RedisTokenStore>(*Client(), *BlockingClient(), options);
  }
};

std::string IdOf(int n) { return absl::StrFormat("TKN-%04d-%04d", n / 10000, n % 10000); }

CreateTokenParams CreateParams(const std::string& id,
                               const std::string& account = "ACC-0000-0001") {
  CreateTokenParams params;
  params.token_id = id;
  params.account_id = account;
  params.name = absl::StrCat("name of ", id);
  params.description = "a description with \xC3\xA9 and spaces";
  params.secret_sha256 = std::string(31, '\x01') + std::string(1, '\0');  // binary-safe
  params.actor = "creator";
  return params;
}

TransitionParams Change(const std::string& id, Transition transition, int64_t expected_revision = 0,
                        const std::string& reason = "") {
  TransitionParams params;
  params.token_id = id;
  params.transition = transition;
  params.expected_revision = expected_revision;
  params.reason = reason;
  params.actor = "operator";
  return params;
}

bool SameToken(const Token& a, const Token& b) {
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

#define EXPECT_ERROR(expr, expected_code, expected_reason)       \
  do {                                                           \
    const absl::Status status_ = (expr).status();                \
    EXPECT_EQ(status_.code(), expected_code) << status_;         \
    EXPECT_EQ(ErrorReason(status_), expected_reason) << status_; \
  } while (false)

#define ASSERT_OK_AND_ASSIGN(lhs, expr)            \
  auto lhs##_or = (expr);                          \
  ASSERT_TRUE(lhs##_or.ok()) << lhs##_or.status(); \
  auto lhs = *std::move(lhs##_or)

template <typename Store>
class TokenStoreContractTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { StoreFactory<Store>::SetUpSuite(); }
  static void TearDownTestSuite() { StoreFactory<Store>::TearDownSuite(); }

  TokenStoreContractTest() : store_(StoreFactory<Store>::New()), sync_(*store_) {}

  // The global revision now (served with a listing).
  int64_t Revision() {
    absl::StatusOr<TokenPage> page = sync_.List(ListParams());
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? page->revision : -1;
  }

  // Follows the cursor of `params` to the end; returns the ids in order.
  std::vector<std::string> ListAll(ListParams params) {
    std::vector<std::string> ids;
    for (int pages = 0; pages < 10000; ++pages) {
      absl::StatusOr<TokenPage> page = sync_.List(params);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) break;
      EXPECT_LE(page->tokens.size(), static_cast<size_t>(params.page_size));
      for (const Token& token : page->tokens) ids.push_back(token.id());
      if (page->next_after_id.empty()) break;
      params.after_id = page->next_after_id;
    }
    return ids;
  }

  Token CreateOk(const std::string& id, const std::string& account = "ACC-0000-0001") {
    absl::StatusOr<Token> token = sync_.Create(CreateParams(id, account));
    EXPECT_TRUE(token.ok()) << token.status();
    return token.ok() ? *token : Token();
  }

  // Applies `transition`; returns the token after it.
  Token ApplyOk(const std::string& id, Transition transition) {
    absl::StatusOr<AppliedTransition> applied = sync_.Apply(Change(id, transition));
    EXPECT_TRUE(applied.ok()) << applied.status();
    return applied.ok() ? applied->token : Token();
  }

  // Follows ReadHistory of `id` with pages of `limit` to the end; returns the events in order.
  // Checks every page: at most `limit` events, a full page whenever more follow.
  std::vector<TokenEvent> HistoryAll(SyncStore& sync, const std::string& id, int limit) {
    std::vector<TokenEvent> events;
    int64_t before = 0;
    for (int pages = 0; pages < 10000; ++pages) {
      absl::StatusOr<TokenHistoryPage> page = sync.ReadHistory(id, before, limit);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) break;
      EXPECT_LE(page->events.size(), static_cast<size_t>(limit));
      events.insert(events.end(), page->events.begin(), page->events.end());
      if (!page->more) break;
      EXPECT_EQ(page->events.size(), static_cast<size_t>(limit)) << "a short page with more";
      if (page->events.empty()) break;
      before = page->events.back().token().revision();
    }
    return events;
  }

  std::unique_ptr<TokenStore> store_;
  SyncStore sync_;
};

// The revisions of `events`, in their order.
std::vector<int64_t> RevisionsOf(const std::vector<TokenEvent>& events) {
  std::vector<int64_t> revisions;
  for (const TokenEvent& event : events) revisions.push_back(event.token().revision());
  return revisions;
}

using StoreTypes = ::testing::Types<MemoryTokenStore, RedisTokenStore>;

class StoreTypeNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return std::is_same_v<T, MemoryTokenStore> ? "Memory" : "Redis";
  }
};

TYPED_TEST_SUITE(TokenStoreContractTest, StoreTypes, StoreTypeNames);

TYPED_TEST(TokenStoreContractTest, CreateThenGet) {
  const CreateTokenParams params = CreateParams("TKN-1234-5678", "ACC-1111-2222");
  const absl::Time before = absl::Now() - absl::Seconds(1);
  ASSERT_OK_AND_ASSIGN(created, this->sync_.Create(params));
  EXPECT_EQ(created.id(), params.token_id);
  EXPECT_EQ(created.account_id(), params.account_id);
  EXPECT_EQ(created.name(), params.name);
  EXPECT_EQ(created.description(), params.description);
  EXPECT_EQ(created.secret_sha256(), params.secret_sha256);
  EXPECT_EQ(created.state(), Token::STATE_ACTIVE);
  EXPECT_EQ(created.revision(), 1);
  EXPECT_EQ(created.updated_by(), "creator");
  EXPECT_EQ(created.state_reason(), "");
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(created.update_time(),
                                                                 created.create_time()))
      << "a new token's update_time is its create_time";
  const absl::Time create_time = absl::FromUnixSeconds(created.create_time().seconds()) +
                                 absl::Nanoseconds(created.create_time().nanos());
  EXPECT_GE(create_time, before);
  EXPECT_LE(create_time, absl::Now() + absl::Seconds(1));

  ASSERT_OK_AND_ASSIGN(got, this->sync_.Get("TKN-1234-5678"));
  EXPECT_TRUE(SameToken(got.token, created)) << got.token.DebugString() << created.DebugString();
  EXPECT_EQ(got.revision, 1);

  // Three-group ids are ids too.
  ASSERT_OK_AND_ASSIGN(long_id, this->sync_.Create(CreateParams("TKN-1234-5678-9999")));
  EXPECT_EQ(long_id.revision(), 2);
}

TYPED_TEST(TokenStoreContractTest, GetUnknownIsNotFound) {
  EXPECT_ERROR(this->sync_.Get("TKN-0000-0404"), absl::StatusCode::kNotFound,
               reason::kTokenNotFound);
  this->CreateOk("TKN-0000-0001");
  EXPECT_ERROR(this->sync_.Get("TKN-0000-0404"), absl::StatusCode::kNotFound,
               reason::kTokenNotFound);
}

TYPED_TEST(TokenStoreContractTest, DuplicateIdIsRefusedInEveryStateAndWritesNothing) {
  const std::string id = "TKN-0000-0001";
  const Token created = this->CreateOk(id);
  for (Transition next : {Transition::kDisable, Transition::kDelete}) {
    const int64_t revision = this->Revision();
    CreateTokenParams again = CreateParams(id, "ACC-9999-9999");
    again.name = "other";
    EXPECT_ERROR(this->sync_.Create(again), absl::StatusCode::kAlreadyExists,
                 reason::kTokenAlreadyExists);
    EXPECT_EQ(this->Revision(), revision);
    ASSERT_OK_AND_ASSIGN(events, this->sync_.ReadEvents(revision, 100));
    EXPECT_TRUE(events.empty());
    ASSERT_OK_AND_ASSIGN(got, this->sync_.Get(id));
    EXPECT_EQ(got.token.account_id(), created.account_id());
    EXPECT_EQ(got.token.name(), created.name());
    this->ApplyOk(id, next);
  }
}

TYPED_TEST(TokenStoreContractTest, EveryAllowedTransition) {
  struct Step {
    Transition transition;
    Token::State from;  // the previous_state Apply reports
    Token::State to;
  };
  // ACTIVE -> DISABLED -> ACTIVE -> DELETED, and DISABLED -> DELETED on a second token: both
  // deletes, so previous_state tells which live state a deleted token left.
  const std::vector<std::pair<std::string, std::vector<Step>>> paths = {
      {"TKN-0000-0001",
       {{Transition::kDisable, Token::STATE_ACTIVE, Token::STATE_DISABLED},
        {Transition::kEnable, Token::STATE_DISABLED, Token::STATE_ACTIVE},
        {Transition::kDelete, Token::STATE_ACTIVE, Token::STATE_DELETED}}},
      {"TKN-0000-0002",
       {{Transition::kDisable, Token::STATE_ACTIVE, Token::STATE_DISABLED},
        {Transition::kDelete, Token::STATE_DISABLED, Token::STATE_DELETED}}},
  };
  for (const auto& [id, steps] : paths) {
    Token before = this->CreateOk(id);
    int n = 0;
    for (const Step& step : steps) {
      const std::string reason = absl::StrCat("step ", ++n, " \xE2\x9C\x93");
      ASSERT_OK_AND_ASSIGN(applied, this->sync_.Apply(Change(id, step.transition, 0, reason)));
      EXPECT_EQ(applied.previous_state, step.from);
      const Token& after = applied.token;
      EXPECT_EQ(after.state(), step.to);
      EXPECT_EQ(after.revision(), before.revision() + 1);
      EXPECT_EQ(after.state_reason(), reason);
      EXPECT_EQ(after.updated_by(), "operator");
      EXPECT_GE(after.update_time().seconds(), before.update_time().seconds());
      // Everything else stays.
      Token expected = before;
      expected.set_state(after.state());
      expected.set_revision(after.revision());
      expected.set_state_reason(after.state_reason());
      expected.set_updated_by(after.updated_by());
      *expected.mutable_update_time() = after.update_time();
      EXPECT_TRUE(SameToken(after, expected)) << after.DebugString();
      ASSERT_OK_AND_ASSIGN(got, this->sync_.Get(id));
      EXPECT_TRUE(SameToken(got.token, after));
      before = after;
    }
  }
}

TYPED_TEST(TokenStoreContractTest, RefusalsComeInTheContractsOrderAndWriteNothing) {
  const std::string active = "TKN-0000-0001";
  const std::string disabled = "TKN-0000-0002";
  const std::string deleted = "TKN-0000-0003";
  this->CreateOk(active);
  this->CreateOk(disabled);
  this->CreateOk(deleted);
  this->ApplyOk(disabled, Transition::kDisable);
  this->ApplyOk(deleted, Transition::kDelete);
  constexpr int64_t kWrong = 999;  // never the token's revision
  struct Case {
    std::string id;
    Transition transition;
    int64_t expected_revision;
    absl::StatusCode code;
    const char* reason;
  };
  const std::vector<Case> cases = {
      // NOT_FOUND comes first.
      {"TKN-0000-0404", Transition::kEnable, kWrong, absl::StatusCode::kNotFound,
       reason::kTokenNotFound},
      {"TKN-0000-0404", Transition::kDisable, 0, absl::StatusCode::kNotFound,
       reason::kTokenNotFound},
      {"TKN-0000-0404", Transition::kDelete, 0, absl::StatusCode::kNotFound,
       reason::kTokenNotFound},
      // Then DELETED, whatever the transition and the expected revision.
      {deleted, Transition::kEnable, kWrong, absl::StatusCode::kFailedPrecondition,
       reason::kTokenDeleted},
      {deleted, Transition::kDisable, 0, absl::StatusCode::kFailedPrecondition,
       reason::kTokenDeleted},
      {deleted, Transition::kDelete, 0, absl::StatusCode::kFailedPrecondition,
       reason::kTokenDeleted},
      // Then "already in that state", before the revision check.
      {active, Transition::kEnable, kWrong, absl::StatusCode::kFailedPrecondition,
       reason::kTokenAlreadyActive},
      {active, Transition::kEnable, 0, absl::StatusCode::kFailedPrecondition,
       reason::kTokenAlreadyActive},
      {disabled, Transition::kDisable, kWrong, absl::StatusCode::kFailedPrecondition,
       reason::kTokenAlreadyDisabled},
      {disabled, Transition::kDisable, 0, absl::StatusCode::kFailedPrecondition,
       reason::kTokenAlreadyDisabled},
      // Then the revision.
      {active, Transition::kDisable, kWrong, absl::StatusCode::kAborted, reason::kRevisionMismatch},
      {active, Transition::kDelete, kWrong, absl::StatusCode::kAborted, reason::kRevisionMismatch},
      {disabled, Transition::kEnable, kWrong, absl::StatusCode::kAborted,
       reason::kRevisionMismatch},
      {disabled, Transition::kDelete, kWrong, absl::StatusCode::kAborted,
       reason::kRevisionMismatch},
  };
  std::map<std::string, Token> tokens;
  for (const std::string& id : {active, disabled, deleted}) {
    ASSERT_OK_AND_ASSIGN(got, this->sync_.Get(id));
    tokens[id] = got.token;
  }
  const int64_t revision = this->Revision();
  ASSERT_EQ(revision, 5);
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrCat(c.id, " transition ", static_cast<int>(c.transition),
                              " expected_revision ", c.expected_revision));
    absl::StatusOr<AppliedTransition> result =
        this->sync_.Apply(Change(c.id, c.transition, c.expected_revision, "refused"));
    EXPECT_ERROR(result, c.code, c.reason);
    if (c.code == absl::StatusCode::kAborted) {
      EXPECT_EQ(ErrorInfoOf(result.status()).metadata().at("current_revision"),
                absl::StrCat(tokens[c.id].revision()));
    }
  }
  // Nothing was written: no revision, no event, no token changed.
  EXPECT_EQ(this->Revision(), revision);
  ASSERT_OK_AND_ASSIGN(events, this->sync_.ReadEvents(revision, 100));
  EXPECT_TRUE(events.empty());
  for (const auto& [id, token] : tokens) {
    ASSERT_OK_AND_ASSIGN(got, this->sync_.Get(id));
    EXPECT_TRUE(SameToken(got.token, token)) << got.token.DebugString();
  }
}

TYPED_TEST(TokenStoreContractTest, ExpectedRevisionMatchApplies) {
  const std::string id = "TKN-0000-0001";
  const Token created = this->CreateOk(id);
  this->CreateOk("TKN-0000-0002");  // the global revision moves past the token's
  ASSERT_OK_AND_ASSIGN(disabled,
                       this->sync_.Apply(Change(id, Transition::kDisable, created.revision())));
  EXPECT_EQ(disabled.token.state(), Token::STATE_DISABLED);
  EXPECT_EQ(disabled.token.revision(), 3);
  // The old revision no longer matches.
  absl::StatusOr<AppliedTransition> stale = this->sync_.Apply(Change(id, Transition::kEnable, 1));
  EXPECT_ERROR(stale, absl::StatusCode::kAborted, reason::kRevisionMismatch);
  EXPECT_EQ(ErrorInfoOf(stale.status()).metadata().at("current_revision"), "3");
  ASSERT_OK_AND_ASSIGN(enabled, this->sync_.Apply(Change(id, Transition::kEnable, 3)));
  EXPECT_EQ(enabled.token.revision(), 4);
}

TYPED_TEST(TokenStoreContractTest, EveryChangeTakesTheNextRevisionAndOneEvent) {
  EXPECT_EQ(this->Revision(), 0);
  std::vector<std::pair<TokenEvent::Type, Token>> changes;
  auto record = [&](TokenEvent::Type type, const Token& token) {
    changes.emplace_back(type, token);
    EXPECT_EQ(token.revision(), static_cast<int64_t>(changes.size()));
    EXPECT_EQ(this->Revision(), static_cast<int64_t>(changes.size()));
  };
  for (int i = 1; i <= 3; ++i) record(TokenEvent::TYPE_CREATED, this->CreateOk(IdOf(i)));
  record(TokenEvent::TYPE_DISABLED, this->ApplyOk(IdOf(2), Transition::kDisable));
  record(TokenEvent::TYPE_DISABLED, this->ApplyOk(IdOf(1), Transition::kDisable));
  record(TokenEvent::TYPE_ENABLED, this->ApplyOk(IdOf(2), Transition::kEnable));
  EXPECT_FALSE(this->sync_.Apply(Change(IdOf(2), Transition::kEnable)).ok());  // refused
  record(TokenEvent::TYPE_DELETED, this->ApplyOk(IdOf(3), Transition::kDelete));
  record(TokenEvent::TYPE_DELETED, this->ApplyOk(IdOf(1), Transition::kDelete));

  ASSERT_OK_AND_ASSIGN(events, this->sync_.ReadEvents(0, 100));
  ASSERT_EQ(events.size(), changes.size());
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].type(), changes[i].first) << i;
    EXPECT_TRUE(SameToken(events[i].token(), changes[i].second))
        << events[i].token().DebugString() << " vs " << changes[i].second.DebugString();
  }
  // after_revision and max_count.
  ASSERT_OK_AND_ASSIGN(tail, this->sync_.ReadEvents(5, 100));
  ASSERT_EQ(tail.size(), 3u);
  EXPECT_EQ(tail[0].token().revision(), 6);
  ASSERT_OK_AND_ASSIGN(two, this->sync_.ReadEvents(2, 2));
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].token().revision(), 3);
  EXPECT_EQ(two[1].token().revision(), 4);
  ASSERT_OK_AND_ASSIGN(none, this->sync_.ReadEvents(8, 100));
  EXPECT_TRUE(none.empty());
}

TYPED_TEST(TokenStoreContractTest, EventsAreKeptAsFarAsRetentionReaches) {
  constexpr int kChanges = 250;
  for (int i = 1; i <= kChanges; ++i) this->CreateOk(IdOf(i));
  ASSERT_OK_AND_ASSIGN(events, this->sync_.ReadEvents(0, 1000));
  // At least the newest kRetention events, contiguous up to the newest; the oldest are gone
  // (Redis trims approximately, whole stream nodes at a time).
  ASSERT_GE(events.size(), static_cast<size_t>(kRetention));
  EXPECT_LT(events.size(), static_cast<size_t>(kChanges));
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].token().revision(),
              kChanges - static_cast<int64_t>(events.size()) + 1 + static_cast<int64_t>(i));
  }
}

TYPED_TEST(TokenStoreContractTest, EpochIsMadeByTheFirstChangeAndKept) {
  ASSERT_OK_AND_ASSIGN(empty, this->sync_.List(ListParams()));
  EXPECT_EQ(empty.epoch, "");
  EXPECT_EQ(empty.revision, 0);
  EXPECT_TRUE(empty.tokens.empty());
  EXPECT_TRUE(empty.next_after_id.empty());
  this->CreateOk(IdOf(1));
  ASSERT_OK_AND_ASSIGN(first, this->sync_.List(ListParams()));
  EXPECT_FALSE(first.epoch.empty());
  this->ApplyOk(IdOf(1), Transition::kDisable);
  ASSERT_OK_AND_ASSIGN(second, this->sync_.List(ListParams()));
  EXPECT_EQ(second.epoch, first.epoch);
  // Another, empty dataset makes another epoch.
  std::unique_ptr<TokenStore> other = StoreFactory<TypeParam>::New();
  SyncStore other_sync(*other);
  ASSERT_TRUE(other_sync.Create(CreateParams(IdOf(1))).ok());
  ASSERT_OK_AND_ASSIGN(other_page, other_sync.List(ListParams()));
  EXPECT_FALSE(other_page.epoch.empty());
  EXPECT_NE(other_page.epoch, first.epoch);
}

TYPED_TEST(TokenStoreContractTest, ListPagesInIdOrder) {
  std::vector<std::string> ids;
  // Created out of order; three-group ids sort among the others by their characters.
  for (int n : {17, 3, 250, 9, 1, 120, 44, 5, 88, 2}) {
    ids.push_back(IdOf(n));
    this->CreateOk(ids.back());
  }
  ids.push_back("TKN-0000-0009-0001");
  this->CreateOk(ids.back());
  std::sort(ids.begin(), ids.end());
  for (int page_size : {1, 3, 4, 11, 1000}) {
    SCOPED_TRACE(page_size);
    ListParams params;
    params.page_size = page_size;
    EXPECT_EQ(this->ListAll(params), ids);
  }
  // The first page of 4 holds the 4 smallest ids, at the revision it was served at.
  ListParams params;
  params.page_size = 4;
  ASSERT_OK_AND_ASSIGN(page, this->sync_.List(params));
  EXPECT_EQ(page.revision, 11);
  ASSERT_FALSE(page.next_after_id.empty());
  std::vector<std::string> first;
  for (const Token& token : page.tokens) {
    first.push_back(token.id());
    EXPECT_EQ(token.secret_sha256().size(), 32u);  // whole tokens; the service strips this
  }
  EXPECT_EQ(first, std::vector<std::string>(ids.begin(), ids.begin() + first.size()));
  // A cursor is exclusive.
  params.after_id = ids[5];
  ASSERT_OK_AND_ASSIGN(after, this->sync_.List(params));
  ASSERT_FALSE(after.tokens.empty());
  EXPECT_EQ(after.tokens.front().id(), ids[6]);
}

TYPED_TEST(TokenStoreContractTest, ListFilters) {
  // account 1: a1 active, a2 disabled, a3 deleted; account 2: b1 active, b2 deleted.
  const std::string a1 = IdOf(11), a2 = IdOf(12), a3 = IdOf(13), b1 = IdOf(21), b2 = IdOf(22);
  for (const std::string& id : {a1, a2, a3}) this->CreateOk(id, "ACC-0000-0001");
  for (const std::string& id : {b1, b2}) this->CreateOk(id, "ACC-0000-0002");
  this->ApplyOk(a2, Transition::kDisable);
  this->ApplyOk(a3, Transition::kDelete);
  this->ApplyOk(b2, Transition::kDelete);
  struct Case {
    Token::State state;
    std::string account;
    bool show_deleted;
    std::vector<std::string> ids;
  };
  const std::vector<Case> cases = {
      {Token::STATE_UNSPECIFIED, "", false, {a1, a2, b1}},
      {Token::STATE_UNSPECIFIED, "", true, {a1, a2, a3, b1, b2}},
      {Token::STATE_ACTIVE, "", false, {a1, b1}},
      {Token::STATE_ACTIVE, "", true, {a1, b1}},
      {Token::STATE_DISABLED, "", false, {a2}},
      {Token::STATE_DELETED, "", false, {a3, b2}},
      {Token::STATE_UNSPECIFIED, "ACC-0000-0001", false, {a1, a2}},
      {Token::STATE_UNSPECIFIED, "ACC-0000-0001", true, {a1, a2, a3}},
      {Token::STATE_DELETED, "ACC-0000-0002", false, {b2}},
      {Token::STATE_DISABLED, "ACC-0000-0002", false, {}},
      {Token::STATE_UNSPECIFIED, "ACC-0000-0003", true, {}},
  };
  for (const Case& c : cases) {
    for (int page_size : {1, 2, 100}) {
      SCOPED_TRACE(absl::StrCat("state ", c.state, " account ", c.account, " show_deleted ",
                                c.show_deleted, " page_size ", page_size));
      ListParams params;
      params.state = c.state;
      params.account_id = c.account;
      params.show_deleted = c.show_deleted;
      params.page_size = page_size;
      EXPECT_EQ(this->ListAll(params), c.ids);
    }
  }
}

TYPED_TEST(TokenStoreContractTest, ListingWhileTokensComeAndGo) {
  // 40 tokens exist for the whole listing; between pages, new tokens are created among them
  // and others (made for the purpose) are deleted.
  std::set<std::string> stable;
  std::vector<std::string> doomed;
  for (int i = 0; i < 40; ++i) {
    stable.insert(IdOf(100 * i + 50));
    this->CreateOk(IdOf(100 * i + 50));
    doomed.push_back(IdOf(100 * i + 70));
    this->CreateOk(doomed.back());
  }
  std::set<std::string> used(stable.begin(), stable.end());
  used.insert(doomed.begin(), doomed.end());
  // A new id in the block of 100 ids numbered `block`, never one used before.
  auto fresh = [&](int block) {
    for (int n = 100 * (block % 40);; ++n) {
      if (used.insert(IdOf(n)).second) return IdOf(n);
    }
  };
  ListParams params;
  params.page_size = 3;
  std::vector<std::string> seen;
  for (int pages = 0; pages < 1000; ++pages) {
    ASSERT_OK_AND_ASSIGN(page, this->sync_.List(params));
    for (const Token& token : page.tokens) seen.push_back(token.id());
    if (page.next_after_id.empty()) break;
    params.after_id = page.next_after_id;
    // A new token behind the cursor, one ahead of it, and a deletion.
    this->CreateOk(fresh(pages / 3));
    this->CreateOk(fresh(pages / 3 + 20));
    if (!doomed.empty()) {
      this->ApplyOk(doomed.back(), Transition::kDelete);
      doomed.pop_back();
    }
  }
  std::map<std::string, int> count;
  for (const std::string& id : seen) ++count[id];
  for (const auto& [id, n] : count) EXPECT_EQ(n, 1) << id << " listed " << n << " times";
  for (const std::string& id : stable) EXPECT_EQ(count[id], 1) << id << " missing";
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
}

TYPED_TEST(TokenStoreContractTest, ScanReadsEveryTokenWithTheDeletedInIdOrder) {
  ASSERT_OK_AND_ASSIGN(empty, this->sync_.Scan({.limit = 10}));
  EXPECT_TRUE(empty.tokens.empty());
  EXPECT_TRUE(empty.next_after_id.empty());
  EXPECT_EQ(empty.revision, 0);
  std::vector<std::string> ids;
  for (int n : {17, 3, 250, 9, 1, 120, 44, 5, 88, 2}) {
    ids.push_back(IdOf(n));
    this->CreateOk(ids.back());
  }
  this->ApplyOk(IdOf(9), Transition::kDisable);
  this->ApplyOk(IdOf(44), Transition::kDelete);
  std::sort(ids.begin(), ids.end());
  ASSERT_OK_AND_ASSIGN(head, this->sync_.ReadHead());
  for (int limit : {1, 3, 10, 1000}) {
    SCOPED_TRACE(limit);
    std::vector<std::string> seen;
    ScanParams params;
    params.limit = limit;
    for (int pages = 0; pages < 100; ++pages) {
      ASSERT_OK_AND_ASSIGN(page, this->sync_.Scan(params));
      EXPECT_EQ(page.revision, head.revision);
      EXPECT_EQ(page.epoch, head.epoch);
      EXPECT_EQ(page.chain, head.chain);
      ASSERT_LE(page.tokens.size(), static_cast<size_t>(limit));
      for (const Token& token : page.tokens) {
        seen.push_back(token.id());
        ASSERT_OK_AND_ASSIGN(stored, this->sync_.Get(token.id()));
        EXPECT_TRUE(SameToken(token, stored.token)) << token.DebugString();  // whole records
      }
      if (page.next_after_id.empty()) break;
      ASSERT_EQ(page.tokens.size(), static_cast<size_t>(limit)) << "a short page with more";
      EXPECT_EQ(page.next_after_id, page.tokens.back().id());
      params.after_id = page.next_after_id;
    }
    EXPECT_EQ(seen, ids);
  }
  // A cursor is exclusive, a last id inclusive; a limit below 1 reads one token; past the last
  // token, nothing.
  ASSERT_OK_AND_ASSIGN(one, this->sync_.Scan({.after_id = ids[4], .limit = 0}));
  ASSERT_EQ(one.tokens.size(), 1u);
  EXPECT_EQ(one.tokens[0].id(), ids[5]);
  EXPECT_EQ(one.next_after_id, ids[5]);
  ASSERT_OK_AND_ASSIGN(range, this->sync_.Scan({.after_id = ids[4], .last_id = ids[6]}));
  ASSERT_EQ(range.tokens.size(), 2u);
  EXPECT_EQ(range.tokens[1].id(), ids[6]);
  EXPECT_TRUE(range.next_after_id.empty());
  ASSERT_OK_AND_ASSIGN(past, this->sync_.Scan({.after_id = ids.back(), .limit = 10}));
  EXPECT_TRUE(past.tokens.empty());
  EXPECT_TRUE(past.next_after_id.empty());
}

TYPED_TEST(TokenStoreContractTest, SplitIdsCutTheTokensIntoRangesOfAboutEqualSize) {
  ASSERT_OK_AND_ASSIGN(none, this->sync_.SplitIds(4));
  EXPECT_TRUE(none.empty());
  std::vector<std::string> ids;
  for (int n : {7, 3, 10, 1, 6, 2, 9, 4, 8, 5}) {
    ids.push_back(IdOf(n));
    this->CreateOk(ids.back());
  }
  this->ApplyOk(IdOf(4), Transition::kDelete);  // deleted tokens count too
  std::sort(ids.begin(), ids.end());
  ASSERT_OK_AND_ASSIGN(whole, this->sync_.SplitIds(1));
  EXPECT_TRUE(whole.empty());
  // 10 tokens in 4 parts: the ends of the first three are the tokens at ranks 1, 4 and 6.
  ASSERT_OK_AND_ASSIGN(cuts, this->sync_.SplitIds(4));
  EXPECT_EQ(cuts, (std::vector<std::string>{ids[1], ids[4], ids[6]}));
  // The ranges they cut, scanned one after the other, hold every token once, in order.
  std::vector<std::string> seen;
  for (size_t part = 0; part <= cuts.size(); ++part) {
    ScanParams params;
    params.after_id = part == 0 ? "" : cuts[part - 1];
    params.last_id = part < cuts.size() ? cuts[part] : "";
    params.limit = 2;
    for (int pages = 0; pages < 100; ++pages) {
      ASSERT_OK_AND_ASSIGN(page, this->sync_.Scan(params));
      for (const Token& token : page.tokens) seen.push_back(token.id());
      if (page.next_after_id.empty()) break;
      params.after_id = page.next_after_id;
    }
  }
  EXPECT_EQ(seen, ids);
  // More parts than tokens: every token but the last ends one part, none twice; at most
  // kMaxScanParts parts.
  ASSERT_OK_AND_ASSIGN(many, this->sync_.SplitIds(kMaxScanParts));
  EXPECT_EQ(many, std::vector<std::string>(ids.begin(), ids.begin() + 9));
  ASSERT_OK_AND_ASSIGN(clamped, this->sync_.SplitIds(1000));
  EXPECT_EQ(clamped, many);
}

TYPED_TEST(TokenStoreContractTest, ReadHeadIsTheRevisionAndEpoch) {
  ASSERT_OK_AND_ASSIGN(empty, this->sync_.ReadHead());
  EXPECT_EQ(empty.revision, 0);
  EXPECT_EQ(empty.epoch, "");
  EXPECT_EQ(empty.chain, "");
  this->CreateOk(IdOf(1));
  this->ApplyOk(IdOf(1), Transition::kDisable);
  ASSERT_OK_AND_ASSIGN(head, this->sync_.ReadHead());
  ASSERT_OK_AND_ASSIGN(page, this->sync_.List(ListParams()));
  EXPECT_EQ(head.revision, 2);
  EXPECT_FALSE(head.epoch.empty());
  EXPECT_EQ(head.epoch, page.epoch);
}

TYPED_TEST(TokenStoreContractTest, EveryChangeCarriesAHistoryMarkChainedFromThePrevious) {
  this->CreateOk(IdOf(1));
  this->CreateOk(IdOf(2));
  this->ApplyOk(IdOf(1), Transition::kDisable);
  ASSERT_OK_AND_ASSIGN(events, this->sync_.ReadEvents(0, 100));
  ASSERT_EQ(events.size(), 3u);
  std::set<std::string> marks;
  for (const TokenEvent& event : events) {
    EXPECT_EQ(event.chain().size(), 16u) << event.chain();
    EXPECT_EQ(event.chain().find_first_not_of("0123456789abcdef"), std::string::npos);
    marks.insert(event.chain());
  }
  EXPECT_EQ(marks.size(), 3u) << "marks repeat";
  // The head, a listing and every blocking read agree on the marks.
  ASSERT_OK_AND_ASSIGN(head, this->sync_.ReadHead());
  EXPECT_EQ(head.chain, events.back().chain());
  ASSERT_OK_AND_ASSIGN(page, this->sync_.List(ListParams()));
  EXPECT_EQ(page.chain, events.back().chain());
  ASSERT_OK_AND_ASSIGN(from_start, this->sync_.WaitEvents(0, 100, absl::Seconds(5)));
  EXPECT_EQ(from_start.prev_chain, "") << "the first change follows the empty history";
  ASSERT_OK_AND_ASSIGN(from_one, this->sync_.WaitEvents(1, 100, absl::Seconds(5)));
  ASSERT_EQ(from_one.events.size(), 2u);
  EXPECT_EQ(from_one.prev_chain, events[0].chain());
  EXPECT_EQ(from_one.events[0].chain(), events[1].chain());
  EXPECT_EQ(from_one.head.chain, events.back().chain());
}

TYPED_TEST(TokenStoreContractTest, TheSameChangesInAnotherDatasetMakeOtherMarks) {
  // Two datasets that reach the same revisions with the same changes (as a store restored
  // older and changed again does) never share a mark: each change brings its own nonce.
  std::unique_ptr<TokenStore> other = StoreFactory<TypeParam>::New();
  SyncStore other_sync(*other);
  this->CreateOk(IdOf(1));
  ASSERT_TRUE(other_sync.Create(CreateParams(IdOf(1))).ok());
  ASSERT_OK_AND_ASSIGN(mine, this->sync_.ReadHead());
  ASSERT_OK_AND_ASSIGN(theirs, other_sync.ReadHead());
  EXPECT_EQ(mine.revision, theirs.revision);
  EXPECT_NE(mine.chain, theirs.chain);
}

TYPED_TEST(TokenStoreContractTest, WaitEventsReturnsPendingEventsAtOnce) {
  for (int i = 1; i <= 5; ++i) this->CreateOk(IdOf(i));
  const absl::Time start = absl::Now();
  ASSERT_OK_AND_ASSIGN(batch, this->sync_.WaitEvents(1, 3, absl::Seconds(30)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10)) << "did not return at once";
  ASSERT_EQ(batch.events.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(batch.events[i].token().revision(), 2 + i);
    EXPECT_EQ(batch.events[i].type(), TokenEvent::TYPE_CREATED);
    EXPECT_EQ(batch.events[i].token().id(), IdOf(2 + i));
  }
  EXPECT_EQ(batch.head.revision, 5);
  ASSERT_OK_AND_ASSIGN(head, this->sync_.ReadHead());
  EXPECT_EQ(batch.head.epoch, head.epoch);
}

TYPED_TEST(TokenStoreContractTest, WaitEventsWithNothingNewReturnsTheHeadAfterBlock) {
  this->CreateOk(IdOf(1));
  const absl::Time start = absl::Now();
  ASSERT_OK_AND_ASSIGN(batch, this->sync_.WaitEvents(1, 100, absl::Milliseconds(200)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(150));
  EXPECT_TRUE(batch.events.empty());
  EXPECT_EQ(batch.head.revision, 1);
  EXPECT_FALSE(batch.head.epoch.empty());
  // An empty dataset: no events, the empty head.
  std::unique_ptr<TokenStore> other = StoreFactory<TypeParam>::New();
  ASSERT_OK_AND_ASSIGN(none, SyncStore(*other).WaitEvents(0, 100, absl::Milliseconds(50)));
  EXPECT_TRUE(none.events.empty());
  EXPECT_EQ(none.head.revision, 0);
  EXPECT_EQ(none.head.epoch, "");
}

TYPED_TEST(TokenStoreContractTest, WaitEventsWakesOnAChange) {
  this->CreateOk(IdOf(1));
  absl::StatusOr<EventBatch> batch;
  absl::Duration waited;
  // The change is made while (or, on a slow machine, before) the read waits: either way it
  // must come back with it, long before the 30 s block.
  std::thread reader([&] {
    const absl::Time start = absl::Now();
    batch = this->sync_.WaitEvents(1, 100, absl::Seconds(30));
    waited = absl::Now() - start;
  });
  const Token disabled = this->ApplyOk(IdOf(1), Transition::kDisable);
  reader.join();
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_LT(waited, absl::Seconds(10));
  ASSERT_EQ(batch->events.size(), 1u);
  EXPECT_EQ(batch->events[0].type(), TokenEvent::TYPE_DISABLED);
  EXPECT_TRUE(SameToken(batch->events[0].token(), disabled));
  EXPECT_GE(batch->head.revision, 2);
}

TYPED_TEST(TokenStoreContractTest, HistoryIsTheTokensChangesNewestFirst) {
  const std::string id = IdOf(1);
  const std::string other = IdOf(2);
  // The token's changes, as the store returned them, interleaved with another token's.
  std::vector<std::pair<TokenEvent::Type, Token>> changes;
  changes.emplace_back(TokenEvent::TYPE_CREATED, this->CreateOk(id));
  this->CreateOk(other);
  const std::vector<std::tuple<Transition, TokenEvent::Type, std::string>> steps = {
      {Transition::kDisable, TokenEvent::TYPE_DISABLED, "leaked in a log"},
      {Transition::kEnable, TokenEvent::TYPE_ENABLED, "rotated \xE2\x9C\x93"},
      {Transition::kDelete, TokenEvent::TYPE_DELETED, ""},
  };
  for (const auto& [transition, type, reason] : steps) {
    this->ApplyOk(other, transition == Transition::kDelete ? Transition::kDisable : transition);
    ASSERT_OK_AND_ASSIGN(applied, this->sync_.Apply(Change(id, transition, 0, reason)));
    changes.emplace_back(type, applied.token);
  }
  std::reverse(changes.begin(), changes.end());

  ASSERT_OK_AND_ASSIGN(page, this->sync_.ReadHistory(id, 0, 100));
  EXPECT_FALSE(page.more);
  ASSERT_EQ(page.events.size(), changes.size());
  for (size_t i = 0; i < changes.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(page.events[i].type(), changes[i].first);
    EXPECT_TRUE(SameToken(page.events[i].token(), changes[i].second))
        << page.events[i].token().DebugString() << " vs " << changes[i].second.DebugString();
  }
  // The created event carries its principal; the others theirs and their reasons.
  const Token& created = page.events.back().token();
  EXPECT_EQ(created.updated_by(), "creator");
  EXPECT_EQ(created.state(), Token::STATE_ACTIVE);
  EXPECT_EQ(created.state_reason(), "");
  EXPECT_EQ(created.secret_sha256().size(), 32u);  // whole tokens; the service strips this
  EXPECT_EQ(page.events[0].token().updated_by(), "operator");
  EXPECT_EQ(page.events[2].token().state_reason(), "leaked in a log");
  EXPECT_EQ(page.events[1].token().state_reason(), "rotated \xE2\x9C\x93");
  EXPECT_EQ(RevisionsOf(page.events), (std::vector<int64_t>{8, 6, 4, 1}));

  // before_revision is exclusive; a limit cuts the page and says that more follow.
  ASSERT_OK_AND_ASSIGN(below, this->sync_.ReadHistory(id, 6, 100));
  EXPECT_EQ(RevisionsOf(below.events), (std::vector<int64_t>{4, 1}));
  EXPECT_FALSE(below.more);
  ASSERT_OK_AND_ASSIGN(between, this->sync_.ReadHistory(id, 5, 1));
  EXPECT_EQ(RevisionsOf(between.events), (std::vector<int64_t>{4}));
  EXPECT_TRUE(between.more);
  ASSERT_OK_AND_ASSIGN(oldest, this->sync_.ReadHistory(id, 1, 100));
  EXPECT_TRUE(oldest.events.empty());
  EXPECT_FALSE(oldest.more);

  // The other token's history is its own.
  ASSERT_OK_AND_ASSIGN(others, this->sync_.ReadHistory(other, 0, 100));
  EXPECT_EQ(RevisionsOf(others.events), (std::vector<int64_t>{7, 5, 3, 2}));
  for (const TokenEvent& event : others.events) EXPECT_EQ(event.token().id(), other);
}

TYPED_TEST(TokenStoreContractTest, HistoryOfAnUnknownTokenIsNotFound) {
  EXPECT_ERROR(this->sync_.ReadHistory(IdOf(404), 0, 10), absl::StatusCode::kNotFound,
               reason::kTokenNotFound);
  this->CreateOk(IdOf(1));
  EXPECT_ERROR(this->sync_.ReadHistory(IdOf(404), 0, 10), absl::StatusCode::kNotFound,
               reason::kTokenNotFound);
  EXPECT_ERROR(this->sync_.ReadHistory(IdOf(404), 5, 10), absl::StatusCode::kNotFound,
               reason::kTokenNotFound);
}

TYPED_TEST(TokenStoreContractTest, HistoryPagesWithoutGapOrDuplicate) {
  std::unique_ptr<TokenStore> store = StoreFactory<TypeParam>::New(1000000);
  SyncStore sync(*store);
  const std::string id = IdOf(1);
  ASSERT_TRUE(sync.Create(CreateParams(id)).ok());
  constexpr int kTransitions = 24;  // 25 changes of the token, among 24 of others
  for (int i = 0; i < kTransitions; ++i) {
    ASSERT_TRUE(sync.Create(CreateParams(IdOf(100 + i))).ok());
    ASSERT_TRUE(
        sync.Apply(Change(id, i % 2 == 0 ? Transition::kDisable : Transition::kEnable)).ok());
  }
  ASSERT_OK_AND_ASSIGN(whole, sync.ReadHistory(id, 0, 1000));
  EXPECT_FALSE(whole.more);
  ASSERT_EQ(whole.events.size(), static_cast<size_t>(kTransitions + 1));
  std::vector<int64_t> expected;
  for (int i = kTransitions; i >= 1; --i) expected.push_back(1 + 2 * i);
  expected.push_back(1);
  EXPECT_EQ(RevisionsOf(whole.events), expected);
  for (const TokenEvent& event : whole.events) EXPECT_EQ(event.token().id(), id);
  for (int limit : {1, 2, 3, 7, 24, 25, 26, 1000}) {
    SCOPED_TRACE(limit);
    EXPECT_EQ(RevisionsOf(this->HistoryAll(sync, id, limit)), expected);
  }
  // A page that ends exactly at the oldest change says so.
  ASSERT_OK_AND_ASSIGN(exact, sync.ReadHistory(id, 0, kTransitions + 1));
  EXPECT_FALSE(exact.more);
}

TYPED_TEST(TokenStoreContractTest, HistoryEndsAtTheRetention) {
  // kRetention events are kept (Redis keeps more: MAXLEN ~ trims whole stream nodes).
  const std::string id = IdOf(1);
  this->CreateOk(id);
  constexpr int kRounds = 150;
  for (int i = 0; i < kRounds; ++i) {
    this->CreateOk(IdOf(100 + i));
    this->ApplyOk(id, i % 2 == 0 ? Transition::kDisable : Transition::kEnable);
  }
  // The history is exactly the token's events the stream still holds, newest first.
  ASSERT_OK_AND_ASSIGN(retained, this->sync_.ReadEvents(0, 1000));
  ASSERT_LT(retained.size(), static_cast<size_t>(2 * kRounds + 1)) << "nothing was trimmed";
  std::vector<int64_t> expected;
  for (auto it = retained.rbegin(); it != retained.rend(); ++it) {
    if (it->token().id() == id) expected.push_back(it->token().revision());
  }
  ASSERT_GE(expected.size(), static_cast<size_t>(kRetention / 2));
  EXPECT_LT(expected.size(), static_cast<size_t>(kRounds + 1));
  for (int limit : {1, 3, 1000}) {
    SCOPED_TRACE(limit);
    EXPECT_EQ(RevisionsOf(this->HistoryAll(this->sync_, id, limit)), expected);
  }
  // Reading on from below the retention finds nothing more.
  ASSERT_OK_AND_ASSIGN(beyond, this->sync_.ReadHistory(id, expected.back(), 1000));
  EXPECT_TRUE(beyond.events.empty());
  EXPECT_FALSE(beyond.more);
}

TYPED_TEST(TokenStoreContractTest, HistoryKeepsTheNewestChangesOfEachToken) {
  std::unique_ptr<TokenStore> store = StoreFactory<TypeParam>::New(1000000);
  SyncStore sync(*store);
  const std::string id = IdOf(1);
  ASSERT_TRUE(sync.Create(CreateParams(id)).ok());
  constexpr int kChanges = kMaxHistoryPerToken + 2;  // revisions 1..kChanges
  for (int i = 1; i < kChanges; ++i) {
    ASSERT_TRUE(
        sync.Apply(Change(id, i % 2 == 1 ? Transition::kDisable : Transition::kEnable)).ok());
  }
  ASSERT_OK_AND_ASSIGN(page, sync.ReadHistory(id, 0, kMaxHistoryPerToken));
  EXPECT_FALSE(page.more) << "the oldest changes left the token's history";
  ASSERT_EQ(page.events.size(), static_cast<size_t>(kMaxHistoryPerToken));
  EXPECT_EQ(page.events.front().token().revision(), kChanges);
  EXPECT_EQ(page.events.back().token().revision(), kChanges - kMaxHistoryPerToken + 1);
  ASSERT_OK_AND_ASSIGN(older, sync.ReadHistory(id, page.events.back().token().revision(), 10));
  EXPECT_TRUE(older.events.empty());
}

}  // namespace
}  // namespace tokenstatus
