#include "server/service/call_log.h"

#include "absl/strings/str_cat.h"
#include "core/log.h"
#include "core/status_util.h"
#include "core/token_state.h"
#include "core/validation.h"

namespace tokenstatus {

CallLog::CallLog(absl::string_view rpc, absl::string_view token_id)
    : rpc_(rpc), token_id_(token_id) {}

void CallLog::SetTokenId(absl::string_view token_id) { token_id_ = std::string(token_id); }

std::string CallLog::TokenIdForLog() const { return IsValidTokenId(token_id_) ? token_id_ : "-"; }

void CallLog::Changed(absl::string_view from, const apitoken::v1::Token& token) const {
  Log(LogLevel::kInfo, absl::StrCat("event=token_changed principal=", principal_, " rpc=", rpc_,
                                    " token=", token.id(), " from=", from, " to=",
                                    StateName(token.state()), " revision=", token.revision()));
}

void CallLog::Refused(const absl::Status& status) const {
  const bool server_side = status.code() == absl::StatusCode::kUnavailable ||
                           status.code() == absl::StatusCode::kInternal ||
                           status.code() == absl::StatusCode::kUnknown;
  Log(server_side ? LogLevel::kWarning : LogLevel::kInfo,
      absl::StrCat("event=call_refused principal=", principal_, " rpc=", rpc_,
                   " token=", TokenIdForLog(), " code=", absl::StatusCodeToString(status.code()),
                   " reason=", ErrorReason(status)));
}

}  // namespace tokenstatus
