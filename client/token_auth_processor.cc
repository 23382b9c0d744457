#include "client/token_auth_processor.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/bearer.h"
#include "core/status_util.h"

namespace tokenstatus {

namespace {

using apitoken::v1::VerifyTokenResponse;

constexpr absl::string_view kPathKey = ":path";

// The call refused with `code`, its message led by `reason` (see TokenAuthProcessor).
grpc::Status Refused(grpc::StatusCode code, absl::string_view reason, absl::string_view what) {
  return grpc::Status(code, absl::StrCat(reason, ": ", what));
}

absl::string_view ToView(grpc::string_ref ref) { return {ref.data(), ref.size()}; }

}  // namespace

TokenAuthProcessor::TokenAuthProcessor(std::shared_ptr<const TokenCache> cache,
                                       TokenAuthOptions options)
    : cache_(std::move(cache)), options_(std::move(options)) {}

grpc::Status TokenAuthProcessor::Process(const InputMetadata& auth_metadata,
                                         grpc::AuthContext* context,
                                         OutputMetadata* consumed_auth_metadata,
                                         OutputMetadata* /*response_metadata*/) {
  if (auto path = auth_metadata.find(std::string(kPathKey)); path != auth_metadata.end()) {
    const absl::string_view method = ToView(path->second);
    if (std::find(options_.exempt_methods.begin(), options_.exempt_methods.end(), method) !=
        options_.exempt_methods.end()) {
      return grpc::Status::OK;
    }
  }
  const auto header = auth_metadata.find(options_.header);
  if (header == auth_metadata.end()) {
    return Refused(grpc::StatusCode::UNAUTHENTICATED, reason::kMissingCredentials,
                   absl::StrCat("an API token is required in the ", options_.header, " metadata"));
  }
  std::optional<absl::string_view> secret = ToView(header->second);
  if (options_.header == "authorization") secret = BearerCredential(*secret);
  if (!secret.has_value() || secret->empty()) {
    return Refused(
        grpc::StatusCode::UNAUTHENTICATED, reason::kInvalidCredentials,
        absl::StrCat("the ", options_.header, " metadata must be ",
                     options_.header == "authorization" ? "\"Bearer <token>\"" : "the token"));
  }
  const VerifyResult verified = cache_->Verify(*secret);
  switch (verified.result) {
    case VerifyTokenResponse::RESULT_VALID:
      if (!verified.allowed) {
        return Refused(grpc::StatusCode::UNAVAILABLE, reason::kCacheStale,
                       "the token cache has not heard from tokenstatus recently; try again");
      }
      context->AddProperty(kTokenIdProperty, verified.token_id);
      context->AddProperty(kAccountIdProperty, verified.account_id);
      // The handler needs the token's identity, not its secret.
      consumed_auth_metadata->emplace(std::string(ToView(header->first)),
                                      std::string(ToView(header->second)));
      return grpc::Status::OK;
    case VerifyTokenResponse::RESULT_DISABLED:
      return Refused(grpc::StatusCode::PERMISSION_DENIED, reason::kTokenDisabled,
                     "the API token is disabled");
    case VerifyTokenResponse::RESULT_DELETED:
      return Refused(grpc::StatusCode::UNAUTHENTICATED, reason::kTokenDeleted,
                     "the API token was deleted");
    default:  // MALFORMED, NOT_FOUND: never say whether an id exists
      return Refused(grpc::StatusCode::UNAUTHENTICATED, reason::kInvalidCredentials,
                     "unknown API token");
  }
}

}  // namespace tokenstatus
