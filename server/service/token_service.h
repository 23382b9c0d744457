#pragma once

#include <cstdint>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "apitoken/v1/token_service.grpc.pb.h"
#include "core/unary_call.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/server_callback.h"
#include "server/auth/authenticator.h"
#include "server/mirror/token_mirror.h"
#include "server/service/call_log.h"
#include "server/service/change_metrics.h"
#include "server/store/token_store.h"
#include "server/watch/watch_hub.h"

namespace tokenstatus {

struct TokenServiceOptions {
  // A store call (or a min_revision wait) gets the RPC's deadline minus min(deadline_margin,
  // time left / 5), so that its timeout (UNAVAILABLE, DEADLINE_EXCEEDED) reaches the client
  // with its message before the client's own deadline expires.
  absl::Duration deadline_margin = absl::Milliseconds(50);
  // CreateToken without token_id: how many fresh ids are tried when an id is already taken.
  int create_attempts = 3;
  // A read that arrives before the mirror has loaded (a replica that just started) waits this
  // long at most (and never past its deadline) for the load before failing with
  // MIRROR_NOT_READY.
  absl::Duration mirror_load_wait = absl::Seconds(1);
  // The longest a min_revision read waits, whatever its deadline (a call without one must not
  // hold the server's shutdown forever).
  absl::Duration max_revision_wait = absl::Minutes(1);
  // A change is acknowledged once this replica's mirror has applied it (read-your-writes on the
  // same replica without min_revision); if it has not within this long (and the deadline), the
  // call fails with UNAVAILABLE / CHANGE_UNCONFIRMED instead: the change was stored, but the
  // replica cannot confirm it (a store whose history was replaced under it is being reloaded).
  absl::Duration change_visible_wait = absl::Seconds(1);
};

// apitoken.v1.TokenService on the gRPC callback API. Every RPC validates its request
// (INVALID_ARGUMENT with an ErrorInfo reason and {"field": ...}). Changes (Create, Enable,
// Disable, Delete) make one store call with the RPC's deadline (see TokenServiceOptions) and
// finish from the store's callback. Reads (Get, List, Verify) are served from the TokenMirror,
// without a store round trip; WatchTokens is served by the WatchHub. No gRPC thread ever
// blocks. Errors are converted once, by ToGrpcStatus (core/grpc_status.h), so every
// error carries a google.rpc.ErrorInfo.
//
// Behaviour beyond the proto's comments:
// - CreateToken allocates an id and a secret (returned once; only its SHA-256 is stored) unless
//   token_id and secret_sha256 are both given (an import); one without the other is
//   INVALID_ARGUMENT. A generated id that is taken is retried with a new one.
// - Get/List with min_revision wait until the mirror has reached it; at the RPC's deadline
//   (less the margin) they fail with DEADLINE_EXCEEDED / REVISION_NOT_REACHED naming both
//   revisions. Negative min_revision / expected_revision: INVALID_ARGUMENT.
// - Reads before the mirror has loaded wait for the load up to mirror_load_wait (and the
//   deadline), then fail with UNAVAILABLE / MIRROR_NOT_READY.
// - WatchTokens is a raw method: the request is parsed here (INVALID_ARGUMENT if it does not
//   parse) and each change is serialized once by the hub for all its watchers. A call that ended
//   before its request arrived (the client cancelled) is not logged as refused.
// - ListTokenEvents reads the token's history from the store (the mirror holds no history)
//   with the RPC's deadline, newest first; its page tokens are bound to the token id
//   (core/page_token.h). Its errors: INVALID_ARGUMENT (INVALID_TOKEN_ID,
//   INVALID_PAGE_SIZE, INVALID_PAGE_TOKEN), NOT_FOUND / TOKEN_NOT_FOUND, and the store's.
// - Responses never carry secret_sha256.
// - VerifyToken answers with a Result; only a store failure (e.g. UNAVAILABLE) is an RPC error.
//   A wrong secret for an existing id is RESULT_NOT_FOUND and reveals nothing of the token.
// - A change is acknowledged once this replica's mirror has applied that very change (an equal
//   event at its revision, never a revision number alone: TokenMirror::WhenApplied), so a read
//   on the same replica right after sees it; else UNAVAILABLE / CHANGE_UNCONFIRMED (see
//   change_visible_wait).
// - Every change logs one line "event=token_changed actor=.. token=.. from=.. to=.. revision=..",
//   every refused change one "event=token_change_refused ..." line with the reason; never a
//   secret.
//
// Thread-safe. `store`, `mirror` and `hub` must outlive the service, and the service the server
// it is registered with.
class TokenServiceImpl final : public apitoken::v1::TokenService::WithRawCallbackMethod_WatchTokens<
                                   apitoken::v1::TokenService::CallbackService> {
 public:
  // `metrics` and `call_metrics` (each may be null: nothing recorded) must outlive the service.
  TokenServiceImpl(TokenStore& store, TokenMirror& mirror, WatchHub& hub,
                   const Authenticator& authenticator, TokenServiceOptions options = {},
                   ChangeMetrics* metrics = nullptr,
                   metrics::GrpcServerMetrics* call_metrics = nullptr);

  grpc::ServerUnaryReactor* CreateToken(grpc::CallbackServerContext* context,
                                        const apitoken::v1::CreateTokenRequest* request,
                                        apitoken::v1::CreateTokenResponse* response) override;
  grpc::ServerUnaryReactor* GetToken(grpc::CallbackServerContext* context,
                                     const apitoken::v1::GetTokenRequest* request,
                                     apitoken::v1::GetTokenResponse* response) override;
  grpc::ServerUnaryReactor* ListTokens(grpc::CallbackServerContext* context,
                                       const apitoken::v1::ListTokensRequest* request,
                                       apitoken::v1::ListTokensResponse* response) override;
  grpc::ServerUnaryReactor* EnableToken(grpc::CallbackServerContext* context,
                                        const apitoken::v1::EnableTokenRequest* request,
                                        apitoken::v1::EnableTokenResponse* response) override;
  grpc::ServerUnaryReactor* DisableToken(grpc::CallbackServerContext* context,
                                         const apitoken::v1::DisableTokenRequest* request,
                                         apitoken::v1::DisableTokenResponse* response) override;
  grpc::ServerUnaryReactor* DeleteToken(grpc::CallbackServerContext* context,
                                        const apitoken::v1::DeleteTokenRequest* request,
                                        apitoken::v1::DeleteTokenResponse* response) override;
  grpc::ServerUnaryReactor* VerifyToken(grpc::CallbackServerContext* context,
                                        const apitoken::v1::VerifyTokenRequest* request,
                                        apitoken::v1::VerifyTokenResponse* response) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* WatchTokens(grpc::CallbackServerContext* context,
                                                          const grpc::ByteBuffer* request) override;
  // Implemented in server/service/token_history.cc.
  grpc::ServerUnaryReactor* ListTokenEvents(
      grpc::CallbackServerContext* context, const apitoken::v1::ListTokenEventsRequest* request,
      apitoken::v1::ListTokenEventsResponse* response) override;

 private:
  struct CreateCall;

  // The one code path of EnableToken, DisableToken and DeleteToken.
  template <typename Request, typename Response>
  grpc::ServerUnaryReactor* ChangeState(grpc::CallbackServerContext* context, Transition transition,
                                        const Request& request, Response* response);
  // A unary call of this service: finished once, its refusal logged once (core/unary_call.h).
  using Call = UnaryCall<CallLog>;

  // Makes one store Create attempt of `call`, retrying with a fresh id on a collision.
  void RunCreate(CreateCall call);
  // Authenticates the caller of `context` (recording the principal in `log`) and checks that
  // it may `permission`, before anything is looked up or validated, so a refusal reveals
  // nothing. Returns UNAUTHENTICATED or PERMISSION_DENIED or OK; logs nothing (the caller's
  // pipeline logs a refusal once).
  absl::Status Admit(const grpc::CallbackServerContext& context, Permission permission,
                     CallLog& log) const;
  // A call of `method` of this service starting now, measured in call_metrics_ (if any).
  metrics::CallMetrics Measured(
      absl::string_view method,
      metrics::GrpcServerMetrics::Type type = metrics::GrpcServerMetrics::Type::kUnary) const;
  // The deadline of a store call (or a revision wait) made for the RPC of `context`.
  absl::Time StoreDeadline(const grpc::CallbackServerContext& context) const;
  // Finishes `call` (of the change the store returned as `committed`) with OK once the mirror
  // has applied it, or with UNAVAILABLE / CHANGE_UNCONFIRMED at the earlier of `deadline` and
  // options_.change_visible_wait. `started` is when the call began, `type` the change's type
  // (tokenstatus_changes_total's label).
  void FinishWhenVisible(const Token& committed, absl::Time deadline, absl::Time started,
                         const char* type, Call call);
  // Finishes `call` with what `read` returns once the mirror has loaded and reached
  // `min_revision` (core/read_at_revision.h; the load is waited for up to
  // options_.mirror_load_wait, then `read` fails with MIRROR_NOT_READY).
  void ReadAtRevision(const grpc::CallbackServerContext& context, int64_t min_revision, Call call,
                      absl::AnyInvocable<absl::Status()> read);

  TokenStore& store_;
  TokenMirror& mirror_;
  WatchHub& hub_;
  const Authenticator& authenticator_;
  const TokenServiceOptions options_;
  ChangeMetrics* const metrics_;
  metrics::GrpcServerMetrics* const call_metrics_;
};

}  // namespace tokenstatus
