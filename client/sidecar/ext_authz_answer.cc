#include "client/sidecar/ext_authz_answer.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "core/bearer.h"
#include "core/grpc_status.h"
#include "core/status_util.h"

namespace tokenstatus {
namespace {

using apitoken::v1::VerifyTokenResponse;
using envoy::config::core::v3::HeaderValue;
using envoy::config::core::v3::HeaderValueOption;
using envoy::service::auth::v3::CheckRequest;
using envoy::service::auth::v3::CheckResponse;
using envoy::service::auth::v3::DeniedHttpResponse;
using envoy::service::auth::v3::OkHttpResponse;
using envoy::type::v3::StatusCode;

constexpr char kAuthorizationHeader[] = "authorization";
// The body "error" of every 503: the internal message names the upstream, which the clients of
// the gateway have no business knowing.
constexpr char kUnavailableMessage[] = "token status is unavailable; retry later";

absl::Status Unauthenticated(absl::string_view reason, absl::string_view message) {
  return MakeError(absl::StatusCode::kUnauthenticated, reason, message);
}

// The decision for a VerifyResult: OK to allow, else the denial.
absl::Status Decide(const CheckRequest& request, const VerifyResult& verified) {
  switch (verified.result) {
    case VerifyTokenResponse::RESULT_VALID:
      break;
    case VerifyTokenResponse::RESULT_DISABLED:
      return MakeError(absl::StatusCode::kPermissionDenied, reason::kTokenDisabled,
                       "the token is disabled");
    case VerifyTokenResponse::RESULT_DELETED:
      return Unauthenticated(reason::kTokenDeleted, "the token is deleted");
    case VerifyTokenResponse::RESULT_MALFORMED:
      return Unauthenticated(reason::kInvalidCredentials, "the credential is not a token secret");
    default:  // NOT_FOUND: an unknown id and a wrong secret alike
      return Unauthenticated(reason::kInvalidCredentials, "the token secret is not valid");
  }
  const auto& extensions = request.attributes().context_extensions();
  if (auto it = extensions.find(kRequiredAccountExtension);
      it != extensions.end() && it->second != verified.account_id) {
    return MakeError(absl::StatusCode::kPermissionDenied, reason::kPermissionDenied,
                     "the token does not belong to the account of this route");
  }
  return absl::OkStatus();
}

void SetHeader(absl::string_view key, absl::string_view value, HeaderValueOption& option) {
  HeaderValue* header = option.mutable_header();
  header->set_key(std::string(key));
  header->set_value(std::string(value));
  option.mutable_append()->set_value(false);
}

// `text` as a JSON string literal.
std::string JsonString(absl::string_view text) {
  std::string quoted = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      absl::StrAppend(&quoted, "\\", absl::string_view(&c, 1));
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppendFormat(&quoted, "\\u%04x", static_cast<int>(c));
    } else {
      quoted.push_back(c);
    }
  }
  quoted.push_back('"');
  return quoted;
}

void Allow(const VerifyResult& verified, const ExtAuthzOptions& options, CheckResponse& response) {
  *response.mutable_status() = RpcStatusOf(absl::OkStatus());
  OkHttpResponse& ok = *response.mutable_ok_response();
  SetHeader(options.token_id_header, verified.token_id, *ok.add_headers());
  SetHeader(options.account_id_header, verified.account_id, *ok.add_headers());
  if (options.strip_credential) ok.add_headers_to_remove(options.credential_header);
  auto& fields = *response.mutable_dynamic_metadata()->mutable_fields();
  fields["token_id"].set_string_value(verified.token_id);
  fields["account_id"].set_string_value(verified.account_id);
  fields["revision"].set_number_value(static_cast<double>(verified.token_revision));
}

void Deny(const absl::Status& denial, const ExtAuthzOptions& options, CheckResponse& response) {
  *response.mutable_status() = RpcStatusOf(denial);
  DeniedHttpResponse& denied = *response.mutable_denied_response();
  SetHeader("content-type", "application/json", *denied.add_headers());
  absl::string_view message = denial.message();
  switch (denial.code()) {
    case absl::StatusCode::kUnauthenticated:
      denied.mutable_status()->set_code(StatusCode::Unauthorized);
      SetHeader("www-authenticate", "Bearer", *denied.add_headers());
      break;
    case absl::StatusCode::kPermissionDenied:
      denied.mutable_status()->set_code(StatusCode::Forbidden);
      break;
    default: {
      denied.mutable_status()->set_code(StatusCode::ServiceUnavailable);
      const int64_t seconds = std::max<int64_t>(
          1, absl::ToInt64Seconds(absl::Ceil(options.retry_after, absl::Seconds(1))));
      SetHeader("retry-after", absl::StrCat(seconds), *denied.add_headers());
      message = kUnavailableMessage;
      break;
    }
  }
  denied.set_body(absl::StrCat("{\"error\": ", JsonString(message),
                               ", \"reason\": ", JsonString(ErrorReason(denial)), "}"));
}

}  // namespace

absl::StatusOr<std::string> ExtAuthzCredential(const CheckRequest& request,
                                               const ExtAuthzOptions& options) {
  const auto& http = request.attributes().request().http();
  const std::string& name = options.credential_header;
  std::vector<absl::string_view> values;
  if (auto it = http.headers().find(name); it != http.headers().end()) {
    values.push_back(it->second);
  }
  for (const HeaderValue& header : http.header_map().headers()) {
    if (absl::EqualsIgnoreCase(header.key(), name)) {
      values.push_back(header.value().empty() ? header.raw_value() : header.value());
    }
  }
  if (values.size() > 1) {
    return Unauthenticated(reason::kInvalidCredentials,
                           absl::StrCat("more than one ", name, " header"));
  }
  const absl::string_view value =
      values.empty() ? absl::string_view() : absl::StripAsciiWhitespace(values[0]);
  if (value.empty()) {
    return Unauthenticated(
        reason::kMissingCredentials,
        absl::StrCat("no credential: send the token secret in the ", name, " header"));
  }
  if (name != kAuthorizationHeader) return std::string(value);
  const std::optional<absl::string_view> secret = BearerCredential(value);
  if (!secret.has_value()) {
    return Unauthenticated(reason::kInvalidCredentials,
                           "the authorization header must be \"Bearer <token secret>\"");
  }
  return std::string(*secret);
}

CheckResponse ExtAuthzAnswer(const CheckRequest& request,
                             const absl::StatusOr<VerifyResult>& verified,
                             const ExtAuthzOptions& options) {
  CheckResponse response;
  const absl::Status decision = verified.ok() ? Decide(request, *verified) : verified.status();
  if (decision.ok()) {
    Allow(*verified, options, response);
  } else {
    Deny(decision, options, response);
  }
  return response;
}

}  // namespace tokenstatus
