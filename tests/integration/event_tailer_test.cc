// EventTailer (server/mirror/event_tailer.h) on a real Redis: the initial load equals the store,
// changes follow, and a new epoch (FLUSHALL), a trimmed stream, a store restored from an older
// copy and changed again, and a Redis restart are all recovered from by themselves.

#include "server/mirror/event_tailer.h"

#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "core/status_util.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "server/mirror/token_mirror.h"
#include "server/redis/redis_client.h"
#include "server/store/memory_token_store.h"
#include "server/store/redis_scripts.h"
#include "server/store/redis_token_store.h"
#include "tests/testing/redis_instance.h"
#include "tests/testing/sync_store.h"

namespace tokenstatus {
namespace {

constexpr absl::Duration kPatience = absl::Seconds(30);

std::string IdOf(int n) { return absl::StrFormat("TKN-%04d-%04d", n / 10000, n % 10000); }

absl::Time Deadline() { return absl::Now() + absl::Seconds(5); }

// Counts the mirror's resets and remembers the last epoch.
class ResetListener : public MirrorListener {
 public:
  void OnChanges(absl::Span<const std::shared_ptr<const TokenEvent>> events, int64_t revision,
                 const std::string& epoch) override {}
  void OnReset(const std::string& epoch, int64_t revision, const std::string& /*chain*/) override {
    absl::MutexLock lock(&mu_);
    ++resets_;
    epoch_ = epoch;
  }
  int resets() {
    absl::MutexLock lock(&mu_);
    return resets_;
  }
  // Waits until a reset to `epoch` (any epoch if empty) has happened; false on timeout.
  bool WaitForReset(const std::string& epoch) {
    absl::MutexLock lock(&mu_);
    auto reset = [this, &epoch]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return resets_ > 0 && (epoch.empty() || epoch_ == epoch);
    };
    return mu_.AwaitWithTimeout(absl::Condition(&reset), kPatience);
  }

 private:
  absl::Mutex mu_;
  int resets_ ABSL_GUARDED_BY(mu_) = 0;
  std::string epoch_ ABSL_GUARDED_BY(mu_);
};

// Clients, a store on its own key prefix, a mirror and its tailer, as the server has them.
class Replica {
 public:
  explicit Replica(const std::string& address, const std::string& key_prefix) {
    client_ = StartClient(address, 2);
    blocking_client_ = StartClient(address, 1);
    RedisTokenStoreOptions options;
    options.key_prefix = key_prefix;
    store_ = std::make_unique<RedisTokenStore>(*client_, *blocking_client_, options);
    mirror_.SetListener(&listener_);
  }
  ~Replica() {
    tailer_.reset();
    mirror_.SetListener(nullptr);
  }

  void StartTailer() {
    EventTailerOptions options;
    options.block = absl::Milliseconds(100);  // the tests stop tailers often
    options.retry_max = absl::Milliseconds(500);
    options.load_page_size = 500;  // loads of several pages
    tailer_ = std::make_unique<EventTailer>(*store_, mirror_, options);
    tailer_->Start();
  }

  Token Create(int n, const std::string& account = "ACC-0000-0001") {
    CreateTokenParams params;
    params.token_id = IdOf(n);
    params.account_id = account;
    params.name = absl::StrCat("token ", n);
    params.secret_sha256 = std::string(32, '\x07');
    params.actor = "test";
    absl::StatusOr<Token> token = testing::AwaitStore<Token>(
        [&](StoreCallback<Token> done) { store_->Create(params, Deadline(), std::move(done)); });
    EXPECT_TRUE(token.ok()) << token.status();
    return token.ok() ? *token : Token();
  }
  absl::Status TryChange(int n, Transition transition) {
    TransitionParams params;
    params.token_id = IdOf(n);
    params.transition = transition;
    params.actor = "test";
    return testing::AwaitStore<AppliedTransition>([&](StoreCallback<AppliedTransition> done) {
             store_->Apply(params, Deadline(), std::move(done));
           })
        .status();
  }
  void Change(int n, Transition transition) {
    const absl::Status status = TryChange(n, transition);
    EXPECT_TRUE(status.ok()) << status;
  }
  StoreHead Head() {
    absl::StatusOr<StoreHead> head = testing::AwaitStore<StoreHead>(
        [&](StoreCallback<StoreHead> done) { store_->ReadHead(Deadline(), std::move(done)); });
    EXPECT_TRUE(head.ok()) << head.status();
    return head.ok() ? *head : StoreHead();
  }

