#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "apitoken/v1/token_service.pb.h"
#include "core/list_query.h"
#include "grpcpp/server_context.h"

namespace tokenstatus {

// The request checks, response building and deadlines of the read RPCs (GetToken, ListTokens,
// VerifyToken), shared by every TokenService that serves reads: the server (from its mirror) and
// token-sidecar (from a client TokenCache), so both validate, page and answer alike. Pure
// functions, thread-safe.

// Validates a GetTokenRequest: INVALID_ARGUMENT / INVALID_TOKEN_ID (field "token_id") for a
// malformed id, INVALID_ARGUMENT / INVALID_REVISION (field "min_revision") for a negative
// min_revision.
absl::Status ValidateGetRequest(const apitoken::v1::GetTokenRequest& request);

// Fills `response` with `token` (its secret_sha256 dropped) served at `revision`.
void FillGetResponse(apitoken::v1::Token token, int64_t revision,
                     apitoken::v1::GetTokenResponse& response);

// Validates a ListTokensRequest into list parameters: the effective page size, the filters, and
// the page token decoded into after_id. INVALID_ARGUMENT with reason INVALID_PAGE_SIZE,
// INVALID_STATE, INVALID_ACCOUNT_ID, INVALID_REVISION or INVALID_PAGE_TOKEN (and the field).
absl::StatusOr<ListParams> ListParamsOf(const apitoken::v1::ListTokensRequest& request);

// Fills `response` with `page` (a listing with `params`): its tokens without secret_sha256, a
// next_page_token when the page has a cursor (bound to params' filters), its revision and epoch.
void FillListResponse(TokenPage page, const ListParams& params,
                      apitoken::v1::ListTokensResponse& response);

// NOT_FOUND / TOKEN_NOT_FOUND "token <id> not found", the answer of a read of an unknown token.
absl::Status TokenNotFoundError(absl::string_view token_id);

// The deadline of work done for the RPC of `context` (a store call, a revision wait): the RPC's
// deadline minus min(`margin`, time left / 5), so that the work's own timeout (UNAVAILABLE,
// DEADLINE_EXCEEDED) reaches the client with its message before the client's deadline expires.
// absl::InfiniteFuture() for an RPC without a deadline.
absl::Time WorkDeadline(const grpc::CallbackServerContext& context, absl::Duration margin);

// The deadline of a read's wait for its min_revision (and, while the copy it reads from has not
// loaded, for the load): WorkDeadline(context, margin), but at most `max_revision_wait` from now
// (a call without a deadline must not hold a shutdown forever), and at most `load_wait` from now
// unless `loaded`.
absl::Time ReadWaitDeadline(const grpc::CallbackServerContext& context, absl::Duration margin,
                            absl::Duration max_revision_wait, bool loaded,
                            absl::Duration load_wait);

}  // namespace tokenstatus
