// Every RPC of apitoken.v1.TokenService and every error it documents, against a real server on
// a real Redis, through a real gRPC channel.

#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/integration_test_util.h"

namespace tokenstatus::integration {
namespace {

using grpc::StatusCode;

class TokenApiTest : public ServerTest {
 protected:
  // Creates an ACTIVE token by import; fails the test (and returns an empty token) otherwise.
  static Token Import(const std::string& token_id, const std::string& secret,
                      const std::string& account_id) {
    Rpc<CreateTokenResponse> created = api().Create(ImportRequest(token_id, secret, account_id));
    EXPECT_TRUE(created.ok()) << Describe(created.status);
    return created.response.token();
  }
};

TEST_F(TokenApiTest, CreateAllocatesIdAndSecretShownOnce) {
  const std::string account = NewAccountId();
  CreateTokenRequest request;
  request.set_account_id(account);
  request.set_name("ci deploy key");
  request.set_description("used by the nightly job");
  Rpc<CreateTokenResponse> created = api().Create(request);
  ASSERT_TRUE(created.ok()) << Describe(created.status);
  const Token& token = created.response.token();

  EXPECT_TRUE(std::regex_match(token.id(), std::regex(R"(TKN-\d{4}-\d{4})"))) << token.id();
  EXPECT_EQ(token.account_id(), account);
  EXPECT_EQ(token.name(), "ci deploy key");
  EXPECT_EQ(token.description(), "used by the nightly job");
  EXPECT_EQ(token.state(), Token::STATE_ACTIVE);
  EXPECT_GT(token.revision(), 0);
  EXPECT_GT(token.create_time().seconds(), 0);
  EXPECT_FALSE(token.updated_by().empty());
  EXPECT_TRUE(token.secret_sha256().empty()) << "responses never carry the hash";
  // idt:<id>:<at least 32 random bytes, base62 or base64url> (32 bytes = 43 characters).
  EXPECT_TRUE(std::regex_match(created.response.secret(),
                               std::regex(absl::StrCat("idt:", token.id(), ":[A-Za-z0-9_-]{43,}"))))
      << created.response.secret();

  Rpc<VerifyTokenResponse> verified = api().Verify(created.response.secret());
  ASSERT_TRUE(verified.ok()) << Describe(verified.status);
  EXPECT_EQ(verified.response.result(), VerifyTokenResponse::RESULT_VALID);
  EXPECT_EQ(verified.response.token_id(), token.id());
  EXPECT_EQ(verified.response.account_id(), account);
  EXPECT_EQ(verified.response.revision(), token.revision());

  // Shown once: nothing returns it again.
  Rpc<GetTokenResponse> got = api().Get(token.id());
  ASSERT_TRUE(got.ok()) << Describe(got.status);
  EXPECT_EQ(got.response.token().DebugString().find(created.response.secret()), std::string::npos);

  // A second token gets another id and another secret.
  Rpc<CreateTokenResponse> other = api().Create(request);
  ASSERT_TRUE(other.ok()) << Describe(other.status);
  EXPECT_NE(other.response.token().id(), token.id());
  EXPECT_NE(other.response.secret(), created.response.secret());
}

// Every value of every key of the dataset, flattened, for "is this string stored anywhere".
std::vector<std::string> DumpDataset(testing::RedisInstance& redis, const std::string& prefix) {
  std::vector<std::string> values;
  std::string cursor = "0";
  do {
    absl::StatusOr<testing::RedisReply> scan =
        redis.CommandReply({"SCAN", cursor, "MATCH", prefix + "*", "COUNT", "1000"});
    EXPECT_TRUE(scan.ok()) << scan.status();
    if (!scan.ok()) return values;
    cursor = scan->elements[0].str;
    for (const testing::RedisReply& key : scan->elements[1].elements) {
      values.push_back(key.str);
      absl::StatusOr<std::vector<std::string>> type = redis.Command({"TYPE", key.str});
      EXPECT_TRUE(type.ok()) << type.status();
      if (!type.ok()) continue;
      std::vector<std::string> read;
      const std::string& t = (*type)[0];
      if (t == "string") read = {"GET", key.str};
      if (t == "hash") read = {"HGETALL", key.str};
      if (t == "zset") read = {"ZRANGE", key.str, "0", "-1", "WITHSCORES"};
      if (t == "set") read = {"SMEMBERS", key.str};
      if (t == "list") read = {"LRANGE", key.str, "0", "-1"};
      if (t == "stream") read = {"XRANGE", key.str, "-", "+"};
      EXPECT_FALSE(read.empty()) << "unexpected key type " << t << " of " << key.str;
      if (read.empty()) continue;
      absl::StatusOr<std::vector<std::string>> content = redis.Command(read);
      EXPECT_TRUE(content.ok()) << content.status();
      if (content.ok()) values.insert(values.end(), content->begin(), content->end());
    }
  } while (cursor != "0");
  return values;
}

TEST_F(TokenApiTest, SecretIsNeverStoredOnlyItsSha256) {
  CreateTokenRequest request;
  request.set_account_id(NewAccountId());
  request.set_name("secret check");
  Rpc<CreateTokenResponse> created = api().Create(request);
  ASSERT_TRUE(created.ok()) << Describe(created.status);
  const std::string& secret = created.response.secret();
  const std::string opaque = secret.substr(secret.rfind(':') + 1);
  ASSERT_GE(opaque.size(), 43u);
  // Changes write the record and the stream again.
  ASSERT_TRUE(api().Disable(created.response.token().id()).ok());

  std::vector<std::string> stored = DumpDataset(redis(), key_prefix());
  ASSERT_FALSE(stored.empty());
  for (const std::string& value : stored) {
    EXPECT_EQ(value.find(opaque), std::string::npos) << "the secret is stored: " << value;
  }
  absl::StatusOr<std::vector<std::string>> hash = redis().Command(
      {"HGET", Key(absl::StrCat("t:", created.response.token().id())), "secret_sha256"});
  ASSERT_TRUE(hash.ok()) << hash.status();
  EXPECT_EQ(absl::AsciiStrToLower((*hash)[0]), Sha256Hex(secret));
}

TEST_F(TokenApiTest, ImportKeepsTheGivenIdAndHash) {
  const std::string id = NewTokenId();
  const std::string secret = NewSecret(id);
  const std::string account = NewAccountId();
  CreateTokenRequest request = ImportRequest(id, secret, account);
  request.set_secret_sha256(absl::AsciiStrToUpper(request.secret_sha256()));  // either case
  Rpc<CreateTokenResponse> created = api().Create(request);
  ASSERT_TRUE(created.ok()) << Describe(created.status);
  EXPECT_EQ(created.response.token().id(), id);
  EXPECT_EQ(created.response.token().state(), Token::STATE_ACTIVE);
  EXPECT_TRUE(created.response.secret().empty());

  Rpc<VerifyTokenResponse> verified = api().Verify(secret);
  ASSERT_TRUE(verified.ok()) << Describe(verified.status);
  EXPECT_EQ(verified.response.result(), VerifyTokenResponse::RESULT_VALID);
  EXPECT_EQ(verified.response.token_id(), id);
}

TEST_F(TokenApiTest, DuplicateIdIsAlreadyExistsInEveryState) {
  const std::string id = NewTokenId();
  const std::string account = NewAccountId();
  Import(id, NewSecret(id), account);
  Rpc<CreateTokenResponse> again = api().Create(ImportRequest(id, NewSecret(id), account));
  EXPECT_TRUE(IsRpcError(again.status, StatusCode::ALREADY_EXISTS, "TOKEN_ALREADY_EXISTS"));

  ASSERT_TRUE(api().Delete(id).ok());
  again = api().Create(ImportRequest(id, NewSecret(id), account));
  EXPECT_TRUE(IsRpcError(again.status, StatusCode::ALREADY_EXISTS, "TOKEN_ALREADY_EXISTS"));
}

TEST_F(TokenApiTest, GetReturnsTheTokenAndTheRevisionItWasServedAt) {
  const std::string id = NewTokenId();
  const Token created = Import(id, NewSecret(id), NewAccountId());
  GetTokenRequest request;
  request.set_token_id(id);
  request.set_min_revision(created.revision());
  Rpc<GetTokenResponse> got = api().Get(request);
  ASSERT_TRUE(got.ok()) << Describe(got.status);
  EXPECT_EQ(got.response.token().id(), id);
  EXPECT_EQ(got.response.token().state(), Token::STATE_ACTIVE);
  EXPECT_EQ(got.response.token().revision(), created.revision());
  EXPECT_EQ(got.response.token().name(), created.name());
  EXPECT_GE(got.response.revision(), created.revision());
  EXPECT_TRUE(got.response.token().secret_sha256().empty());

  // A revision no replica has reached: the read waits for it until (just before) its deadline.
  request.set_min_revision(got.response.revision() + 1000000);
  const Api impatient(server().NewChannel(), absl::Milliseconds(500));
  Rpc<GetTokenResponse> ahead = impatient.Get(request);
  EXPECT_TRUE(IsRpcError(ahead.status, StatusCode::DEADLINE_EXCEEDED, "REVISION_NOT_REACHED"))
      << Describe(ahead.status);
}

TEST_F(TokenApiTest, StateMachine) {
  const std::string id = NewTokenId();
  const Token created = Import(id, NewSecret(id), NewAccountId());

  Rpc<EnableTokenResponse> enable_active = api().Enable(id);
  EXPECT_TRUE(
      IsRpcError(enable_active.status, StatusCode::FAILED_PRECONDITION, "TOKEN_ALREADY_ACTIVE"));

  DisableTokenRequest disable;
  disable.set_token_id(id);
  disable.set_reason("leaked in a log");
  Rpc<DisableTokenResponse> disabled = api().Disable(disable);
  ASSERT_TRUE(disabled.ok()) << Describe(disabled.status);
  EXPECT_EQ(disabled.response.token().state(), Token::STATE_DISABLED);
  EXPECT_EQ(disabled.response.token().state_reason(), "leaked in a log");
  EXPECT_GT(disabled.response.token().revision(), created.revision());
  EXPECT_FALSE(disabled.response.token().updated_by().empty());
  EXPECT_TRUE(disabled.response.token().secret_sha256().empty());
  EXPECT_EQ(disabled.response.token().create_time().seconds(), created.create_time().seconds());
  EXPECT_GE(disabled.response.token().update_time().seconds(), created.update_time().seconds());

  Rpc<DisableTokenResponse> disable_again = api().Disable(id);
  EXPECT_TRUE(
      IsRpcError(disable_again.status, StatusCode::FAILED_PRECONDITION, "TOKEN_ALREADY_DISABLED"));
  Rpc<GetTokenResponse> unchanged = api().Get(id);
  ASSERT_TRUE(unchanged.ok());
  EXPECT_EQ(unchanged.response.token().revision(), disabled.response.token().revision())
      << "a refused change writes nothing";

  Rpc<EnableTokenResponse> enabled = api().Enable(id);
  ASSERT_TRUE(enabled.ok()) << Describe(enabled.status);
  EXPECT_EQ(enabled.response.token().state(), Token::STATE_ACTIVE);
  EXPECT_GT(enabled.response.token().revision(), disabled.response.token().revision());

  Rpc<DeleteTokenResponse> deleted = api().Delete(id);
  ASSERT_TRUE(deleted.ok()) << Describe(deleted.status);
  EXPECT_EQ(deleted.response.token().state(), Token::STATE_DELETED);
  EXPECT_GT(deleted.response.token().revision(), enabled.response.token().revision());

  // DELETED is terminal; the record stays readable.
  EXPECT_TRUE(
      IsRpcError(api().Enable(id).status, StatusCode::FAILED_PRECONDITION, "TOKEN_DELETED"));
  EXPECT_TRUE(
      IsRpcError(api().Disable(id).status, StatusCode::FAILED_PRECONDITION, "TOKEN_DELETED"));
  EXPECT_TRUE(
      IsRpcError(api().Delete(id).status, StatusCode::FAILED_PRECONDITION, "TOKEN_DELETED"));
  Rpc<GetTokenResponse> got = api().Get(id);
  ASSERT_TRUE(got.ok()) << Describe(got.status);
  EXPECT_EQ(got.response.token().state(), Token::STATE_DELETED);
  EXPECT_EQ(got.response.token().revision(), deleted.response.token().revision());
}

TEST_F(TokenApiTest, DeleteOfADisabledToken) {
  const std::string id = NewTokenId();
  Import(id, NewSecret(id), NewAccountId());
  ASSERT_TRUE(api().Disable(id).ok());
  Rpc<DeleteTokenResponse> deleted = api().Delete(id);
  ASSERT_TRUE(deleted.ok()) << Describe(deleted.status);
  EXPECT_EQ(deleted.response.token().state(), Token::STATE_DELETED);
}

TEST_F(TokenApiTest, UnknownTokenIsNotFound) {
  const std::string id = NewTokenId();
  EXPECT_TRUE(IsRpcError(api().Get(id).status, StatusCode::NOT_FOUND, "TOKEN_NOT_FOUND"));
  EXPECT_TRUE(IsRpcError(api().Enable(id).status, StatusCode::NOT_FOUND, "TOKEN_NOT_FOUND"));
  EXPECT_TRUE(IsRpcError(api().Disable(id).status, StatusCode::NOT_FOUND, "TOKEN_NOT_FOUND"));
  EXPECT_TRUE(IsRpcError(api().Delete(id).status, StatusCode::NOT_FOUND, "TOKEN_NOT_FOUND"));
}

TEST_F(TokenApiTest, ExpectedRevisionMismatchIsAborted) {
  const std::string id = NewTokenId();
  const Token created = Import(id, NewSecret(id), NewAccountId());

  DisableTokenRequest stale;
  stale.set_token_id(id);
  stale.set_expected_revision(created.revision() + 1);
  Rpc<DisableTokenResponse> refused = api().Disable(stale);
  ASSERT_TRUE(IsRpcError(refused.status, StatusCode::ABORTED, "REVISION_MISMATCH"));
  absl::StatusOr<google::rpc::ErrorInfo> info = ErrorInfoOf(refused.status);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->metadata().at("current_revision"), absl::StrCat(created.revision()));

