// The event stream in Redis (<prefix>:events) against the changes made through the API: one
// event per change, none for a refused change, entry ids "<revision>-0", revisions strictly
// increasing, and the layout the Watch follower will read.

#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/integration_test_util.h"

namespace tokenstatus::integration {
namespace {

using EventStreamTest = ServerTest;

// What one acknowledged change should have written to the stream.
struct ExpectedEvent {
  std::string token_id;
  std::string type;   // CREATED, ENABLED, DISABLED, DELETED
  std::string state;  // ACTIVE, DISABLED, DELETED
  int64_t revision;
};

TEST_F(EventStreamTest, EventsMatchTheChangesOneForOne) {
  const std::string account = NewAccountId();
  const std::vector<std::string> ids = NewTokenIds(3);
  std::vector<ExpectedEvent> expected;
  auto record = [&expected](const std::string& type, const grpc::Status& status,
                            const Token& token) {
    ASSERT_TRUE(status.ok()) << type << " " << token.id() << ": " << Describe(status);
    const std::string state(Normalized(Token::State_Name(token.state()), "STATE_"));
    expected.push_back({token.id(), type, state, token.revision()});
  };
  for (const std::string& id : ids) {
    Rpc<CreateTokenResponse> created = api().Create(ImportRequest(id, NewSecret(id), account));
    record("CREATED", created.status, created.response.token());
  }
  Rpc<DisableTokenResponse> disabled = api().Disable(ids[0]);
  record("DISABLED", disabled.status, disabled.response.token());
  // Refused changes write no event.
  EXPECT_FALSE(api().Disable(ids[0]).ok());
  EXPECT_FALSE(api().Enable(ids[1]).ok());
  Rpc<EnableTokenResponse> enabled = api().Enable(ids[0]);
  record("ENABLED", enabled.status, enabled.response.token());
  Rpc<DeleteTokenResponse> deleted = api().Delete(ids[1]);
  record("DELETED", deleted.status, deleted.response.token());
  EXPECT_FALSE(api().Delete(ids[1]).ok());
  disabled = api().Disable(ids[2]);
  record("DISABLED", disabled.status, disabled.response.token());
  deleted = api().Delete(ids[2]);
  record("DELETED", deleted.status, deleted.response.token());
  for (size_t i = 1; i < expected.size(); ++i) {
    EXPECT_GT(expected[i].revision, expected[i - 1].revision) << "acknowledged in this order";
  }

  absl::StatusOr<std::vector<StreamEntry>> stream = ReadStream(redis(), Key("events"));
  ASSERT_TRUE(stream.ok()) << stream.status();
  ASSERT_FALSE(stream->empty());

  // The whole stream: revisions strictly increasing and gapless from 1 (every revision was
  // taken by a change, and every change wrote its event), up to the global revision.
  for (size_t i = 0; i < stream->size(); ++i) {
    const StreamEntry& entry = (*stream)[i];
    ASSERT_GT(entry.Revision(), 0) << "entry id " << entry.id << " is not <revision>-0";
    EXPECT_EQ(entry.Revision(), static_cast<int64_t>(i) + 1) << "entry " << entry.id;
    ASSERT_FALSE(entry.fields.empty());
    EXPECT_EQ(entry.fields[0].first, "type") << "an event starts with its type";
    EXPECT_EQ(entry.Field("revision"), absl::StrCat(entry.Revision())) << entry.id;
  }
  absl::StatusOr<std::vector<std::string>> rev = redis().Command({"GET", Key("rev")});
  ASSERT_TRUE(rev.ok()) << rev.status();
  EXPECT_EQ((*rev)[0], absl::StrCat(stream->back().Revision()));

  // This test's events, one for one with its acknowledged changes.
  std::vector<ExpectedEvent> actual;
  for (const StreamEntry& entry : *stream) {
    for (const std::string& id : ids) {
      if (!entry.HasValue(id)) continue;
      actual.push_back({id, Normalized(entry.Field("type"), "TYPE_"),
                        Normalized(entry.Field("state"), "STATE_"), entry.Revision()});
    }
  }
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("change ", i, ": ", expected[i].type, " ", expected[i].token_id));
    EXPECT_EQ(actual[i].token_id, expected[i].token_id);
    EXPECT_EQ(actual[i].type, expected[i].type);
    EXPECT_EQ(actual[i].state, expected[i].state);
    EXPECT_EQ(actual[i].revision, expected[i].revision);
  }
}

TEST_F(EventStreamTest, ListingCarriesTheEpochStoredInMeta) {
  const std::string id = NewTokenId();
  ASSERT_TRUE(api().Create(ImportRequest(id, NewSecret(id), NewAccountId())).ok());
  Rpc<ListTokensResponse> page = api().List(ListTokensRequest());
  ASSERT_TRUE(page.ok()) << Describe(page.status);
  absl::StatusOr<std::vector<std::string>> epoch = redis().Command({"HGET", Key("meta"), "epoch"});
  ASSERT_TRUE(epoch.ok()) << epoch.status();
  EXPECT_FALSE((*epoch)[0].empty());
  EXPECT_EQ(page.response.epoch(), (*epoch)[0]);
  absl::StatusOr<std::vector<std::string>> rev = redis().Command({"GET", Key("rev")});
  ASSERT_TRUE(rev.ok()) << rev.status();
  int64_t revision = 0;
  ASSERT_TRUE(absl::SimpleAtoi((*rev)[0], &revision));
  EXPECT_EQ(page.response.revision(), revision);
}

}  // namespace
}  // namespace tokenstatus::integration
