// TokenMirror (server/mirror/token_mirror.h): reads equal a MemoryTokenStore's over a random
// history, revision waiters, the listener's view of changes and resets.

#include "server/mirror/token_mirror.h"

#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "core/status_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "server/store/memory_token_store.h"

namespace tokenstatus {
namespace {

using ::google::protobuf::util::MessageDifferencer;

std::string IdOf(int n) { return absl::StrFormat("TKN-%04d-%04d", n / 10000, n % 10000); }
std::string AccountOf(int n) { return absl::StrFormat("ACC-0000-%04d", n); }

// MemoryTokenStore completes inline: these unwrap its answers.
template <typename T>
absl::StatusOr<T> Inline(absl::FunctionRef<void(StoreCallback<T>)> call) {
  absl::StatusOr<T> result = absl::UnknownError("no answer");
  call([&result](absl::StatusOr<T> value) { result = std::move(value); });
  return result;
}

Token MakeToken(const std::string& id, const std::string& account, int64_t revision,
                Token::State state = Token::STATE_ACTIVE) {
  Token token;
  token.set_id(id);
  token.set_account_id(account);
  token.set_name(absl::StrCat("name of ", id));
  token.set_state(state);
  token.set_revision(revision);
  return token;
}

TokenEvent MakeEvent(Token token, TokenEvent::Type type = TokenEvent::TYPE_CREATED) {
  TokenEvent event;
  event.set_type(type);
  *event.mutable_token() = std::move(token);
  return event;
}

// A store with a random history, the mirror fed from its events.
class MirrorParityTest : public ::testing::Test {
 protected:
  // A creation that is refused if the id exists (then nothing changes).
  void Create(int n, int account) {
    CreateTokenParams params;
    params.token_id = IdOf(n);
    params.account_id = AccountOf(account);
    params.name = "n";
    params.secret_sha256 = std::string(32, 'x');
    params.actor = "test";
    const absl::Status status = Inline<Token>([&](StoreCallback<Token> done) {
                                  store_.Create(params, absl::InfiniteFuture(), std::move(done));
                                }).status();
    EXPECT_TRUE(status.ok() || absl::IsAlreadyExists(status)) << status;
  }
  // A transition that may be refused (then nothing changes).
  void Change(int n, Transition transition) {
    TransitionParams params;
    params.token_id = IdOf(n);
    params.transition = transition;
    params.actor = "test";
    Inline<AppliedTransition>([&](StoreCallback<AppliedTransition> done) {
      store_.Apply(params, absl::InfiniteFuture(), std::move(done));
    }).IgnoreError();
  }
  // Feeds the store's events after the mirror's revision to the mirror.
  void Feed() {
    absl::StatusOr<std::vector<TokenEvent>> events =
        Inline<std::vector<TokenEvent>>([&](StoreCallback<std::vector<TokenEvent>> done) {
          store_.ReadEvents(mirror_.revision(), 1000000, absl::InfiniteFuture(), std::move(done));
        });
    ASSERT_TRUE(events.ok());
    mirror_.Apply(*std::move(events));
  }
  // Resets the mirror from a full listing of the store.
  void Load() {
    ListParams params;
    params.page_size = 1000;
    params.show_deleted = true;
    absl::StatusOr<TokenPage> page = Inline<TokenPage>([&](StoreCallback<TokenPage> done) {
      store_.List(params, absl::InfiniteFuture(), std::move(done));
    });
    ASSERT_TRUE(page.ok());
    ASSERT_TRUE(page->next_after_id.empty());
    mirror_.Reset(std::move(page->tokens), page->revision, page->epoch);
  }
  void RandomChanges(std::minstd_rand& random, int count) {
    for (int i = 0; i < count; ++i) {
      const int n = static_cast<int>(random() % 80);
      switch (random() % 4) {
        case 0:
          Create(n, static_cast<int>(random() % 4));  // refused if it exists
          break;
        case 1:
          Change(n, Transition::kDisable);
          break;
        case 2:
          Change(n, Transition::kEnable);
          break;
        default:
          if (random() % 3 == 0) Change(n, Transition::kDelete);
      }
    }
  }

