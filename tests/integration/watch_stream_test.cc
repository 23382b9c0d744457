// WatchTokens against real server replicas on one Redis: every watcher (on either replica, with
// or without an account filter) sees every matching change exactly once and in order while
// several clients make changes; a resumed stream continues without a gap or a duplicate; trimmed
// history, a revision from the future, another epoch, and a flushed Redis each give KIND_RESET
// followed by a snapshot equal to the store; min_revision gives read-your-writes across replicas.

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/integration_test_util.h"
#include "tests/integration/watch_test_util.h"

namespace tokenstatus::integration {
namespace {

using grpc::StatusCode;
using testing::RedisInstance;
using testing::ServerProcess;
using testing::SharedRedis;
using testing::UniqueKeyPrefix;
using Replicas = std::vector<std::unique_ptr<ServerProcess>>;

// One stub per replica, each on its own connection.
std::vector<std::unique_ptr<TokenService::Stub>> StubsOf(const Replicas& replicas) {
  std::vector<std::unique_ptr<TokenService::Stub>> stubs;
  for (const auto& replica : replicas) {
    stubs.push_back(TokenService::NewStub(NewDedicatedChannel(replica->address())));
  }
  return stubs;
}

// The dataset's epoch as a listing reports it.
std::string EpochOf(const Api& api) {
  Rpc<ListTokensResponse> page = api.List(ListTokensRequest());
  EXPECT_TRUE(page.ok()) << Describe(page.status);
  return page.response.epoch();
}

// The dataset's epoch as stored in Redis (<prefix>:meta).
std::string StoredEpoch(RedisInstance& redis, const std::string& prefix) {
  absl::StatusOr<std::vector<std::string>> epoch =
      redis.Command({"HGET", absl::StrCat(prefix, ":meta"), "epoch"});
  EXPECT_TRUE(epoch.ok()) << epoch.status();
  return epoch.ok() ? (*epoch)[0] : "";
}

TEST(WatchStreamTest, TwentyWatchersOnTwoReplicasSeeEveryChangeOnceInOrder) {
  constexpr int kWatchers = 20;
  constexpr int kWriters = 4;
  constexpr int kTokensPerWriter = 20;
  constexpr int kChangesPerWriter = 500;  // creations included: 2,000 changes in all
  absl::StatusOr<Replicas> replicas = StartReplicas(SharedRedis(), UniqueKeyPrefix(), 2);
  ASSERT_TRUE(replicas.ok()) << replicas.status();
  const std::vector<std::unique_ptr<TokenService::Stub>> stubs = StubsOf(*replicas);
  const std::vector<std::string> accounts = {NewAccountId(), NewAccountId(), NewAccountId()};
  // The dataset's first change gives it its epoch, which resets the watchers of the empty,
  // epoch-less dataset: make it before they start.
  const Api first_writer((*replicas)[0]->NewChannel());
  absl::StatusOr<Token> initial = NewToken(first_writer, NewAccountId());
  ASSERT_TRUE(initial.ok()) << initial.status();
  for (const auto& replica : *replicas) ASSERT_TRUE(MirrorReached(*replica, initial->revision()));

  // Watcher i watches replica i % 2; two in five watch everything, the others one account.
  std::vector<std::string> filters;
  std::vector<std::unique_ptr<Watcher>> watchers;
  for (int i = 0; i < kWatchers; ++i) {
    filters.push_back(i % 5 < 2 ? "" : accounts[i % 3]);
    watchers.push_back(std::make_unique<Watcher>(*stubs[i % 2], FromNow(filters[i])));
  }
  for (const auto& watcher : watchers) ASSERT_TRUE(watcher->WaitForSynced()) << watcher->Summary();

  // Concurrent writers, through both replicas, each on its own tokens (so it knows which
  // transitions are valid), spread over the three accounts.
  ChangeLog log;
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      const Api api(NewDedicatedChannel((*replicas)[w % 2]->address()));
      absl::BitGen gen;
      std::vector<Token> tokens;
      int deleted = 0;
      for (int change = 0; change < kChangesPerWriter; ++change) {
        absl::StatusOr<Token> changed;
        if (change < kTokensPerWriter) {
          changed = NewToken(api, accounts[(w + change) % 3]);
          if (changed.ok()) tokens.push_back(*changed);
        } else {
          Token* token;
          do {
            token = &tokens[absl::Uniform<size_t>(gen, 0, tokens.size())];
          } while (token->state() == Token::STATE_DELETED);
          if (deleted < kTokensPerWriter / 2 && absl::Bernoulli(gen, 0.02)) {
            Rpc<DeleteTokenResponse> result = api.Delete(token->id());
            changed = result.ok() ? absl::StatusOr<Token>(result.response.token())
                                  : absl::InternalError(Describe(result.status));
            ++deleted;
          } else {
            changed = Flip(api, *token);
          }
          if (changed.ok()) *token = *changed;
        }
        ASSERT_TRUE(changed.ok()) << "writer " << w << ", change " << change << ": "
                                  << changed.status();
        log.Add(*changed);
      }
    });
  }
  for (std::thread& writer : writers) writer.join();
  ASSERT_EQ(log.size(), kWriters * kChangesPerWriter);
  const int64_t last = log.LastRevision();

  const Api reader((*replicas)[0]->NewChannel());
  for (int i = 0; i < kWatchers; ++i) {
    const Watcher& watcher = *watchers[i];
    SCOPED_TRACE(absl::StrCat("watcher ", i, " on replica ", i % 2, ", account filter \"",
                              filters[i], "\": ", watcher.Summary()));
    ASSERT_TRUE(watchers[i]->WaitForRevision(last));
    const std::vector<TokenEvent> events = watcher.events();
    EXPECT_TRUE(StrictlyIncreasing(events));
    EXPECT_TRUE(RevisionsAre(events, log.Revisions(filters[i])));
    EXPECT_TRUE(NoSecretHashes(events));
    EXPECT_EQ(watcher.CountOf(WatchTokensResponse::KIND_RESET), 0);
    absl::StatusOr<std::vector<Token>> listed = ListEverything(reader, filters[i], last);
    ASSERT_TRUE(listed.ok()) << listed.status();
    EXPECT_TRUE(ViewEquals(watcher.view(), *listed));
  }
}

