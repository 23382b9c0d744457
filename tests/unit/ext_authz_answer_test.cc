#include "client/sidecar/ext_authz_answer.h"

#include <initializer_list>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/status_util.h"
#include "google/rpc/error_details.pb.h"
#include "gtest/gtest.h"

namespace tokenstatus {
namespace {

using apitoken::v1::VerifyTokenResponse;
using envoy::config::core::v3::HeaderValue;
using envoy::config::core::v3::HeaderValueOption;
using envoy::service::auth::v3::CheckRequest;
using envoy::service::auth::v3::CheckResponse;
using google::protobuf::RepeatedPtrField;

constexpr char kSecret[] = "idt:TKN-1234-5678:abcdefghijklmnopqrstuvwxyz012345";

// A Check request with `headers` in the map form (http.headers).
CheckRequest WithHeaders(std::initializer_list<std::pair<std::string, std::string>> headers) {
  CheckRequest request;
  auto& map = *request.mutable_attributes()->mutable_request()->mutable_http()->mutable_headers();
  for (const auto& [key, value] : headers) map[key] = value;
  return request;
}

// A Check request with `headers` in the raw form (http.header_map), each value in raw_value.
CheckRequest WithRawHeaders(std::initializer_list<std::pair<std::string, std::string>> headers) {
  CheckRequest request;
  auto* map = request.mutable_attributes()->mutable_request()->mutable_http()->mutable_header_map();
  for (const auto& [key, value] : headers) {
    HeaderValue* header = map->add_headers();
    header->set_key(key);
    header->set_raw_value(value);
  }
  return request;
}

VerifyResult Verified(VerifyTokenResponse::Result result) {
  VerifyResult verified;
  verified.result = result;
  verified.token_id = "TKN-1234-5678";
  verified.account_id = "ACC-0000-0001";
  verified.token_revision = 42;
  verified.fresh = true;
  verified.allowed = result == VerifyTokenResponse::RESULT_VALID;
  return verified;
}

// The value of header `key` among `headers`, and that it replaces (append false); "" if absent.
std::string HeaderOf(const RepeatedPtrField<HeaderValueOption>& headers, const std::string& key) {
  for (const HeaderValueOption& option : headers) {
    if (option.header().key() == key) {
      EXPECT_TRUE(option.has_append());
      EXPECT_FALSE(option.append().value());
      return option.header().value();
    }
  }
  return "";
}

std::string ReasonOf(const CheckResponse& response) {
  google::rpc::ErrorInfo info;
  EXPECT_EQ(response.status().details_size(), 1);
  if (response.status().details_size() == 1) {
    EXPECT_TRUE(response.status().details(0).UnpackTo(&info));
  }
  return info.reason();
}

TEST(ExtAuthzCredentialTest, BearerFromTheHeaderMap) {
  absl::StatusOr<std::string> secret =
      ExtAuthzCredential(WithHeaders({{"authorization", absl::StrCat("Bearer ", kSecret)}}), {});
  ASSERT_TRUE(secret.ok()) << secret.status();
  EXPECT_EQ(*secret, kSecret);
  // The scheme in any case, extra spaces dropped.
  secret = ExtAuthzCredential(
      WithHeaders({{"authorization", absl::StrCat("  bEaReR   ", kSecret, " ")}}), {});
  ASSERT_TRUE(secret.ok()) << secret.status();
  EXPECT_EQ(*secret, kSecret);
}

TEST(ExtAuthzCredentialTest, RawHeadersValueOrRawValue) {
  absl::StatusOr<std::string> secret =
      ExtAuthzCredential(WithRawHeaders({{"Authorization", absl::StrCat("Bearer ", kSecret)}}), {});
  ASSERT_TRUE(secret.ok()) << secret.status();
  EXPECT_EQ(*secret, kSecret);
  CheckRequest request;
  HeaderValue* header = request.mutable_attributes()
                            ->mutable_request()
                            ->mutable_http()
                            ->mutable_header_map()
                            ->add_headers();
  header->set_key("authorization");
  header->set_value(absl::StrCat("Bearer ", kSecret));
  secret = ExtAuthzCredential(request, {});
  ASSERT_TRUE(secret.ok()) << secret.status();
  EXPECT_EQ(*secret, kSecret);
}

TEST(ExtAuthzCredentialTest, ACustomHeaderCarriesTheBareSecret) {
  ExtAuthzOptions options;
  options.credential_header = "x-api-key";
  absl::StatusOr<std::string> secret =
      ExtAuthzCredential(WithHeaders({{"x-api-key", kSecret}}), options);
  ASSERT_TRUE(secret.ok()) << secret.status();
  EXPECT_EQ(*secret, kSecret);
  // The authorization header is not looked at then.
  EXPECT_EQ(
      ErrorReason(ExtAuthzCredential(
                      WithHeaders({{"authorization", absl::StrCat("Bearer ", kSecret)}}), options)
                      .status()),
      reason::kMissingCredentials);
}

TEST(ExtAuthzCredentialTest, MissingAndMalformed) {
  struct Case {
    CheckRequest request;
    const char* reason;
  };
  const Case cases[] = {
      {CheckRequest(), reason::kMissingCredentials},
      {WithHeaders({{"x-other", "1"}}), reason::kMissingCredentials},
      {WithHeaders({{"authorization", "  "}}), reason::kMissingCredentials},
      {WithHeaders({{"authorization", kSecret}}), reason::kInvalidCredentials},
      {WithHeaders({{"authorization", absl::StrCat("Basic ", kSecret)}}),
       reason::kInvalidCredentials},
      {WithHeaders({{"authorization", "Bearer"}}), reason::kInvalidCredentials},
      {WithRawHeaders({{"authorization", absl::StrCat("Bearer ", kSecret)},
                       {"authorization", absl::StrCat("Bearer ", kSecret)}}),
       reason::kInvalidCredentials},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::string> secret = ExtAuthzCredential(c.request, {});
    ASSERT_FALSE(secret.ok()) << c.request.DebugString();
    EXPECT_EQ(secret.status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_EQ(ErrorReason(secret.status()), c.reason) << c.request.DebugString();
    EXPECT_FALSE(absl::StrContains(secret.status().message(), kSecret));
  }
}

TEST(ExtAuthzAnswerTest, AllowSetsHeadersStripsTheCredentialAndSetsMetadata) {
  const CheckRequest request = WithHeaders({{"authorization", absl::StrCat("Bearer ", kSecret)}});
  const CheckResponse response =
      ExtAuthzAnswer(request, Verified(VerifyTokenResponse::RESULT_VALID), {});
  EXPECT_TRUE(response.has_status());
  EXPECT_EQ(response.status().code(), 0);
  ASSERT_TRUE(response.has_ok_response());
  EXPECT_EQ(HeaderOf(response.ok_response().headers(), "x-token-id"), "TKN-1234-5678");
  EXPECT_EQ(HeaderOf(response.ok_response().headers(), "x-account-id"), "ACC-0000-0001");
  ASSERT_EQ(response.ok_response().headers_to_remove_size(), 1);
  EXPECT_EQ(response.ok_response().headers_to_remove(0), "authorization");
  const auto& fields = response.dynamic_metadata().fields();
  EXPECT_EQ(fields.at("token_id").string_value(), "TKN-1234-5678");
  EXPECT_EQ(fields.at("account_id").string_value(), "ACC-0000-0001");
  EXPECT_EQ(fields.at("revision").number_value(), 42);
  EXPECT_FALSE(absl::StrContains(response.SerializeAsString(), kSecret));
}

TEST(ExtAuthzAnswerTest, AllowWithOtherHeaderNamesAndTheCredentialKept) {
  ExtAuthzOptions options;
  options.credential_header = "x-api-key";
  options.token_id_header = "x-tid";
  options.account_id_header = "x-aid";
  options.strip_credential = false;
  const CheckResponse response = ExtAuthzAnswer(
      WithHeaders({{"x-api-key", kSecret}}), Verified(VerifyTokenResponse::RESULT_VALID), options);
  ASSERT_TRUE(response.has_ok_response());
  EXPECT_EQ(HeaderOf(response.ok_response().headers(), "x-tid"), "TKN-1234-5678");
  EXPECT_EQ(HeaderOf(response.ok_response().headers(), "x-aid"), "ACC-0000-0001");
  EXPECT_EQ(response.ok_response().headers_to_remove_size(), 0);
}

TEST(ExtAuthzAnswerTest, EachDenialHasItsCodeReasonAndHeaders) {
  CheckRequest other_account;
  (*other_account.mutable_attributes()->mutable_context_extensions())["account_id"] =
      "ACC-0000-0002";
  CheckRequest same_account;
  (*same_account.mutable_attributes()->mutable_context_extensions())["account_id"] =
      "ACC-0000-0001";
  struct Case {
    CheckRequest request;
    absl::StatusOr<VerifyResult> verified;
    int grpc_code;
    int http_code;
    const char* reason;
  };
  const Case cases[] = {
      {CheckRequest(),
       MakeError(absl::StatusCode::kUnauthenticated, reason::kMissingCredentials, "no credential"),
       16, 401, "MISSING_CREDENTIALS"},
      {CheckRequest(), Verified(VerifyTokenResponse::RESULT_MALFORMED), 16, 401,
       "INVALID_CREDENTIALS"},
      {CheckRequest(), Verified(VerifyTokenResponse::RESULT_NOT_FOUND), 16, 401,
       "INVALID_CREDENTIALS"},
      {CheckRequest(), Verified(VerifyTokenResponse::RESULT_DELETED), 16, 401, "TOKEN_DELETED"},
      {CheckRequest(), Verified(VerifyTokenResponse::RESULT_DISABLED), 7, 403, "TOKEN_DISABLED"},
      {other_account, Verified(VerifyTokenResponse::RESULT_VALID), 7, 403, "PERMISSION_DENIED"},
      {other_account, Verified(VerifyTokenResponse::RESULT_DISABLED), 7, 403, "TOKEN_DISABLED"},
      {CheckRequest(),
       MakeError(absl::StatusCode::kUnavailable, reason::kCacheStale,
                 "token-sidecar's cache is stale: nothing heard from tokenstatus-server at "
                 "10.0.0.1:50051 within max_staleness"),
       14, 503, "CACHE_STALE"},
      {CheckRequest(), MakeError(absl::StatusCode::kUnavailable, reason::kMirrorNotReady, "x"), 14,
       503, "MIRROR_NOT_READY"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.reason);
    const CheckResponse response = ExtAuthzAnswer(c.request, c.verified, {});
    EXPECT_EQ(response.status().code(), c.grpc_code);
    EXPECT_EQ(ReasonOf(response), c.reason);
    ASSERT_TRUE(response.has_denied_response());
    const auto& denied = response.denied_response();
    EXPECT_EQ(static_cast<int>(denied.status().code()), c.http_code);
    EXPECT_EQ(HeaderOf(denied.headers(), "content-type"), "application/json");
    EXPECT_EQ(HeaderOf(denied.headers(), "www-authenticate"), c.http_code == 401 ? "Bearer" : "");
    EXPECT_EQ(HeaderOf(denied.headers(), "retry-after"), c.http_code == 503 ? "1" : "");
    EXPECT_TRUE(absl::StrContains(denied.body(), absl::StrCat("\"reason\": \"", c.reason, "\"")))
        << denied.body();
    EXPECT_TRUE(absl::StartsWith(denied.body(), "{\"error\": \"")) << denied.body();
    // The upstream's address stays inside.
    EXPECT_FALSE(absl::StrContains(denied.body(), "10.0.0.1")) << denied.body();
    EXPECT_FALSE(response.has_dynamic_metadata());
  }
  EXPECT_TRUE(ExtAuthzAnswer(same_account, Verified(VerifyTokenResponse::RESULT_VALID), {})
                  .has_ok_response());
}

TEST(ExtAuthzAnswerTest, RetryAfterIsWholeSecondsRoundedUp) {
  ExtAuthzOptions options;
  options.retry_after = absl::Milliseconds(2500);
  const CheckResponse response = ExtAuthzAnswer(
      CheckRequest(), MakeError(absl::StatusCode::kUnavailable, reason::kCacheStale, "stale"),
      options);
  EXPECT_EQ(HeaderOf(response.denied_response().headers(), "retry-after"), "3");
}

}  // namespace
}  // namespace tokenstatus