  // Every Get and every page of every listing are the same from the store and the mirror.
  void ExpectSameReads() {
    for (int n = 0; n < 81; ++n) {
      absl::StatusOr<TokenAtRevision> want =
          Inline<TokenAtRevision>([&](StoreCallback<TokenAtRevision> done) {
            store_.Get(IdOf(n), absl::InfiniteFuture(), std::move(done));
          });
      absl::StatusOr<TokenAtRevision> got = mirror_.Get(IdOf(n));
      ASSERT_EQ(got.status().code(), want.status().code()) << IdOf(n);
      EXPECT_EQ(ErrorReason(got.status()), ErrorReason(want.status()));
      if (!want.ok()) continue;
      EXPECT_TRUE(MessageDifferencer::Equals(got->token, want->token));
      EXPECT_EQ(got->revision, want->revision);
    }
    for (Token::State state : {Token::STATE_UNSPECIFIED, Token::STATE_ACTIVE, Token::STATE_DISABLED,
                               Token::STATE_DELETED}) {
      for (const std::string& account : {std::string(), AccountOf(1), AccountOf(3), AccountOf(9)}) {
        for (bool show_deleted : {false, true}) {
          for (int page_size : {1, 3, 1000}) {
            ListParams params;
            params.state = state;
            params.account_id = account;
            params.show_deleted = show_deleted;
            params.page_size = page_size;
            SCOPED_TRACE(absl::StrCat("state ", state, " account ", account, " show_deleted ",
                                      show_deleted, " page_size ", page_size));
            ExpectSamePages(params);
          }
        }
      }
    }
  }

  void ExpectSamePages(ListParams params) {
    for (int pages = 0; pages < 1000; ++pages) {
      absl::StatusOr<TokenPage> want = Inline<TokenPage>([&](StoreCallback<TokenPage> done) {
        store_.List(params, absl::InfiniteFuture(), std::move(done));
      });
      absl::StatusOr<TokenPage> got = mirror_.List(params);
      ASSERT_TRUE(want.ok());
      ASSERT_TRUE(got.ok()) << got.status();
      ASSERT_EQ(got->tokens.size(), want->tokens.size());
      for (size_t i = 0; i < got->tokens.size(); ++i) {
        EXPECT_TRUE(MessageDifferencer::Equals(got->tokens[i], want->tokens[i]));
      }
      EXPECT_EQ(got->next_after_id, want->next_after_id);
      EXPECT_EQ(got->revision, want->revision);
      EXPECT_EQ(got->epoch, want->epoch);
      if (want->next_after_id.empty()) return;
      params.after_id = want->next_after_id;
    }
    ADD_FAILURE() << "the listing never ended";
  }