TEST(WatchStreamTest, ResumedMidStreamContinuesWithoutGapOrDuplicate) {
  constexpr int kTokens = 8;
  constexpr int kChanges = 600;
  absl::StatusOr<Replicas> replicas = StartReplicas(SharedRedis(), UniqueKeyPrefix(), 1);
  ASSERT_TRUE(replicas.ok()) << replicas.status();
  ServerProcess& server = *(*replicas)[0];
  const std::unique_ptr<TokenService::Stub> stub = TokenService::NewStub(server.NewChannel());
  const Api api(server.NewChannel());
  const std::string account = NewAccountId();
  std::vector<Token> tokens;
  for (int i = 0; i < kTokens; ++i) {
    absl::StatusOr<Token> token = NewToken(api, account);
    ASSERT_TRUE(token.ok()) << token.status();
    tokens.push_back(*token);
  }
  // The watcher's snapshot holds the creations; its events are the flips.
  ASSERT_TRUE(MirrorReached(server, tokens.back().revision()));

  auto first = std::make_unique<Watcher>(*stub, FromNow());
  ASSERT_TRUE(first->WaitForSynced()) << first->Summary();
  ChangeLog log;
  std::thread writer([&] {
    const Api writer_api(NewDedicatedChannel(server.address()));
    for (int i = 0; i < kChanges; ++i) {
      Token& token = tokens[i % kTokens];
      absl::StatusOr<Token> flipped = Flip(writer_api, token);
      ASSERT_TRUE(flipped.ok()) << flipped.status();
      token = *flipped;
      log.Add(token);
    }
  });
  // Cancel while changes keep coming: after a third of them.
  ASSERT_TRUE(first->WaitForKind(WatchTokensResponse::KIND_CHANGES, kChanges / 3))
      << first->Summary();
  first->Cancel();
  std::optional<grpc::Status> end = first->WaitForEnd();
  ASSERT_TRUE(end.has_value()) << first->Summary();
  EXPECT_EQ(end->error_code(), StatusCode::CANCELLED) << Describe(*end);

  const int64_t resume_from = first->revision();
  Watcher second(*stub, ResumeAfter(resume_from, first->epoch()));
  writer.join();
  ASSERT_TRUE(second.WaitForRevision(log.LastRevision())) << second.Summary();
  EXPECT_LT(resume_from, log.LastRevision()) << "the first watcher stopped mid-stream";
  EXPECT_EQ(second.CountOf(WatchTokensResponse::KIND_SNAPSHOT), 0) << second.Summary();
  EXPECT_EQ(second.CountOf(WatchTokensResponse::KIND_RESET), 0) << second.Summary();
  std::vector<TokenEvent> events = first->events();
  const std::vector<TokenEvent> resumed = second.events();
  events.insert(events.end(), resumed.begin(), resumed.end());
  EXPECT_TRUE(RevisionsAre(events, log.Revisions()))
      << "first: " << first->Summary() << "; second: " << second.Summary();
}