  // Waits until the mirror has reached the store's head revision.
  absl::Status WaitForHead() {
    const int64_t revision = Head().revision;
    absl::Notification done;
    absl::Status status;
    mirror_.WhenRevisionReached(revision, absl::Now() + kPatience, [&](absl::Status s) {
      status = std::move(s);
      done.Notify();
    });
    done.WaitForNotification();
    return status;
  }

  // The mirror holds exactly the store's tokens, at its head revision and epoch.
  void ExpectMirrorEqualsStore() {
    std::vector<Token> want;
    ListParams params;
    params.page_size = 1000;
    params.show_deleted = true;
    while (true) {
      absl::StatusOr<TokenPage> page =
          testing::AwaitStore<TokenPage>([&](StoreCallback<TokenPage> done) {
            store_->List(params, Deadline(), std::move(done));
          });
      ASSERT_TRUE(page.ok()) << page.status();
      for (Token& token : page->tokens) want.push_back(std::move(token));
      if (page->next_after_id.empty()) break;
      params.after_id = page->next_after_id;
    }
    const StoreHead head = Head();
    std::vector<Token> got;
    ASSERT_TRUE(mirror_
                    .ReadConsistent([&](const MirrorView& view) {
                      EXPECT_EQ(view.revision(), head.revision);
                      EXPECT_EQ(view.epoch(), head.epoch);
                      view.ForEachToken("", [&](const Token& token) { got.push_back(token); });
                    })
                    .ok());
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(got[i], want[i]))
          << got[i].DebugString() << " vs " << want[i].DebugString();
    }
  }

  TokenMirror& mirror() { return mirror_; }
  TokenStore& store() { return *store_; }
  ResetListener& listener() { return listener_; }

 private:
  static std::unique_ptr<RedisClient> StartClient(const std::string& address, int connections) {
    RedisClientOptions options;
    options.address = address;
    options.connections = connections;
    absl::StatusOr<std::unique_ptr<RedisClient>> client = RedisClient::Start(options);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  std::unique_ptr<RedisClient> client_;
  std::unique_ptr<RedisClient> blocking_client_;
  std::unique_ptr<RedisTokenStore> store_;
  ResetListener listener_;  // outlives the mirror's use of it (see the destructor)
  TokenMirror mirror_;
  std::unique_ptr<EventTailer> tailer_;
};

TEST(EventTailerTest, LoadsEveryTokenThenFollowsChanges) {
  Replica replica(testing::SharedRedis().address(), testing::UniqueKeyPrefix());
  // More than one page of the load, in several states and accounts.
  for (int n = 1; n <= 2100; ++n) replica.Create(n, n % 3 == 0 ? "ACC-0000-0003" : "ACC-0000-0001");
  for (int n = 1; n <= 2100; n += 7) replica.Change(n, Transition::kDisable);
  for (int n = 1; n <= 2100; n += 11) replica.Change(n, Transition::kDelete);
  EXPECT_FALSE(replica.mirror().loaded());
  // Changes go on while the mirror loads (the load replays them) and after it (followed): of
  // tokens the load's pages may be reading, and of new ones.
  std::thread writer([&replica] {
    for (int n = 2; n <= 2100; n += 13) {
      if (n % 7 != 1 && n % 11 != 1) replica.Change(n, Transition::kDisable);
    }
    for (int n = 3000; n < 3100; ++n) {
      replica.Create(n, "ACC-0000-0005");
      replica.Change(n, Transition::kDisable);
      if (n % 2 == 0) replica.Change(n, Transition::kEnable);
      if (n % 5 == 0) replica.Change(n, Transition::kDelete);
    }
  });
  replica.StartTailer();
  writer.join();
  ASSERT_TRUE(replica.WaitForHead().ok());
  EXPECT_TRUE(replica.mirror().loaded());
  replica.ExpectMirrorEqualsStore();

  // And after everything settled, a change is followed.
  replica.Change(3001, Transition::kEnable);
  ASSERT_TRUE(replica.WaitForHead().ok());
  replica.ExpectMirrorEqualsStore();
  absl::StatusOr<TokenAtRevision> got = replica.mirror().Get(IdOf(3001));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->token.state(), Token::STATE_ACTIVE);
}

