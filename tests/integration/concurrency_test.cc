// Races against one real server: concurrent changes of one token, and a listing that pages
// while other clients create, delete, disable and enable tokens.

#include <latch>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "tests/integration/integration_test_util.h"

namespace tokenstatus::integration {
namespace {

using grpc::StatusCode;

class ConcurrencyTest : public ServerTest {
 protected:
  // The dataset's global revision, read from Redis.
  static int64_t GlobalRevision() {
    absl::StatusOr<std::vector<std::string>> rev = redis().Command({"GET", Key("rev")});
    EXPECT_TRUE(rev.ok()) << rev.status();
    int64_t revision = -1;
    EXPECT_TRUE(rev.ok() && absl::SimpleAtoi((*rev)[0], &revision)) << "rev is not a number";
    return revision;
  }
};

TEST_F(ConcurrencyTest, FiftyConcurrentDisablesOneSucceeds) {
  constexpr int kCalls = 50;
  constexpr int kChannels = 5;
  const std::string id = NewTokenId();
  Rpc<CreateTokenResponse> created = api().Create(ImportRequest(id, NewSecret(id), NewAccountId()));
  ASSERT_TRUE(created.ok()) << Describe(created.status);
  const int64_t before = GlobalRevision();

  std::vector<std::unique_ptr<Api>> clients;
  for (int i = 0; i < kChannels; ++i) {
    clients.push_back(std::make_unique<Api>(NewDedicatedChannel(server().address())));
  }
  std::vector<Rpc<DisableTokenResponse>> results(kCalls);
  std::latch start(kCalls);
  std::vector<std::thread> threads;
  for (int i = 0; i < kCalls; ++i) {
    threads.emplace_back([&, i] {
      DisableTokenRequest request;
      request.set_token_id(id);
      request.set_reason("race");
      start.arrive_and_wait();
      results[i] = clients[i % kChannels]->Disable(request);
    });
  }
  for (std::thread& thread : threads) thread.join();

  int ok = 0;
  int already_disabled = 0;
  int64_t disabled_revision = 0;
  for (const Rpc<DisableTokenResponse>& result : results) {
    if (result.ok()) {
      ++ok;
      disabled_revision = result.response.token().revision();
    } else if (IsRpcError(result.status, StatusCode::FAILED_PRECONDITION,
                          "TOKEN_ALREADY_DISABLED")) {
      ++already_disabled;
    } else {
      ADD_FAILURE() << "unexpected outcome: " << Describe(result.status);
    }
  }
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(already_disabled, kCalls - 1);
  EXPECT_EQ(GlobalRevision(), before + 1);
  EXPECT_EQ(disabled_revision, before + 1);

  absl::StatusOr<std::vector<StreamEntry>> stream = ReadStream(redis(), Key("events"));
  ASSERT_TRUE(stream.ok()) << stream.status();
  std::vector<StreamEntry> after_create;
  for (const StreamEntry& entry : *stream) {
    if (entry.HasValue(id) && entry.Revision() > created.response.token().revision()) {
      after_create.push_back(entry);
    }
  }
  ASSERT_EQ(after_create.size(), 1u) << "exactly one event after the creation";
  EXPECT_EQ(after_create[0].Revision(), before + 1);
  EXPECT_EQ(Normalized(after_create[0].Field("type"), "TYPE_"), "DISABLED");
}

// Pages through one account's tokens while another client keeps changing that account: stable
// tokens (which exist throughout) are disabled and enabled, and churn tokens, whose ids lie
// between theirs, are created and deleted. Every page waits for at least one more change, so
// the listing really spans concurrent writes.
TEST_F(ConcurrencyTest, ListingDuringWritesReturnsEveryStableTokenOnce) {
  constexpr int kStable = 150;
  constexpr int kPageSize = 7;
  const std::string account = NewAccountId();
  // Ids interleave: stable at even positions, churn at odd ones.
  const std::vector<std::string> ids = NewTokenIds(2 * kStable);
  std::vector<std::string> stable, churn;
  for (int i = 0; i < 2 * kStable; ++i) (i % 2 == 0 ? stable : churn).push_back(ids[i]);
  for (const std::string& id : stable) {
    Rpc<CreateTokenResponse> created = api().Create(ImportRequest(id, NewSecret(id), account));
    ASSERT_TRUE(created.ok()) << Describe(created.status);
  }

  absl::Mutex mu;
  int changes = 0;    // guarded by mu
  bool stop = false;  // guarded by mu
  std::thread writer([&] {
    const Api writer_api(NewDedicatedChannel(server().address()));
    for (int round = 0;; ++round) {
      {
        absl::MutexLock lock(&mu);
        if (stop) return;
      }
      const int i = round % kStable;
      // Round r creates churn[i] the first time around and deletes it the second time; it also
      // flips stable[i] between ACTIVE and DISABLED.
      const bool first_pass = (round / kStable) % 2 == 0;
      if (first_pass && round < kStable) {
        Rpc<CreateTokenResponse> created =
            writer_api.Create(ImportRequest(churn[i], NewSecret(churn[i]), account));
        EXPECT_TRUE(created.ok()) << Describe(created.status);
      } else if (!first_pass && round < 2 * kStable) {
        EXPECT_TRUE(writer_api.Delete(churn[i]).ok());
      }
      const bool ok = (round / kStable) % 2 == 0 ? writer_api.Disable(stable[i]).ok()
                                                 : writer_api.Enable(stable[i]).ok();
      EXPECT_TRUE(ok) << "flip of " << stable[i] << " in round " << round;
      absl::MutexLock lock(&mu);
      ++changes;
    }
  });

  std::vector<std::string> listed;
  ListTokensRequest request;
  request.set_account_id(account);
  request.set_page_size(kPageSize);
  int pages = 0;
  while (true) {
    Rpc<ListTokensResponse> page = api().List(request);
    ASSERT_TRUE(page.ok()) << Describe(page.status);
    ++pages;
    for (const Token& token : page.response.tokens()) {
      EXPECT_EQ(token.account_id(), account);
      EXPECT_NE(token.state(), Token::STATE_DELETED) << token.id();
      listed.push_back(token.id());
    }
    if (page.response.next_page_token().empty()) break;
    request.set_page_token(page.response.next_page_token());
    absl::MutexLock lock(&mu);
    const int seen = changes;
    auto advanced = [&]() { return changes > seen; };
    mu.Await(absl::Condition(&advanced));
  }
  {
    absl::MutexLock lock(&mu);
    stop = true;
  }
  writer.join();

  EXPECT_GE(pages, kStable / kPageSize);
  for (size_t i = 1; i < listed.size(); ++i) {
    EXPECT_LT(listed[i - 1], listed[i]) << "ids strictly increase, so none is listed twice";
  }
  std::multiset<std::string> listed_set(listed.begin(), listed.end());
  for (const std::string& id : stable) {
    EXPECT_EQ(listed_set.count(id), 1u) << id << " existed throughout";
  }
}

}  // namespace
}  // namespace tokenstatus::integration
