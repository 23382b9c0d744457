#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "apitoken/v1/token_service.pb.h"

namespace tokenstatus {

// The structured log lines of one TokenService call (logfmt, core/log.h):
//   event=token_changed principal=P rpc=DisableToken token=T from=ACTIVE to=DISABLED revision=N
//     (INFO) for a change that was made;
//   event=call_refused principal=P rpc=R token=T code=C reason=REASON
//     for a call that failed: INFO for the caller's errors, WARNING for UNAVAILABLE, INTERNAL
//     and UNKNOWN (the server's or the store's).
// P is "-" until the caller is authenticated; T is "-" for a call without a token id or with a
// malformed one (untrusted input is never logged). Never a secret. Copyable;
// thread-compatible.
class CallLog {
 public:
  // `rpc` must be a string with static storage (a literal): it is kept as a view.
  CallLog(absl::string_view rpc, absl::string_view token_id);

  // The authenticated principal of the call.
  void SetPrincipal(std::string principal) { principal_ = std::move(principal); }
  const std::string& principal() const { return principal_; }
  absl::string_view rpc() const { return rpc_; }
  // The token the call is about, once known (a CreateToken that allocates an id).
  void SetTokenId(absl::string_view token_id);

  void Changed(absl::string_view from, const apitoken::v1::Token& token) const;
  // `status` must not be OK.
  void Refused(const absl::Status& status) const;

 private:
  // The token id as the request gave it: checked only when a line is written (most calls write
  // none).
  std::string TokenIdForLog() const;

  absl::string_view rpc_;
  std::string principal_ = "-";
  std::string token_id_;
};

}  // namespace tokenstatus