TEST(EventTailerTest, AnEmptyStoreLoadsAndThenTakesTheFirstEpoch) {
  Replica replica(testing::SharedRedis().address(), testing::UniqueKeyPrefix());
  replica.StartTailer();
  ASSERT_TRUE(replica.WaitForHead().ok());
  EXPECT_EQ(replica.mirror().epoch(), "");
  replica.Create(1);
  // The first change makes the epoch: the mirror adopts it with the change, without a reset
  // (nothing was lost).
  ASSERT_TRUE(replica.WaitForHead().ok());
  EXPECT_EQ(replica.mirror().epoch(), replica.Head().epoch);
  EXPECT_NE(replica.mirror().epoch(), "");
  EXPECT_EQ(replica.listener().resets(), 0);
  replica.ExpectMirrorEqualsStore();
}

TEST(EventTailerTest, ReloadsWhenTheStreamWasTrimmedPastTheMirror) {
  const std::string prefix = testing::UniqueKeyPrefix();
  Replica replica(testing::SharedRedis().address(), prefix);
  for (int n = 1; n <= 5; ++n) replica.Create(n);
  replica.StartTailer();
  ASSERT_TRUE(replica.WaitForHead().ok());
  // Three creations and a trim to the last event, in one transaction: the tailer never sees
  // revisions 6 and 7, only 8.
  testing::RedisInstance& redis = testing::SharedRedis();
  ASSERT_TRUE(redis.Command({"MULTI"}).ok());
  for (int n = 6; n <= 8; ++n) {
    // The change script's layout (server/store/redis_scripts.h).
    ASSERT_TRUE(
        redis
            .Command({"EVAL", CreateTokenScript().source(), "5",
                      absl::StrCat(prefix, ":t:", IdOf(n)), absl::StrCat(prefix, ":rev"),
                      absl::StrCat(prefix, ":events"), absl::StrCat(prefix, ":meta"),
                      absl::StrCat(prefix, ":h:", IdOf(n)), prefix, "unused-epoch", "1000", "test",
                      IdOf(n), "ACC-0000-0001", "trimmed", "", std::string(64, 'a')})
            .ok());
  }
  ASSERT_TRUE(redis.Command({"XTRIM", absl::StrCat(prefix, ":events"), "MAXLEN", "1"}).ok());
  ASSERT_TRUE(redis.Command({"EXEC"}).ok());
  ASSERT_TRUE(replica.listener().WaitForReset(""));
  ASSERT_TRUE(replica.WaitForHead().ok());
  replica.ExpectMirrorEqualsStore();
  EXPECT_EQ(replica.mirror().revision(), 8);
}

TEST(RedisTokenStoreScanTest, ARecordGoneFromUnderItsIndexIsAborted) {
  // What a dataset replaced in the middle of a Scan looks like: the index names a token whose
  // record is not there. The scan must not return a page without it.
  const std::string prefix = testing::UniqueKeyPrefix();
  Replica replica(testing::SharedRedis().address(), prefix);
  for (int n = 1; n <= 3; ++n) replica.Create(n);
  ASSERT_TRUE(testing::SharedRedis().Command({"DEL", absl::StrCat(prefix, ":t:", IdOf(2))}).ok());
  absl::StatusOr<TokenPage> page =
      testing::AwaitStore<TokenPage>([&](StoreCallback<TokenPage> done) {
        replica.store().Scan({.limit = 10}, Deadline(), std::move(done));
      });
  EXPECT_EQ(page.status().code(), absl::StatusCode::kAborted) << page.status();
  EXPECT_EQ(ErrorReason(page.status()), reason::kStoreError);
  EXPECT_THAT(page.status().message(), ::testing::HasSubstr(IdOf(2)));
}

// Copies every key of `prefix` to `to` + the key (Redis COPY), or back with REPLACE: a backup of
// the dataset at this moment, and its restore.
void CopyDataset(testing::RedisInstance& redis, const std::string& prefix, const std::string& to) {
  absl::StatusOr<std::vector<std::string>> keys = redis.Command({"KEYS", prefix + ":*"});
  ASSERT_TRUE(keys.ok()) << keys.status();
  ASSERT_FALSE(keys->empty());
  for (const std::string& key : *keys) {
    ASSERT_TRUE(redis.Command({"COPY", key, to + key}).ok());
  }
}

