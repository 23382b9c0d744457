// Server reflection the way grpcurl users use it: `buf curl` (from the npm package
// @bufbuild/buf) lists the service and calls it with JSON, knowing nothing but the address.

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/integration/integration_test_util.h"
#include "tests/testing/subprocess.h"

namespace tokenstatus::integration {
namespace {

constexpr absl::Duration kBufTimeout = absl::Seconds(60);

class ReflectionTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    if (HasFatalFailure()) return;
    // TOKENSTATUS_BUF (set by the Makefile), else buf on PATH.
    const char* configured = std::getenv("TOKENSTATUS_BUF");
    absl::StatusOr<std::string> buf =
        testing::FindExecutable(configured != nullptr && *configured != '\0' ? configured : "buf");
    if (!buf.ok()) {
      std::fprintf(stderr,
                   "\n*** SKIPPING the reflection test: buf not found (%s). Install it with "
                   "`npm install --prefix /tmp/buf @bufbuild/buf` and set "
                   "TOKENSTATUS_BUF=/tmp/buf/node_modules/.bin/buf. ***\n\n",
                   buf.status().ToString().c_str());
      GTEST_SKIP() << "buf not found: " << buf.status();
    }
    buf_ = *buf;
  }

  // Runs `buf curl` over plaintext HTTP/2 with the gRPC protocol and `args`.
  testing::CommandResult BufCurl(std::vector<std::string> args) {
    std::vector<std::string> argv = {buf_, "curl", "--protocol", "grpc", "--http2-prior-knowledge"};
    argv.insert(argv.end(), args.begin(), args.end());
    absl::StatusOr<testing::CommandResult> result = testing::RunCommand(argv, kBufTimeout);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *std::move(result) : testing::CommandResult();
  }

  std::string Url(absl::string_view method = "") const {
    return absl::StrCat("http://", server().address(), method.empty() ? "" : "/", method);
  }

  std::string buf_;
};

TEST_F(ReflectionTest, ListsEveryMethod) {
  testing::CommandResult listed = BufCurl({"--list-methods", Url()});
  // buf describes every service the server lists, so each needs its descriptor in reflection.
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  for (const char* method : {"CreateToken", "GetToken", "ListTokens", "EnableToken", "DisableToken",
                             "DeleteToken", "VerifyToken", "WatchTokens", "ListTokenEvents"}) {
    EXPECT_NE(listed.out.find(absl::StrCat("apitoken.v1.TokenService/", method)), std::string::npos)
        << method << " missing from:\n"
        << listed.out;
  }
}

TEST_F(ReflectionTest, GetTokenWithJson) {
  const std::string id = NewTokenId();
  Rpc<CreateTokenResponse> created = api().Create(ImportRequest(id, NewSecret(id), NewAccountId()));
  ASSERT_TRUE(created.ok()) << Describe(created.status);

  testing::CommandResult got = BufCurl({"-d", absl::StrCat(R"({"token_id": ")", id, R"("})"),
                                        Url("apitoken.v1.TokenService/GetToken")});
  ASSERT_EQ(got.exit_code, 0) << got.err;
  EXPECT_NE(got.out.find("\"STATE_ACTIVE\""), std::string::npos) << got.out;
  GetTokenResponse response;
  const auto parsed = google::protobuf::util::JsonStringToMessage(got.out, &response);
  ASSERT_TRUE(parsed.ok()) << parsed.ToString() << " in:\n" << got.out;
  EXPECT_EQ(response.token().id(), id);
  EXPECT_EQ(response.token().state(), Token::STATE_ACTIVE);
  EXPECT_EQ(response.token().revision(), created.response.token().revision());
}

// buf prints an error as Connect's JSON error: {"code": "not_found", "message": ...,
// "details": [{"type": "google.rpc.ErrorInfo", "value": <base64>, "debug": {...}}]}. It adds
// "debug" only for types compiled into buf itself, so the reason is read from "debug" when
// present, else decoded from "value".
TEST_F(ReflectionTest, ErrorShowsTheErrorInfoReason) {
  testing::CommandResult missing =
      BufCurl({"-d", absl::StrCat(R"({"token_id": ")", NewTokenId(), R"("})"),
               Url("apitoken.v1.TokenService/GetToken")});
  EXPECT_NE(missing.exit_code, 0);
  google::protobuf::Struct error;
  const auto parsed = google::protobuf::util::JsonStringToMessage(missing.err, &error);
  ASSERT_TRUE(parsed.ok()) << parsed.ToString() << " in:\n" << missing.err;
  EXPECT_EQ(error.fields().at("code").string_value(), "not_found") << missing.err;
  ASSERT_TRUE(error.fields().contains("details")) << missing.err;
  const google::protobuf::ListValue& details = error.fields().at("details").list_value();
  ASSERT_EQ(details.values_size(), 1) << missing.err;
  const auto& detail = details.values(0).struct_value().fields();
  EXPECT_EQ(detail.at("type").string_value(), "google.rpc.ErrorInfo") << missing.err;
  std::string reason;
  if (detail.contains("debug")) {
    reason = detail.at("debug").struct_value().fields().at("reason").string_value();
  } else {
    std::string bytes;
    ASSERT_TRUE(absl::Base64Unescape(detail.at("value").string_value(), &bytes)) << missing.err;
    google::rpc::ErrorInfo info;
    ASSERT_TRUE(info.ParseFromString(bytes)) << missing.err;
    reason = info.reason();
  }
  EXPECT_EQ(reason, "TOKEN_NOT_FOUND") << missing.err;
}

}  // namespace
}  // namespace tokenstatus::integration