  DisableTokenRequest current = stale;
  current.set_expected_revision(created.revision());
  Rpc<DisableTokenResponse> disabled = api().Disable(current);
  ASSERT_TRUE(disabled.ok()) << Describe(disabled.status);

  // The state is checked before the revision.
  EXPECT_TRUE(IsRpcError(api().Disable(stale).status, StatusCode::FAILED_PRECONDITION,
                         "TOKEN_ALREADY_DISABLED"));

  EnableTokenRequest enable;
  enable.set_token_id(id);
  enable.set_expected_revision(created.revision());  // stale now
  EXPECT_TRUE(IsRpcError(api().Enable(enable).status, StatusCode::ABORTED, "REVISION_MISMATCH"));
  DeleteTokenRequest remove;
  remove.set_token_id(id);
  remove.set_expected_revision(created.revision());
  EXPECT_TRUE(IsRpcError(api().Delete(remove).status, StatusCode::ABORTED, "REVISION_MISMATCH"));
  remove.set_expected_revision(disabled.response.token().revision());
  EXPECT_TRUE(api().Delete(remove).ok());
}

TEST_F(TokenApiTest, VerifyAnswersEveryResult) {
  const std::string account = NewAccountId();
  const std::string id = NewTokenId();
  const std::string secret = NewSecret(id);
  const Token created = Import(id, secret, account);

  auto verify = [](const std::string& secret) {
    Rpc<VerifyTokenResponse> verified = api().Verify(secret);
    EXPECT_TRUE(verified.ok()) << "a bad secret is an answer, not an error: "
                               << Describe(verified.status);
    return verified.response;
  };

  VerifyTokenResponse valid = verify(secret);
  EXPECT_EQ(valid.result(), VerifyTokenResponse::RESULT_VALID);
  EXPECT_EQ(valid.token_id(), id);
  EXPECT_EQ(valid.account_id(), account);
  EXPECT_EQ(valid.revision(), created.revision());

  // A wrong secret of an existing id and a secret of an unknown id look the same.
  for (const std::string& unknown : {NewSecret(id), NewSecret(NewTokenId())}) {
    VerifyTokenResponse not_found = verify(unknown);
    EXPECT_EQ(not_found.result(), VerifyTokenResponse::RESULT_NOT_FOUND) << unknown;
    EXPECT_EQ(not_found.token_id(), "") << "must not reveal that the id exists";
    EXPECT_EQ(not_found.account_id(), "");
    EXPECT_EQ(not_found.revision(), 0);
  }

  for (const std::string& malformed :
       {std::string(""), std::string("garbage"), absl::StrCat("idt:", id),
        absl::StrCat("idt:", id, ":"), absl::StrCat("idt:TKN-12-34:", std::string(43, 'a')),
        absl::StrCat("xyz:", id, ":", std::string(43, 'a')),
        absl::StrCat("idt:", id, ":", std::string(43, '!'))}) {
    EXPECT_EQ(verify(malformed).result(), VerifyTokenResponse::RESULT_MALFORMED)
        << "\"" << malformed << "\"";
  }

  ASSERT_TRUE(api().Disable(id).ok());
  VerifyTokenResponse disabled = verify(secret);
  EXPECT_EQ(disabled.result(), VerifyTokenResponse::RESULT_DISABLED);
  EXPECT_EQ(disabled.token_id(), id);
  EXPECT_EQ(verify(NewSecret(id)).result(), VerifyTokenResponse::RESULT_NOT_FOUND);

  ASSERT_TRUE(api().Enable(id).ok());
  EXPECT_EQ(verify(secret).result(), VerifyTokenResponse::RESULT_VALID);

  ASSERT_TRUE(api().Delete(id).ok());
  VerifyTokenResponse deleted = verify(secret);
  EXPECT_EQ(deleted.result(), VerifyTokenResponse::RESULT_DELETED);
  EXPECT_EQ(deleted.token_id(), id);
}

TEST_F(TokenApiTest, MalformedTokenIdsAreInvalidArgument) {
  const std::string account = NewAccountId();
  for (const std::string bad :
       {"", "TKN-123-4567", "tkn-1234-5678", "TKN-1234", "TKN-1234-5678-", "TKN_1234_5678",
        "TKN-1234-5678-9012-3456", " TKN-1234-5678", "TKN-12a4-5678"}) {
    SCOPED_TRACE(absl::StrCat("token_id \"", bad, "\""));
    EXPECT_TRUE(IsRpcError(api().Get(bad).status, StatusCode::INVALID_ARGUMENT, "INVALID_TOKEN_ID",
                           "token_id"));
    EXPECT_TRUE(IsRpcError(api().Enable(bad).status, StatusCode::INVALID_ARGUMENT,
                           "INVALID_TOKEN_ID", "token_id"));
    EXPECT_TRUE(IsRpcError(api().Disable(bad).status, StatusCode::INVALID_ARGUMENT,
                           "INVALID_TOKEN_ID", "token_id"));
    EXPECT_TRUE(IsRpcError(api().Delete(bad).status, StatusCode::INVALID_ARGUMENT,
                           "INVALID_TOKEN_ID", "token_id"));
    if (!bad.empty()) {  // an empty token_id is no import
      EXPECT_TRUE(IsRpcError(api().Create(ImportRequest(bad, "idt:x:y", account)).status,
                             StatusCode::INVALID_ARGUMENT, "INVALID_TOKEN_ID", "token_id"));
    }
  }
  // Three groups of digits are a valid id too.
  const std::string long_id = absl::StrCat(NewTokenId(), "-0001");
  Rpc<CreateTokenResponse> created =
      api().Create(ImportRequest(long_id, NewSecret(long_id), account));
  ASSERT_TRUE(created.ok()) << Describe(created.status);
  EXPECT_EQ(created.response.token().id(), long_id);
}

TEST_F(TokenApiTest, MalformedCreateFieldsAreInvalidArgument) {
  CreateTokenRequest valid;
  valid.set_account_id(NewAccountId());
  valid.set_name("n");
  struct Case {
    std::string what;
    CreateTokenRequest request;
    std::string reason;
    std::string field;
  };
  std::vector<Case> cases;
  auto add = [&](std::string what, auto mutate, std::string reason, std::string field) {
    CreateTokenRequest request = valid;
    mutate(request);
    cases.push_back({std::move(what), std::move(request), std::move(reason), std::move(field)});
  };
  add(
      "no account", [](CreateTokenRequest& r) { r.clear_account_id(); }, "INVALID_ACCOUNT_ID",
      "account_id");
  add(
      "bad account", [](CreateTokenRequest& r) { r.set_account_id("ACC-1"); }, "INVALID_ACCOUNT_ID",
      "account_id");
  add(
      "token id as account", [](CreateTokenRequest& r) { r.set_account_id("TKN-1234-5678"); },
      "INVALID_ACCOUNT_ID", "account_id");
  add(
      "empty name", [](CreateTokenRequest& r) { r.clear_name(); }, "INVALID_NAME", "name");
  add(
      "201 characters", [](CreateTokenRequest& r) { r.set_name(std::string(201, 'x')); },
      "INVALID_NAME", "name");
  add(
      "201 two-byte characters",
      [](CreateTokenRequest& r) {
        std::string name;
        for (int i = 0; i < 201; ++i) name += "\xc3\xa9";  // U+00E9
        r.set_name(name);
      },
      "INVALID_NAME", "name");
  add(
      "2001 characters", [](CreateTokenRequest& r) { r.set_description(std::string(2001, 'x')); },
      "INVALID_DESCRIPTION", "description");
  add(
      "hash without id", [](CreateTokenRequest& r) { r.set_secret_sha256(Sha256Hex("s")); },
      "INVALID_TOKEN_ID", "token_id");
  add(
      "id without hash", [](CreateTokenRequest& r) { r.set_token_id(NewTokenId()); },
      "INVALID_SECRET_SHA256", "secret_sha256");
  for (const std::string& bad_hash : {std::string("abc"), Sha256Hex("s").substr(1),
                                      std::string(64, 'g'), Sha256Hex("s") + "00"}) {
    add(
        absl::StrCat("hash ", bad_hash),
        [&bad_hash](CreateTokenRequest& r) {
          r.set_token_id(NewTokenId());
          r.set_secret_sha256(bad_hash);
        },
        "INVALID_SECRET_SHA256", "secret_sha256");
  }
  for (const Case& c : cases) {
    EXPECT_TRUE(
        IsRpcError(api().Create(c.request).status, StatusCode::INVALID_ARGUMENT, c.reason, c.field))
        << c.what;
  }

  // The limits themselves are fine, counted in characters.
  CreateTokenRequest at_limit = valid;
  std::string name;
  for (int i = 0; i < 200; ++i) name += "\xc3\xa9";
  at_limit.set_name(name);
  at_limit.set_description(std::string(2000, 'd'));
  Rpc<CreateTokenResponse> created = api().Create(at_limit);
  ASSERT_TRUE(created.ok()) << Describe(created.status);
  EXPECT_EQ(created.response.token().name(), name);
  EXPECT_EQ(created.response.token().description().size(), 2000u);
}

TEST_F(TokenApiTest, MalformedChangeFieldsAreInvalidArgument) {
  const std::string id = NewTokenId();
  Import(id, NewSecret(id), NewAccountId());
  DisableTokenRequest long_reason;
  long_reason.set_token_id(id);
  long_reason.set_reason(std::string(1001, 'r'));
  EXPECT_TRUE(IsRpcError(api().Disable(long_reason).status, StatusCode::INVALID_ARGUMENT,
                         "INVALID_REASON", "reason"));
  DisableTokenRequest negative;
  negative.set_token_id(id);
  negative.set_expected_revision(-1);
  EXPECT_TRUE(IsRpcError(api().Disable(negative).status, StatusCode::INVALID_ARGUMENT,
                         "INVALID_REVISION", "expected_revision"));
  GetTokenRequest get;
  get.set_token_id(id);
  get.set_min_revision(-1);
  EXPECT_TRUE(IsRpcError(api().Get(get).status, StatusCode::INVALID_ARGUMENT, "INVALID_REVISION",
                         "min_revision"));

  // Nothing of it was applied.
  Rpc<GetTokenResponse> got = api().Get(id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got.response.token().state(), Token::STATE_ACTIVE);

  long_reason.set_reason(std::string(1000, 'r'));
  EXPECT_TRUE(api().Disable(long_reason).ok());
}

// Imports `count` tokens of `account` from 8 threads and returns their ids in id order.
std::vector<std::string> ImportMany(const Api& api, const std::string& account, int count) {
  std::vector<std::string> ids = NewTokenIds(count);
  constexpr int kThreads = 8;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < count; i += kThreads) {
        Rpc<CreateTokenResponse> created =
            api.Create(ImportRequest(ids[i], NewSecret(ids[i]), account));
        EXPECT_TRUE(created.ok()) << Describe(created.status);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  return ids;
}

std::vector<std::string> IdsOf(const std::vector<Token>& tokens) {
  std::vector<std::string> ids;
  for (const Token& token : tokens) ids.push_back(token.id());
  return ids;
}

TEST_F(TokenApiTest, ListPagesInIdOrderWithDefaultAndMaximumPageSizes) {
  const std::string account = NewAccountId();
  const std::vector<std::string> ids = ImportMany(api(), account, 1001);

  ListTokensRequest request;
  request.set_account_id(account);
  Rpc<ListTokensResponse> first = api().List(request);  // page_size 0 = 100
  ASSERT_TRUE(first.ok()) << Describe(first.status);
  ASSERT_EQ(first.response.tokens_size(), 100);
  EXPECT_FALSE(first.response.next_page_token().empty());
  EXPECT_GT(first.response.revision(), 0);
  EXPECT_FALSE(first.response.epoch().empty());
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(first.response.tokens(i).id(), ids[i]);
    EXPECT_TRUE(first.response.tokens(i).secret_sha256().empty());
  }