// Resumes with `request` on `stub` and expects KIND_RESET, then a snapshot equal to the store
// (as `api` lists it), then live changes: a flip of `live` (updated) arrives.
void ExpectResetSnapshotThenLive(TokenService::Stub& stub, const Api& api,
                                 const WatchTokensRequest& request, Token& live) {
  Watcher watcher(stub, request);
  ASSERT_TRUE(watcher.WaitForSynced()) << watcher.Summary();
  EXPECT_TRUE(ResetThenSnapshot(watcher.messages())) << watcher.Summary();
  const int64_t synced_at = watcher.revision();
  absl::StatusOr<std::vector<Token>> listed = ListEverything(api, request.account_id(), synced_at);
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_TRUE(ViewEquals(watcher.view(), *listed, /*deleted_may_be_absent=*/true))
      << watcher.Summary();
  absl::StatusOr<Token> flipped = Flip(api, live);
  ASSERT_TRUE(flipped.ok()) << flipped.status();
  live = *flipped;
  ASSERT_TRUE(watcher.WaitForRevision(flipped->revision())) << watcher.Summary();
  const std::vector<TokenEvent> events = watcher.events();
  ASSERT_FALSE(events.empty()) << watcher.Summary();
  EXPECT_EQ(events.back().token().revision(), flipped->revision());
  EXPECT_EQ(events.back().token().state(), flipped->state());
}

