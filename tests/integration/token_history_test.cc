// ListTokenEvents against a real server on a real Redis, through a real gRPC channel: a token's
// history, newest first, paged, and its errors.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "google/protobuf/util/message_differencer.h"
#include "grpcpp/support/time.h"
#include "gtest/gtest.h"
#include "tests/integration/integration_test_util.h"

namespace tokenstatus::integration {
namespace {

using apitoken::v1::ListTokenEventsRequest;
using apitoken::v1::ListTokenEventsResponse;
using apitoken::v1::TokenEvent;
using google::protobuf::util::MessageDifferencer;
using grpc::StatusCode;

// One change as its RPC answered it: what it did and the token after it.
struct Change {
  TokenEvent::Type type;
  Token token;
};

class TokenHistoryTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    if (HasFatalFailure()) return;
    stub_ = TokenService::NewStub(server().NewChannel());
  }

  Rpc<ListTokenEventsResponse> ListEvents(const std::string& token_id, int page_size = 0,
                                          const std::string& page_token = "") const {
    ListTokenEventsRequest request;
    request.set_token_id(token_id);
    request.set_page_size(page_size);
    request.set_page_token(page_token);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + kRpcTimeout));
    Rpc<ListTokenEventsResponse> rpc;
    rpc.status = stub_->ListTokenEvents(&context, request, &rpc.response);
    return rpc;
  }

  // Creates a token, then disables, enables and disables it with reasons; returns the four
  // changes newest first.
  static std::vector<Change> MakeHistory() {
    const std::string id = NewTokenId();
    std::vector<Change> changes;
    Rpc<CreateTokenResponse> created =
        api().Create(ImportRequest(id, NewSecret(id), NewAccountId()));
    EXPECT_TRUE(created.ok()) << Describe(created.status);
    changes.push_back({TokenEvent::TYPE_CREATED, created.response.token()});
    DisableTokenRequest disable;
    disable.set_token_id(id);
    disable.set_reason("leaked in a log");
    Rpc<DisableTokenResponse> disabled = api().Disable(disable);
    EXPECT_TRUE(disabled.ok()) << Describe(disabled.status);
    changes.push_back({TokenEvent::TYPE_DISABLED, disabled.response.token()});
    EnableTokenRequest enable;
    enable.set_token_id(id);
    enable.set_reason("rotated the log store");
    Rpc<EnableTokenResponse> enabled = api().Enable(enable);
    EXPECT_TRUE(enabled.ok()) << Describe(enabled.status);
    changes.push_back({TokenEvent::TYPE_ENABLED, enabled.response.token()});
    disable.set_reason("owner left the team");
    Rpc<DisableTokenResponse> disabled_again = api().Disable(disable);
    EXPECT_TRUE(disabled_again.ok()) << Describe(disabled_again.status);
    changes.push_back({TokenEvent::TYPE_DISABLED, disabled_again.response.token()});
    return {changes.rbegin(), changes.rend()};
  }

  // Checks that `events` are exactly `changes`, in order.
  static void ExpectEvents(const std::vector<TokenEvent>& events,
                           const std::vector<Change>& changes) {
    ASSERT_EQ(events.size(), changes.size());
    for (size_t i = 0; i < events.size(); ++i) {
      SCOPED_TRACE(i);
      EXPECT_EQ(events[i].type(), changes[i].type);
      EXPECT_TRUE(MessageDifferencer::Equals(events[i].token(), changes[i].token))
          << events[i].token().DebugString() << " vs " << changes[i].token.DebugString();
      EXPECT_TRUE(events[i].token().secret_sha256().empty()) << "responses never carry the hash";
    }
  }

  std::unique_ptr<TokenService::Stub> stub_;
};

TEST_F(TokenHistoryTest, FourChangesNewestFirst) {
  const std::vector<Change> changes = MakeHistory();
  ASSERT_FALSE(HasFailure());
  const std::string& id = changes.front().token.id();
  Rpc<ListTokenEventsResponse> history = ListEvents(id);
  ASSERT_TRUE(history.ok()) << Describe(history.status);
  EXPECT_TRUE(history.response.next_page_token().empty());
  const std::vector<TokenEvent> events(history.response.events().begin(),
                                       history.response.events().end());
  ExpectEvents(events, changes);
  // The same, spelled out: what, why, by whom, when, in which order.
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].type(), TokenEvent::TYPE_DISABLED);
  EXPECT_EQ(events[0].token().state_reason(), "owner left the team");
  EXPECT_EQ(events[1].type(), TokenEvent::TYPE_ENABLED);
  EXPECT_EQ(events[1].token().state_reason(), "rotated the log store");
  EXPECT_EQ(events[2].type(), TokenEvent::TYPE_DISABLED);
  EXPECT_EQ(events[2].token().state_reason(), "leaked in a log");
  EXPECT_EQ(events[3].type(), TokenEvent::TYPE_CREATED);
  EXPECT_EQ(events[3].token().state(), Token::STATE_ACTIVE);
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].token().id(), id);
    EXPECT_FALSE(events[i].token().updated_by().empty());
    if (i > 0) {
      EXPECT_LT(events[i].token().revision(), events[i - 1].token().revision());
    }
  }
}

