// TokenServiceImpl::ListTokenEvents: the history of one token, read from the store.

#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/page_token.h"
#include "core/token_view.h"
#include "core/unary_call.h"
#include "core/validation.h"
#include "server/service/token_service.h"

namespace tokenstatus {
namespace {

using apitoken::v1::ListTokenEventsRequest;
using apitoken::v1::ListTokenEventsResponse;

// A validated ListTokenEvents request.
struct HistoryRequest {
  std::string token_id;
  int page_size = kDefaultPageSize;
  int64_t before_revision = 0;  // 0 = from the newest change
};

// Validates `request` in field order: INVALID_ARGUMENT / INVALID_TOKEN_ID, INVALID_PAGE_SIZE,
// INVALID_PAGE_TOKEN (a token that is not one of this token's history).
absl::StatusOr<HistoryRequest> HistoryRequestOf(const ListTokenEventsRequest& request) {
  if (absl::Status status = ValidateTokenId(request.token_id()); !status.ok()) return status;
  absl::StatusOr<int> page_size = EffectivePageSize(request.page_size());
  if (!page_size.ok()) return page_size.status();
  HistoryRequest parsed{request.token_id(), *page_size, 0};
  if (!request.page_token().empty()) {
    absl::StatusOr<int64_t> before =
        DecodeHistoryPageToken(request.page_token(), request.token_id());
    if (!before.ok()) return before.status();
    parsed.before_revision = *before;
  }
  return parsed;
}

// Fills `response` with `page` of the history of `token_id`: the events without secret_sha256,
// and a next_page_token when older changes follow.
void FillHistoryResponse(TokenHistoryPage page, const std::string& token_id,
                         ListTokenEventsResponse& response) {
  for (TokenEvent& event : page.events) {
    TokenEvent& shown = *response.add_events();
    shown.set_type(event.type());
    *shown.mutable_token() = WithoutSecretHash(std::move(*event.mutable_token()));
  }
  if (page.more && response.events_size() > 0) {
    response.set_next_page_token(EncodeHistoryPageToken(
        token_id, response.events(response.events_size() - 1).token().revision()));
  }
}

}  // namespace

grpc::ServerUnaryReactor* TokenServiceImpl::ListTokenEvents(grpc::CallbackServerContext* context,
                                                            const ListTokenEventsRequest* request,
                                                            ListTokenEventsResponse* response) {
  return ServeUnary(
      context, CallLog("ListTokenEvents", request->token_id()),
      [&](CallLog& log) { return Admit(*context, Permission::kReadHistory, log); },
      [&] { return HistoryRequestOf(*request); },
      [&](Call call, HistoryRequest parsed) {
        const std::string token_id = parsed.token_id;
        store_.ReadHistory(std::move(parsed.token_id), parsed.before_revision, parsed.page_size,
                           StoreDeadline(*context),
                           [call = std::move(call), response,
                            token_id](absl::StatusOr<TokenHistoryPage> page) mutable {
                             if (page.ok())
                               FillHistoryResponse(*std::move(page), token_id, *response);
                             std::move(call).Finish(page.status());
                           });
      },
      Measured("ListTokenEvents"));
}

}  // namespace tokenstatus