  MemoryTokenStore store_;
  TokenMirror mirror_;
};

TEST_F(MirrorParityTest, ReadsEqualTheStoresOverARandomHistory) {
  std::minstd_rand random(20261128);
  RandomChanges(random, 150);
  Load();  // from a listing, mid-history
  ExpectSameReads();
  for (int round = 0; round < 8; ++round) {
    SCOPED_TRACE(round);
    RandomChanges(random, 60);
    Feed();
    ExpectSameReads();
  }
}

TEST(TokenMirrorTest, NotLoadedReadsAreUnavailable) {
  TokenMirror mirror;
  EXPECT_FALSE(mirror.loaded());
  for (const absl::Status& status :
       {mirror.Get(IdOf(1)).status(), mirror.List(ListParams()).status(),
        mirror.ReadConsistent([](const MirrorView&) { ADD_FAILURE() << "fn ran"; })}) {
    EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
    EXPECT_EQ(ErrorReason(status), reason::kMirrorNotReady);
  }
  mirror.Reset({}, 0, "");
  EXPECT_TRUE(mirror.loaded());
  EXPECT_EQ(mirror.Get(IdOf(1)).status().code(), absl::StatusCode::kNotFound);
}

TEST(TokenMirrorTest, ReadConsistentVisitsTokensInIdOrder) {
  TokenMirror mirror;
  mirror.Reset({MakeToken(IdOf(3), AccountOf(1), 3), MakeToken(IdOf(1), AccountOf(2), 1),
                MakeToken(IdOf(2), AccountOf(1), 2, Token::STATE_DELETED)},
               3, "e1");
  mirror.Apply({MakeEvent(MakeToken(IdOf(0), AccountOf(1), 4))});
  std::vector<std::string> all, account;
  int64_t revision = 0;
  std::string epoch;
  ASSERT_TRUE(mirror
                  .ReadConsistent([&](const MirrorView& view) {
                    revision = view.revision();
                    epoch = view.epoch();
                    view.ForEachToken("", [&](const Token& t) { all.push_back(t.id()); });
                    view.ForEachToken(AccountOf(1),
                                      [&](const Token& t) { account.push_back(t.id()); });
                    view.ForEachToken(AccountOf(7), [&](const Token&) { ADD_FAILURE(); });
                  })
                  .ok());
  EXPECT_EQ(revision, 4);
  EXPECT_EQ(epoch, "e1");
  EXPECT_EQ(all, (std::vector<std::string>{IdOf(0), IdOf(1), IdOf(2), IdOf(3)}));
  EXPECT_EQ(account, (std::vector<std::string>{IdOf(0), IdOf(2), IdOf(3)}));
}

TEST(TokenMirrorTest, CapturedTokensAreTheViewsAndOutliveIt) {
  TokenMirror mirror;
  mirror.Reset({MakeToken(IdOf(3), AccountOf(1), 3), MakeToken(IdOf(1), AccountOf(2), 1),
                MakeToken(IdOf(2), AccountOf(1), 2)},
               3, "e1");
  std::vector<std::shared_ptr<const Token>> all, account, none;
  ASSERT_TRUE(mirror
                  .ReadConsistent([&](const MirrorView& view) {
                    EXPECT_EQ(view.CountTokens(""), 3u);
                    EXPECT_EQ(view.CountTokens(AccountOf(1)), 2u);
                    EXPECT_EQ(view.CountTokens(AccountOf(7)), 0u);
                    all = view.CaptureTokens("");
                    account = view.CaptureTokens(AccountOf(1));
                    none = view.CaptureTokens(AccountOf(7));
                  })
                  .ok());
  // Later changes (and a whole new state) do not touch what was captured.
  mirror.Apply({MakeEvent(MakeToken(IdOf(3), AccountOf(1), 4, Token::STATE_DISABLED))});
  mirror.Reset({}, 9, "e2");
  const auto ids = [](const std::vector<std::shared_ptr<const Token>>& tokens) {
    std::vector<std::string> ids;
    for (const auto& token : tokens) ids.push_back(token->id());
    return ids;
  };
  EXPECT_EQ(ids(all), (std::vector<std::string>{IdOf(1), IdOf(2), IdOf(3)}));
  EXPECT_EQ(ids(account), (std::vector<std::string>{IdOf(2), IdOf(3)}));
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(account[1]->revision(), 3);
  EXPECT_EQ(account[1]->state(), Token::STATE_ACTIVE);
}

TEST(TokenMirrorTest, StatsCountTokensByStateAndTheNewestCommit) {
  TokenMirror mirror;
  EXPECT_EQ(mirror.stats().revision, -1);
  EXPECT_EQ(mirror.stats().newest_commit, absl::InfinitePast());
  Token disabled = MakeToken(IdOf(2), AccountOf(1), 2, Token::STATE_DISABLED);
  disabled.mutable_update_time()->set_seconds(1000);
  mirror.Reset({MakeToken(IdOf(1), AccountOf(1), 1), disabled}, 2, "e1");
  TokenMirror::Stats stats = mirror.stats();
  EXPECT_EQ(stats.revision, 2);
  EXPECT_EQ(stats.tokens_by_state[Token::STATE_ACTIVE], 1);
  EXPECT_EQ(stats.tokens_by_state[Token::STATE_DISABLED], 1);
  EXPECT_EQ(stats.newest_commit, absl::FromUnixSeconds(1000));

  // The active one is disabled, the disabled one deleted, a new one created.
  Token deleted = MakeToken(IdOf(2), AccountOf(1), 4, Token::STATE_DELETED);
  Token created = MakeToken(IdOf(3), AccountOf(1), 5);
  created.mutable_update_time()->set_seconds(2000);
  created.mutable_update_time()->set_nanos(500);
  mirror.Apply({MakeEvent(MakeToken(IdOf(1), AccountOf(1), 3, Token::STATE_DISABLED),
                          TokenEvent::TYPE_DISABLED),
                MakeEvent(deleted, TokenEvent::TYPE_DELETED), MakeEvent(created)});
  stats = mirror.stats();
  EXPECT_EQ(stats.revision, 5);
  EXPECT_EQ(stats.tokens_by_state[Token::STATE_ACTIVE], 1);
  EXPECT_EQ(stats.tokens_by_state[Token::STATE_DISABLED], 1);
  EXPECT_EQ(stats.tokens_by_state[Token::STATE_DELETED], 1);
  EXPECT_EQ(stats.newest_commit, absl::FromUnixSeconds(2000) + absl::Nanoseconds(500));

  // A reload counts afresh.
  mirror.Reset({MakeToken(IdOf(9), AccountOf(1), 1)}, 9, "e2");
  stats = mirror.stats();
  EXPECT_EQ(stats.tokens_by_state[Token::STATE_ACTIVE], 1);
  EXPECT_EQ(stats.tokens_by_state[Token::STATE_DISABLED], 0);
  EXPECT_EQ(stats.tokens_by_state[Token::STATE_DELETED], 0);
}

// Records the outcome of a WhenRevisionReached.
struct Outcome {
  absl::Notification done;
  absl::Status status;
  absl::AnyInvocable<void(absl::Status)> Callback() {
    return [this](absl::Status s) {
      status = std::move(s);
      done.Notify();
    };
  }
};

TEST(TokenMirrorTest, WaiterReachedAtOnceRunsOnTheCallingThread) {
  TokenMirror mirror;
  mirror.Reset({}, 5, "e");
  Outcome outcome;
  mirror.WhenRevisionReached(5, absl::Now() + absl::Hours(1), outcome.Callback());
  ASSERT_TRUE(outcome.done.HasBeenNotified());
  EXPECT_TRUE(outcome.status.ok());
}

TEST(TokenMirrorTest, WaiterIsReachedByLoadAndApply) {
  Outcome loaded, later, far;  // outlive the mirror, which fails `far` when it goes
  TokenMirror mirror;
  mirror.WhenRevisionReached(0, absl::Now() + absl::Hours(1), loaded.Callback());
  mirror.WhenRevisionReached(7, absl::Now() + absl::Hours(1), later.Callback());
  mirror.WhenRevisionReached(9, absl::Now() + absl::Hours(1), far.Callback());
  EXPECT_FALSE(loaded.done.HasBeenNotified()) << "reached before the mirror loaded";
  mirror.Reset({}, 5, "e");
  ASSERT_TRUE(loaded.done.HasBeenNotified());
  EXPECT_TRUE(loaded.status.ok());
  EXPECT_FALSE(later.done.HasBeenNotified());
  mirror.Apply({MakeEvent(MakeToken(IdOf(1), AccountOf(1), 6))});
  EXPECT_FALSE(later.done.HasBeenNotified());
  mirror.Apply({MakeEvent(MakeToken(IdOf(2), AccountOf(1), 7)),
                MakeEvent(MakeToken(IdOf(3), AccountOf(1), 8))});
  ASSERT_TRUE(later.done.HasBeenNotified());
  EXPECT_TRUE(later.status.ok());
  EXPECT_FALSE(far.done.HasBeenNotified());
}

TEST(TokenMirrorTest, WaiterFailsAtItsDeadlineNamingBothRevisions) {
  TokenMirror mirror;
  mirror.Reset({}, 40, "e");
  Outcome late, past;
  const absl::Time start = absl::Now();
  mirror.WhenRevisionReached(42, start + absl::Milliseconds(100), late.Callback());
  mirror.WhenRevisionReached(43, start - absl::Seconds(1), past.Callback());
  ASSERT_TRUE(past.done.HasBeenNotified()) << "a past deadline fails at once";
  EXPECT_EQ(past.status.code(), absl::StatusCode::kDeadlineExceeded);
  ASSERT_TRUE(late.done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(100));
  EXPECT_EQ(late.status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(ErrorReason(late.status), reason::kRevisionNotReached);
  EXPECT_NE(late.status.message().find("42"), absl::string_view::npos) << late.status;
  EXPECT_NE(late.status.message().find("40"), absl::string_view::npos) << late.status;
}

TEST(TokenMirrorTest, EarlierDeadlineAddedLaterFiresFirst) {
  Outcome slow, fast;  // outlive the mirror, which fails `slow` when it goes
  TokenMirror mirror;
  mirror.WhenRevisionReached(1, absl::Now() + absl::Hours(1), slow.Callback());
  mirror.WhenRevisionReached(1, absl::Now() + absl::Milliseconds(50), fast.Callback());
  ASSERT_TRUE(fast.done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(fast.status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_NE(fast.status.message().find("not loaded"), absl::string_view::npos) << fast.status;
  EXPECT_FALSE(slow.done.HasBeenNotified());
}

// A change as the store returns it: token `id` at `revision`, changed at `millis` by `actor`.
Token Committed(const std::string& id, int64_t revision, int64_t millis,
                const std::string& actor = "op") {
  Token token = MakeToken(id, AccountOf(1), revision);
  token.mutable_update_time()->set_seconds(millis / 1000);
  token.mutable_update_time()->set_nanos(static_cast<int32_t>(millis % 1000) * 1000000);
  token.set_updated_by(actor);
  return token;
}

TEST(TokenMirrorTest, AChangeIsAppliedOnlyByAnEqualEventAtItsRevision) {
  TokenMirror mirror;
  mirror.Reset({}, 5, "e");
  const Token mine = Committed(IdOf(1), 6, 1000);
  Outcome applied;
  mirror.WhenApplied(mine, absl::Now() + absl::Hours(1), applied.Callback());
  EXPECT_FALSE(applied.done.HasBeenNotified());
  mirror.Apply({MakeEvent(mine)});
  ASSERT_TRUE(applied.done.HasBeenNotified());
  EXPECT_TRUE(applied.status.ok()) << applied.status;

  // Already applied when asked (the tailer is often faster than the store's answer), even if the
  // token changed again since.
  mirror.Apply({MakeEvent(Committed(IdOf(1), 7, 2000), TokenEvent::TYPE_DISABLED)});
  Outcome again;
  mirror.WhenApplied(mine, absl::Now() + absl::Hours(1), again.Callback());
  ASSERT_TRUE(again.done.HasBeenNotified());
  EXPECT_TRUE(again.status.ok()) << again.status;
}

TEST(TokenMirrorTest, ARevisionNumberFromAnotherHistoryDoesNotApplyAChange) {
  // The mirror follows a history in which revision 6 was another change (a store restored older
  // and changed again): reaching 6, or passing it, is no acknowledgement of this one.
  TokenMirror mirror;
  mirror.Reset({}, 5, "e");
  mirror.Apply({MakeEvent(Committed(IdOf(2), 6, 1000)), MakeEvent(Committed(IdOf(3), 7, 1001))});
  const Token mine = Committed(IdOf(1), 6, 1500);
  Outcome outcome;
  mirror.WhenApplied(mine, absl::Now() + absl::Milliseconds(200), outcome.Callback());
  EXPECT_FALSE(outcome.done.HasBeenNotified());
  ASSERT_TRUE(outcome.done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(outcome.status.code(), absl::StatusCode::kDeadlineExceeded) << outcome.status;
  EXPECT_NE(outcome.status.message().find("history"), absl::string_view::npos) << outcome.status;

  // The same id, revision and state, changed at another time or by another actor: not it either.
  Outcome twin;
  mirror.WhenApplied(Committed(IdOf(2), 6, 1000, "someone else"), absl::Now() - absl::Seconds(1),
                     twin.Callback());
  ASSERT_TRUE(twin.done.HasBeenNotified());
  EXPECT_FALSE(twin.status.ok());
}

TEST(TokenMirrorTest, AReloadThatBeganAfterTheChangeAppliesIt) {
  TokenMirror mirror;
  mirror.Reset({}, 5, "e");
  mirror.Apply({MakeEvent(Committed(IdOf(2), 6, 1000))});  // another history's revision 6
  const Token mine = Committed(IdOf(1), 6, 1500);
  Outcome before_reload, after_reload;
  // A load that began before the wait was added proves nothing about the change...
  mirror.BeginLoad();
  mirror.WhenApplied(mine, absl::Now() + absl::Hours(1), before_reload.Callback());
  mirror.Reset({Committed(IdOf(9), 8, 3000)}, 8, "e", "mark");
  EXPECT_FALSE(before_reload.done.HasBeenNotified());
  // ...one that began after it read the store after the change: the mirror now holds it.
  mirror.BeginLoad();
  mirror.Reset({Committed(IdOf(9), 8, 3000)}, 8, "e", "mark");
  ASSERT_TRUE(before_reload.done.HasBeenNotified());
  EXPECT_TRUE(before_reload.status.ok()) << before_reload.status;
  EXPECT_EQ(mirror.chain(), "mark");

  // A reload that holds exactly the committed token applies it too, whenever it began.
  mirror.WhenApplied(Committed(IdOf(9), 8, 3000), absl::Now() + absl::Hours(1),
                     after_reload.Callback());
  ASSERT_TRUE(after_reload.done.HasBeenNotified());
  EXPECT_TRUE(after_reload.status.ok()) << after_reload.status;
}

TEST(TokenMirrorTest, DestructorFailsPendingWaiters) {
  Outcome outcome;
  {
    TokenMirror mirror;
    mirror.Reset({}, 1, "e");
    mirror.WhenRevisionReached(2, absl::Now() + absl::Hours(1), outcome.Callback());
  }
  ASSERT_TRUE(outcome.done.HasBeenNotified());
  EXPECT_EQ(outcome.status.code(), absl::StatusCode::kUnavailable);
}

// Records listener calls as text.
class RecordingListener : public MirrorListener {
 public:
  void OnChanges(absl::Span<const std::shared_ptr<const TokenEvent>> events, int64_t revision,
                 const std::string& epoch) override {
    std::string line = absl::StrCat("changes@", revision, "/", epoch, ":");
    for (const auto& event : events) {
      absl::StrAppend(&line, " ", event->token().id(), "/", event->token().revision());
    }
    calls.push_back(line);
  }
  void OnReset(const std::string& epoch, int64_t revision, const std::string& chain) override {
    calls.push_back(absl::StrCat("reset@", revision, ":", epoch, "/", chain));
  }
  std::vector<std::string> calls;
};

TEST(TokenMirrorTest, ListenerSeesChangesAndResetsInOrder) {
  TokenMirror mirror;
  RecordingListener listener;
  mirror.SetListener(&listener);
  mirror.Reset({MakeToken(IdOf(1), AccountOf(1), 1)}, 2, "e1");  // the first load: no reset
  mirror.Apply({MakeEvent(MakeToken(IdOf(1), AccountOf(1), 3), TokenEvent::TYPE_DISABLED),
                MakeEvent(MakeToken(IdOf(2), AccountOf(1), 4))});
  mirror.Apply({});  // nothing
  mirror.Apply({MakeEvent(MakeToken(IdOf(2), AccountOf(1), 5), TokenEvent::TYPE_DELETED)});
  mirror.Reset({MakeToken(IdOf(9), AccountOf(1), 1)}, 1, "e2", "c1");
  mirror.Apply({MakeEvent(MakeToken(IdOf(8), AccountOf(1), 2))});
  mirror.SetListener(nullptr);
  mirror.Apply({MakeEvent(MakeToken(IdOf(7), AccountOf(1), 3))});
  EXPECT_EQ(listener.calls,
            (std::vector<std::string>{"changes@4/e1: " + IdOf(1) + "/3 " + IdOf(2) + "/4",
                                      "changes@5/e1: " + IdOf(2) + "/5", "reset@1:e2/c1",
                                      "changes@2/e2: " + IdOf(8) + "/2"}));
  // The reset replaced everything.
  EXPECT_EQ(mirror.Get(IdOf(1)).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(mirror.epoch(), "e2");
  EXPECT_EQ(mirror.revision(), 3);
  ASSERT_TRUE(mirror.Get(IdOf(9)).ok());
}

TEST(TokenMirrorTest, AnEmptyDatasetAdoptsTheEpochOfItsFirstChangeWithoutAReset) {
  TokenMirror mirror;
  RecordingListener listener;
  mirror.SetListener(&listener);
  mirror.Reset({}, 0, "");  // loaded from a store nobody has written to yet
  mirror.Apply({MakeEvent(MakeToken(IdOf(1), AccountOf(1), 1))}, "first");
  mirror.Apply({MakeEvent(MakeToken(IdOf(2), AccountOf(1), 2))}, "first");
  mirror.SetListener(nullptr);
  EXPECT_EQ(listener.calls, (std::vector<std::string>{"changes@1/first: " + IdOf(1) + "/1",
                                                      "changes@2/first: " + IdOf(2) + "/2"}));
  EXPECT_EQ(mirror.epoch(), "first");
  absl::StatusOr<TokenPage> page = mirror.List(ListParams{});
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->epoch, "first");
  EXPECT_EQ(page->tokens.size(), 2u);
}

}  // namespace
}  // namespace tokenstatus
