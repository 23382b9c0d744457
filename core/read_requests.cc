#include "core/read_requests.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/page_token.h"
#include "core/status_util.h"
#include "core/token_view.h"
#include "core/validation.h"

namespace tokenstatus {

using apitoken::v1::GetTokenRequest;
using apitoken::v1::GetTokenResponse;
using apitoken::v1::ListTokensRequest;
using apitoken::v1::ListTokensResponse;

absl::Status ValidateGetRequest(const GetTokenRequest& request) {
  absl::Status status = ValidateTokenId(request.token_id());
  if (status.ok()) status = ValidateRevision(request.min_revision(), "min_revision");
  return status;
}

void FillGetResponse(Token token, int64_t revision, GetTokenResponse& response) {
  *response.mutable_token() = WithoutSecretHash(std::move(token));
  response.set_revision(revision);
}

absl::StatusOr<ListParams> ListParamsOf(const ListTokensRequest& request) {
  absl::StatusOr<int> page_size = EffectivePageSize(request.page_size());
  if (!page_size.ok()) return page_size.status();
  absl::Status status = ValidateStateFilter(request.state());
  if (status.ok() && !request.account_id().empty()) {
    status = ValidateAccountId(request.account_id());
  }
  if (status.ok()) status = ValidateRevision(request.min_revision(), "min_revision");
  if (!status.ok()) return status;
  ListParams params;
  params.page_size = *page_size;
  params.state = request.state();
  params.account_id = request.account_id();
  params.show_deleted = request.show_deleted();
  if (!request.page_token().empty()) {
    absl::StatusOr<std::string> after_id = DecodePageToken(
        request.page_token(), {params.state, params.account_id, params.show_deleted});
    if (!after_id.ok()) return after_id.status();
    params.after_id = *std::move(after_id);
  }
  return params;
}

void FillListResponse(TokenPage page, const ListParams& params, ListTokensResponse& response) {
  for (Token& token : page.tokens) *response.add_tokens() = WithoutSecretHash(std::move(token));
  if (!page.next_after_id.empty()) {
    response.set_next_page_token(EncodePageToken(
        page.next_after_id, {params.state, params.account_id, params.show_deleted}));
  }
  response.set_revision(page.revision);
  response.set_epoch(std::move(page.epoch));
}

absl::Status TokenNotFoundError(absl::string_view token_id) {
  return MakeError(absl::StatusCode::kNotFound, reason::kTokenNotFound,
                   absl::StrCat("token ", token_id, " not found"));
}

absl::Time WorkDeadline(const grpc::CallbackServerContext& context, absl::Duration margin) {
  const std::chrono::system_clock::time_point deadline = context.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  const absl::Time rpc_deadline = absl::FromChrono(deadline);
  return rpc_deadline - std::clamp((rpc_deadline - absl::Now()) / 5, absl::ZeroDuration(), margin);
}

absl::Time ReadWaitDeadline(const grpc::CallbackServerContext& context, absl::Duration margin,
                            absl::Duration max_revision_wait, bool loaded,
                            absl::Duration load_wait) {
  absl::Time deadline = std::min(WorkDeadline(context, margin), absl::Now() + max_revision_wait);
  if (!loaded) deadline = std::min(deadline, absl::Now() + load_wait);
  return deadline;
}

}  // namespace tokenstatus