TEST_F(TokenHistoryTest, PageSizeOneWalksEveryChange) {
  const std::vector<Change> changes = MakeHistory();
  ASSERT_FALSE(HasFailure());
  const std::string& id = changes.front().token.id();
  std::vector<TokenEvent> events;
  std::string page_token;
  for (size_t page = 0; page < changes.size(); ++page) {
    SCOPED_TRACE(page);
    Rpc<ListTokenEventsResponse> history = ListEvents(id, 1, page_token);
    ASSERT_TRUE(history.ok()) << Describe(history.status);
    ASSERT_EQ(history.response.events_size(), 1);
    events.push_back(history.response.events(0));
    page_token = history.response.next_page_token();
    EXPECT_EQ(page_token.empty(), page + 1 == changes.size());
  }
  ExpectEvents(events, changes);

  // A page token continues only the history it was made for.
  Rpc<ListTokenEventsResponse> first = ListEvents(id, 3);
  ASSERT_TRUE(first.ok()) << Describe(first.status);
  ASSERT_EQ(first.response.events_size(), 3);
  ASSERT_FALSE(first.response.next_page_token().empty());
  Rpc<ListTokenEventsResponse> rest = ListEvents(id, 3, first.response.next_page_token());
  ASSERT_TRUE(rest.ok()) << Describe(rest.status);
  ASSERT_EQ(rest.response.events_size(), 1);
  EXPECT_EQ(rest.response.events(0).type(), TokenEvent::TYPE_CREATED);
  EXPECT_TRUE(rest.response.next_page_token().empty());
  const std::vector<Change> others = MakeHistory();
  ASSERT_FALSE(HasFailure());
  EXPECT_TRUE(
      IsRpcError(ListEvents(others.front().token.id(), 3, first.response.next_page_token()).status,
                 StatusCode::INVALID_ARGUMENT, "INVALID_PAGE_TOKEN", "page_token"));
}

TEST_F(TokenHistoryTest, UnknownTokenIsNotFound) {
  EXPECT_TRUE(
      IsRpcError(ListEvents(NewTokenId()).status, StatusCode::NOT_FOUND, "TOKEN_NOT_FOUND"));
}

TEST_F(TokenHistoryTest, InvalidRequestsAreRefused) {
  const std::vector<Change> changes = MakeHistory();
  ASSERT_FALSE(HasFailure());
  const std::string& id = changes.front().token.id();
  EXPECT_TRUE(IsRpcError(ListEvents("TKN-12").status, StatusCode::INVALID_ARGUMENT,
                         "INVALID_TOKEN_ID", "token_id"));
  EXPECT_TRUE(IsRpcError(ListEvents(id, -1).status, StatusCode::INVALID_ARGUMENT,
                         "INVALID_PAGE_SIZE", "page_size"));
  EXPECT_TRUE(IsRpcError(ListEvents(id, 0, "not a page token").status, StatusCode::INVALID_ARGUMENT,
                         "INVALID_PAGE_TOKEN", "page_token"));
  // A ListTokens page token is not a history page token (two tokens: a listing with a next page).
  MakeHistory();
  ASSERT_FALSE(HasFailure());
  ListTokensRequest list;
  list.set_page_size(1);
  Rpc<ListTokensResponse> listed = api().List(list);
  ASSERT_TRUE(listed.ok()) << Describe(listed.status);
  ASSERT_FALSE(listed.response.next_page_token().empty());
  EXPECT_TRUE(IsRpcError(ListEvents(id, 0, listed.response.next_page_token()).status,
                         StatusCode::INVALID_ARGUMENT, "INVALID_PAGE_TOKEN", "page_token"));
  // A large page size is clamped, not refused.
  Rpc<ListTokenEventsResponse> clamped = ListEvents(id, 1000000);
  ASSERT_TRUE(clamped.ok()) << Describe(clamped.status);
  EXPECT_EQ(clamped.response.events_size(), 4);
}

}  // namespace
}  // namespace tokenstatus::integration