TEST(WatchStreamTest, TrimmedFutureAndForeignResumePointsGetResetThenSnapshot) {
  const std::string prefix = UniqueKeyPrefix();
  absl::StatusOr<Replicas> replicas = StartReplicas(SharedRedis(), prefix, 1);
  ASSERT_TRUE(replicas.ok()) << replicas.status();
  ServerProcess& server = *(*replicas)[0];
  const std::unique_ptr<TokenService::Stub> stub = TokenService::NewStub(server.NewChannel());
  const Api api(server.NewChannel());
  const std::string account = NewAccountId();
  std::vector<Token> tokens;
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<Token> token = NewToken(api, account);
    ASSERT_TRUE(token.ok()) << token.status();
    tokens.push_back(*token);
  }

  // A watcher that saw a change, then went away.
  int64_t seen = 0;
  std::string epoch;
  {
    Watcher watcher(*stub, FromNow(account));
    ASSERT_TRUE(watcher.WaitForSynced()) << watcher.Summary();
    absl::StatusOr<Token> flipped = Flip(api, tokens[0]);
    ASSERT_TRUE(flipped.ok()) << flipped.status();
    tokens[0] = *flipped;
    ASSERT_TRUE(watcher.WaitForRevision(flipped->revision())) << watcher.Summary();
    seen = watcher.revision();
    epoch = watcher.epoch();
  }
  ASSERT_FALSE(epoch.empty());
  EXPECT_EQ(epoch, EpochOf(api));
  // More changes (a deletion among them), then the stream loses all of its history.
  for (int i = 1; i < 4; ++i) {
    absl::StatusOr<Token> flipped = Flip(api, tokens[i]);
    ASSERT_TRUE(flipped.ok()) << flipped.status();
    tokens[i] = *flipped;
  }
  Rpc<DeleteTokenResponse> deleted = api.Delete(tokens[4].id());
  ASSERT_TRUE(deleted.ok()) << Describe(deleted.status);
  absl::StatusOr<std::vector<std::string>> trimmed =
      SharedRedis().Command({"XTRIM", absl::StrCat(prefix, ":events"), "MAXLEN", "0"});
  ASSERT_TRUE(trimmed.ok()) << trimmed.status();
  ASSERT_NE(trimmed->at(0), "0") << "the stream had entries to trim";

  {
    SCOPED_TRACE("resume below the trimmed history");
    ExpectResetSnapshotThenLive(*stub, api, ResumeAfter(seen, epoch, account), tokens[0]);
  }
  {
    SCOPED_TRACE("resume from a revision the store has not reached");
    const int64_t future = deleted.response.token().revision() + 1000;
    ExpectResetSnapshotThenLive(*stub, api, ResumeAfter(future, epoch, account), tokens[1]);
  }
  {
    SCOPED_TRACE("resume in another epoch");
    ExpectResetSnapshotThenLive(*stub, api, ResumeAfter(seen, "not-this-epoch", account),
                                tokens[2]);
  }
}

TEST(WatchStreamTest, FlushedRedisResetsConnectedWatchersIntoTheNewEpoch) {
  absl::StatusOr<std::unique_ptr<RedisInstance>> redis = RedisInstance::Start();
  ASSERT_TRUE(redis.ok()) << redis.status();
  const std::string prefix = UniqueKeyPrefix();
  absl::StatusOr<Replicas> replicas = StartReplicas(**redis, prefix, 1);
  ASSERT_TRUE(replicas.ok()) << replicas.status();
  ServerProcess& server = *(*replicas)[0];
  const std::unique_ptr<TokenService::Stub> stub = TokenService::NewStub(server.NewChannel());
  const Api api(server.NewChannel());
  const std::string account = NewAccountId();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(NewToken(api, account).ok());
  const std::string old_epoch = StoredEpoch(**redis, prefix);
  ASSERT_FALSE(old_epoch.empty());

  Watcher everything(*stub, FromNow());
  Watcher one_account(*stub, FromNow(account));
  ASSERT_TRUE(everything.WaitForSynced()) << everything.Summary();
  ASSERT_TRUE(one_account.WaitForSynced()) << one_account.Summary();
  ASSERT_EQ(everything.view().size(), 3u) << everything.Summary();

  ASSERT_TRUE((*redis)->Command({"FLUSHALL"}).ok());
  // The next change initialises the dataset again, in a new epoch, from revision 1.
  absl::StatusOr<Token> fresh = NewToken(api, account);
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  const std::string new_epoch = StoredEpoch(**redis, prefix);
  ASSERT_NE(new_epoch, old_epoch);

  for (Watcher* watcher : {&everything, &one_account}) {
    SCOPED_TRACE(watcher->Summary());
    // RESET, a snapshot of the new dataset, and the watcher at the fresh token's revision.
    ASSERT_TRUE(watcher->WaitUntil([&](const std::vector<WatchTokensResponse>& messages) {
      auto reset = std::find_if(messages.rbegin(), messages.rend(), [](const auto& message) {
        return message.kind() == WatchTokensResponse::KIND_RESET;
      });
      auto synced = std::find_if(messages.rbegin(), reset, [](const auto& message) {
        return message.kind() == WatchTokensResponse::KIND_SYNCED;
      });
      return synced != reset && messages.back().epoch() == new_epoch &&
             messages.back().revision() >= fresh->revision();
    })) << watcher->Summary();
    const std::vector<WatchTokensResponse> messages = watcher->messages();
    int last_reset = -1;
    for (size_t i = 0; i < messages.size(); ++i) {
      if (messages[i].kind() == WatchTokensResponse::KIND_RESET) last_reset = static_cast<int>(i);
    }
    ASSERT_GE(last_reset, 0) << "no KIND_RESET";
    EXPECT_TRUE(ResetThenSnapshot(
        std::vector<WatchTokensResponse>(messages.begin() + last_reset, messages.end())))
        << watcher->Summary();
    // The replica has the new dataset too (its mirror fed the watcher): the one fresh token.
    absl::StatusOr<std::vector<Token>> listed = ListEverything(api, "", fresh->revision());
    ASSERT_TRUE(listed.ok()) << listed.status();
    ASSERT_EQ(listed->size(), 1u);
    EXPECT_EQ(listed->at(0).id(), fresh->id());
    EXPECT_EQ(listed->at(0).revision(), fresh->revision());
    EXPECT_TRUE(ViewEquals(watcher->view(), *listed));
  }
}