  request.set_page_size(5000);  // clamped to 1000
  Rpc<ListTokensResponse> big = api().List(request);
  ASSERT_TRUE(big.ok()) << Describe(big.status);
  EXPECT_EQ(big.response.tokens_size(), 1000);
  EXPECT_FALSE(big.response.next_page_token().empty());

  request.set_page_size(37);
  absl::StatusOr<std::vector<Token>> all = api().ListAll(request);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(IdsOf(*all), ids);
}

TEST_F(TokenApiTest, ListFiltersByStateAndAccount) {
  const std::string account = NewAccountId();
  const std::vector<std::string> ids = NewTokenIds(3);
  const std::string &active = ids[0], &disabled = ids[1], &deleted = ids[2];
  for (const std::string& id : ids) Import(id, NewSecret(id), account);
  ASSERT_TRUE(api().Disable(disabled).ok());
  ASSERT_TRUE(api().Delete(deleted).ok());
  const std::string other_account = NewAccountId();
  const std::string other = NewTokenId();
  Import(other, NewSecret(other), other_account);

  auto list = [&](Token::State state, bool show_deleted) {
    ListTokensRequest request;
    request.set_account_id(account);
    request.set_state(state);
    request.set_show_deleted(show_deleted);
    request.set_page_size(2);
    absl::StatusOr<std::vector<Token>> tokens = api().ListAll(request);
    EXPECT_TRUE(tokens.ok()) << tokens.status();
    return tokens.ok() ? IdsOf(*tokens) : std::vector<std::string>{};
  };
  using Ids = std::vector<std::string>;
  EXPECT_EQ(list(Token::STATE_UNSPECIFIED, false), (Ids{active, disabled}));
  EXPECT_EQ(list(Token::STATE_UNSPECIFIED, true), (Ids{active, disabled, deleted}));
  EXPECT_EQ(list(Token::STATE_ACTIVE, false), (Ids{active}));
  EXPECT_EQ(list(Token::STATE_DISABLED, false), (Ids{disabled}));
  EXPECT_EQ(list(Token::STATE_DELETED, false), (Ids{deleted}));

  // Without an account filter: every account, still filtered by state.
  ListTokensRequest all_disabled;
  all_disabled.set_state(Token::STATE_DISABLED);
  absl::StatusOr<std::vector<Token>> tokens = api().ListAll(all_disabled);
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  std::set<std::string> seen;
  for (const Token& token : *tokens) {
    EXPECT_EQ(token.state(), Token::STATE_DISABLED) << token.id();
    seen.insert(token.id());
  }
  EXPECT_TRUE(seen.contains(disabled));
  EXPECT_FALSE(seen.contains(other));
}