// Queues (inside MULTI) the restore of the copy made by CopyDataset(redis, prefix, backup):
// every key of the dataset is dropped, then the copies are put back under the original names.
void QueueRestore(testing::RedisInstance& redis, const std::string& prefix,
                  const std::string& backup) {
  absl::StatusOr<std::vector<std::string>> now = redis.Command({"KEYS", prefix + ":*"});
  absl::StatusOr<std::vector<std::string>> saved = redis.Command({"KEYS", backup + prefix + ":*"});
  ASSERT_TRUE(now.ok() && saved.ok());
  ASSERT_TRUE(redis.Command({"MULTI"}).ok());
  for (const std::string& key : *now) ASSERT_TRUE(redis.Command({"DEL", key}).ok());
  for (const std::string& key : *saved) {
    ASSERT_TRUE(redis.Command({"COPY", key, key.substr(backup.size()), "REPLACE"}).ok());
  }
}

// Queues (inside MULTI) the creation of token `n` by the change script, as the store makes it.
void QueueCreate(testing::RedisInstance& redis, const std::string& prefix, int n) {
  ASSERT_TRUE(
      redis
          .Command({"EVAL", CreateTokenScript().source(), "5", absl::StrCat(prefix, ":t:", IdOf(n)),
                    absl::StrCat(prefix, ":rev"), absl::StrCat(prefix, ":events"),
                    absl::StrCat(prefix, ":meta"), absl::StrCat(prefix, ":h:", IdOf(n)), prefix,
                    absl::StrCat("nonce-", n), "1000", "test", IdOf(n), "ACC-0000-0001", "restored",
                    "", std::string(64, 'a')})
          .ok());
}

// Creates tokens 1..10 through `replica`, copies the dataset aside, creates 11..15, starts the
// tailer and waits for it; then, in one transaction, restores the copy (revision 10, the same
// epoch) and creates `creations` tokens 100, 101, ... on it: revisions 11.. of another history.
// Returns the epoch (the restore keeps it).
std::string FollowThenRestoreOlder(Replica& replica, const std::string& prefix, int creations) {
  testing::RedisInstance& redis = testing::SharedRedis();
  const std::string backup = "backup:";
  for (int n = 1; n <= 10; ++n) replica.Create(n);
  CopyDataset(redis, prefix, backup);
  for (int n = 11; n <= 15; ++n) replica.Create(n);
  replica.StartTailer();
  EXPECT_TRUE(replica.WaitForHead().ok());
  EXPECT_EQ(replica.mirror().revision(), 15);
  const std::string epoch = replica.mirror().epoch();
  QueueRestore(redis, prefix, backup);
  for (int n = 100; n < 100 + creations; ++n) QueueCreate(redis, prefix, n);
  EXPECT_TRUE(redis.Command({"EXEC"}).ok());
  EXPECT_EQ(replica.Head().revision, 10 + creations);
  EXPECT_EQ(replica.Head().epoch, epoch);
  return epoch;
}