TEST(WatchStreamTest, MinRevisionReadsYourWritesAcrossReplicas) {
  constexpr int kRounds = 100;
  absl::StatusOr<Replicas> replicas = StartReplicas(SharedRedis(), UniqueKeyPrefix(), 2);
  ASSERT_TRUE(replicas.ok()) << replicas.status();
  const Api a((*replicas)[0]->NewChannel());
  const Api b((*replicas)[1]->NewChannel());
  const std::string account = NewAccountId();
  absl::StatusOr<Token> token = NewToken(a, account);
  ASSERT_TRUE(token.ok()) << token.status();

  for (int round = 0; round < kRounds; ++round) {
    absl::StatusOr<Token> changed = Flip(a, *token);
    ASSERT_TRUE(changed.ok()) << changed.status();
    token = changed;
    GetTokenRequest get;
    get.set_token_id(token->id());
    get.set_min_revision(token->revision());
    Rpc<GetTokenResponse> got = b.Get(get);
    ASSERT_TRUE(got.ok()) << "round " << round << ": " << Describe(got.status);
    EXPECT_EQ(got.response.token().state(), token->state()) << "round " << round;
    EXPECT_EQ(got.response.token().revision(), token->revision()) << "round " << round;
    EXPECT_GE(got.response.revision(), token->revision()) << "round " << round;
    ListTokensRequest list;
    list.set_account_id(account);
    list.set_min_revision(token->revision());
    Rpc<ListTokensResponse> listed = b.List(list);
    ASSERT_TRUE(listed.ok()) << "round " << round << ": " << Describe(listed.status);
    ASSERT_EQ(listed.response.tokens_size(), 1);
    EXPECT_EQ(listed.response.tokens(0).state(), token->state()) << "round " << round;
  }

  // A revision no replica has reached: DEADLINE_EXCEEDED at the call's deadline, the message
  // naming both revisions.
  const Api impatient((*replicas)[1]->NewChannel(), absl::Milliseconds(500));
  GetTokenRequest get;
  get.set_token_id(token->id());
  const int64_t future = token->revision() + 1000;
  get.set_min_revision(future);
  Rpc<GetTokenResponse> got = impatient.Get(get);
  EXPECT_EQ(got.status.error_code(), StatusCode::DEADLINE_EXCEEDED) << Describe(got.status);
  if (!got.status.error_details().empty()) {
    // The server answered before the client gave up: its answer says why.
    EXPECT_TRUE(IsRpcError(got.status, StatusCode::DEADLINE_EXCEEDED, "REVISION_NOT_REACHED"));
    EXPECT_TRUE(absl::StrContains(got.status.error_message(), absl::StrCat(future)))
        << Describe(got.status);
    EXPECT_TRUE(absl::StrContains(got.status.error_message(), absl::StrCat(token->revision())))
        << Describe(got.status);
  }
}

}  // namespace
}  // namespace tokenstatus::integration