TEST_F(TokenApiTest, MalformedListRequestsAreInvalidArgument) {
  ListTokensRequest negative;
  negative.set_page_size(-1);
  EXPECT_TRUE(IsRpcError(api().List(negative).status, StatusCode::INVALID_ARGUMENT,
                         "INVALID_PAGE_SIZE", "page_size"));
  ListTokensRequest bad_account;
  bad_account.set_account_id("ACC-1");
  EXPECT_TRUE(IsRpcError(api().List(bad_account).status, StatusCode::INVALID_ARGUMENT,
                         "INVALID_ACCOUNT_ID", "account_id"));
  ListTokensRequest bad_state;
  bad_state.set_state(static_cast<Token::State>(99));
  EXPECT_TRUE(IsRpcError(api().List(bad_state).status, StatusCode::INVALID_ARGUMENT,
                         "INVALID_STATE", "state"));
  ListTokensRequest bad_revision;
  bad_revision.set_min_revision(-1);
  EXPECT_TRUE(IsRpcError(api().List(bad_revision).status, StatusCode::INVALID_ARGUMENT,
                         "INVALID_REVISION", "min_revision"));
}

TEST_F(TokenApiTest, ForgedOrReusedPageTokensAreInvalidArgument) {
  const std::string account = NewAccountId();
  ImportMany(api(), account, 3);
  ListTokensRequest request;
  request.set_account_id(account);
  request.set_page_size(1);
  Rpc<ListTokensResponse> first = api().List(request);
  ASSERT_TRUE(first.ok()) << Describe(first.status);
  const std::string page_token = first.response.next_page_token();
  ASSERT_FALSE(page_token.empty());

  std::vector<std::string> forged = {"garbage", "!!!", page_token.substr(0, page_token.size() / 2),
                                     page_token + "A"};
  // Flip the high bit of a base64url character, which every character uses in full.
  static constexpr absl::string_view kBase64Url =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (size_t i : {size_t{0}, page_token.size() / 2, page_token.size() - 1}) {
    std::string flipped = page_token;
    const size_t index = kBase64Url.find(flipped[i]);
    ASSERT_NE(index, absl::string_view::npos) << "page tokens are opaque, but base64url here";
    flipped[i] = kBase64Url[index ^ 32];
    forged.push_back(flipped);
  }
  for (const std::string& bad : forged) {
    ListTokensRequest next = request;
    next.set_page_token(bad);
    EXPECT_TRUE(IsRpcError(api().List(next).status, StatusCode::INVALID_ARGUMENT,
                           "INVALID_PAGE_TOKEN", "page_token"))
        << "page token " << bad << " (genuine: " << page_token << ")";
  }

  // A page token only continues the listing it was made for.
  ListTokensRequest other_filters = request;
  other_filters.set_page_token(page_token);
  other_filters.set_state(Token::STATE_DISABLED);
  EXPECT_TRUE(IsRpcError(api().List(other_filters).status, StatusCode::INVALID_ARGUMENT,
                         "INVALID_PAGE_TOKEN", "page_token"));

  ListTokensRequest next = request;
  next.set_page_token(page_token);
  EXPECT_TRUE(api().List(next).ok());
}

}  // namespace
}  // namespace tokenstatus::integration