// The store is restored from an older copy of its own data and changed again past the mirror's
// revision before the tailer reads: the numbers continue (head above the mirror, next event =
// mirror + 1), but the history is another. The mirror must reload, not go on.
TEST(EventTailerTest, ReloadsWhenARestoredOlderCopyWasChangedPastTheMirror) {
  const std::string prefix = testing::UniqueKeyPrefix();
  Replica replica(testing::SharedRedis().address(), prefix);
  const std::string epoch = FollowThenRestoreOlder(replica, prefix, 7);  // revisions 11..17
  ASSERT_TRUE(replica.listener().WaitForReset(epoch));
  ASSERT_TRUE(replica.WaitForHead().ok());
  replica.ExpectMirrorEqualsStore();
  EXPECT_EQ(replica.mirror().chain(), replica.Head().chain);
  // Tokens 11..15 exist only in the history that was lost; 100..106 only in the new one.
  EXPECT_EQ(replica.mirror().Get(IdOf(15)).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(replica.mirror().Get(IdOf(106)).ok());
}

// The same, with the new history reaching exactly the mirror's revision: only the head's mark
// tells the histories apart.
TEST(EventTailerTest, ReloadsWhenTheHeadIsAtTheMirrorsRevisionWithAnotherMark) {
  const std::string prefix = testing::UniqueKeyPrefix();
  Replica replica(testing::SharedRedis().address(), prefix);
  const std::string epoch = FollowThenRestoreOlder(replica, prefix, 5);  // revisions 11..15
  ASSERT_TRUE(replica.listener().WaitForReset(epoch));
  replica.ExpectMirrorEqualsStore();
  EXPECT_EQ(replica.mirror().Get(IdOf(11)).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(replica.mirror().Get(IdOf(104)).ok());
}

TEST(EventTailerTest, ReloadsIntoTheNewEpochAfterFlushall) {
  absl::StatusOr<std::unique_ptr<testing::RedisInstance>> redis = testing::RedisInstance::Start();
  ASSERT_TRUE(redis.ok()) << redis.status();
  Replica replica((*redis)->address(), "{apitoken}");
  for (int n = 1; n <= 20; ++n) replica.Create(n);
  replica.StartTailer();
  ASSERT_TRUE(replica.WaitForHead().ok());
  const std::string old_epoch = replica.mirror().epoch();
  ASSERT_TRUE((*redis)->Command({"FLUSHALL"}).ok());
  // Fewer changes than before: the new stream's ids stay below the mirror's revision.
  for (int n = 100; n < 103; ++n) replica.Create(n);
  const std::string new_epoch = replica.Head().epoch;
  ASSERT_NE(new_epoch, old_epoch);
  ASSERT_TRUE(replica.listener().WaitForReset(new_epoch));
  ASSERT_TRUE(replica.WaitForHead().ok());
  replica.ExpectMirrorEqualsStore();
  EXPECT_EQ(replica.mirror().revision(), 3);
  EXPECT_EQ(replica.mirror().Get(IdOf(1)).status().code(), absl::StatusCode::kNotFound);
}

TEST(EventTailerTest, RecoversAfterARedisRestart) {
  absl::StatusOr<std::unique_ptr<testing::RedisInstance>> redis = testing::RedisInstance::Start();
  ASSERT_TRUE(redis.ok()) << redis.status();
  Replica replica((*redis)->address(), "{apitoken}");
  for (int n = 1; n <= 10; ++n) replica.Create(n);
  replica.StartTailer();
  ASSERT_TRUE(replica.WaitForHead().ok());
  (*redis)->Kill();
  ASSERT_TRUE((*redis)->Restart().ok());
  // The data survived (AOF): the same epoch, and the tailer goes on from where it was. The
  // store's client reconnects with backoff: retry the change until it is accepted.
  absl::Status changed;
  for (const absl::Time give_up = absl::Now() + kPatience; absl::Now() < give_up;) {
    changed = replica.TryChange(3, Transition::kDisable);
    if (!absl::IsUnavailable(changed)) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(changed.ok()) << changed;
  ASSERT_TRUE(replica.WaitForHead().ok());
  replica.ExpectMirrorEqualsStore();
  EXPECT_EQ(replica.mirror().revision(), 11);
}

TEST(EventTailerTest, StopsWithoutWaitingForABlockedRead) {
  Replica replica(testing::SharedRedis().address(), testing::UniqueKeyPrefix());
  replica.Create(1);
  TokenMirror mirror;
  auto tailer = std::make_unique<EventTailer>(replica.store(), mirror,
                                              EventTailerOptions{.block = absl::Seconds(60)});
  tailer->Start();
  absl::Notification loaded;
  mirror.WhenRevisionReached(1, absl::Now() + kPatience, [&](absl::Status) { loaded.Notify(); });
  loaded.WaitForNotification();
  ASSERT_TRUE(mirror.loaded());
  // The tailer now waits in a 60 s XREAD BLOCK.
  const absl::Time start = absl::Now();
  tailer.reset();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST(EventTailerTest, FollowsAMemoryTokenStore) {
  MemoryTokenStore store;
  TokenMirror mirror;
  EventTailer tailer(store, mirror, EventTailerOptions{.block = absl::Milliseconds(50)});
  CreateTokenParams params;
  params.token_id = IdOf(1);
  params.account_id = "ACC-0000-0001";
  params.name = "memory";
  params.secret_sha256 = std::string(32, '\x01');
  params.actor = "test";
  store.Create(params, absl::InfiniteFuture(), [](absl::StatusOr<Token>) {});
  tailer.Start();
  params.token_id = IdOf(2);
  store.Create(params, absl::InfiniteFuture(), [](absl::StatusOr<Token>) {});
  absl::Notification reached;
  absl::Status status;
  mirror.WhenRevisionReached(2, absl::Now() + kPatience, [&](absl::Status s) {
    status = std::move(s);
    reached.Notify();
  });
  reached.WaitForNotification();
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_TRUE(mirror.Get(IdOf(1)).ok());
  EXPECT_TRUE(mirror.Get(IdOf(2)).ok());
}

}  // namespace
}  // namespace tokenstatus
