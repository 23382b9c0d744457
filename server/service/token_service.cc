#include "server/service/token_service.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "server/auth/call_credentials.h"
#include "server/common/log.h"
#include "server/common/status_util.h"
#include "server/domain/token_secret.h"
#include "server/domain/token_state.h"
#include "server/domain/validation.h"
#include "server/service/call_log.h"
#include "server/service/grpc_status.h"
#include "server/service/read_requests.h"

namespace tokenstatus {
namespace {

using apitoken::v1::CreateTokenRequest;
using apitoken::v1::CreateTokenResponse;
using apitoken::v1::DeleteTokenRequest;
using apitoken::v1::DeleteTokenResponse;
using apitoken::v1::DisableTokenRequest;
using apitoken::v1::DisableTokenResponse;
using apitoken::v1::EnableTokenRequest;
using apitoken::v1::EnableTokenResponse;
using apitoken::v1::GetTokenRequest;
using apitoken::v1::GetTokenResponse;
using apitoken::v1::ListTokensRequest;
using apitoken::v1::ListTokensResponse;
using apitoken::v1::VerifyTokenRequest;
using apitoken::v1::VerifyTokenResponse;
using apitoken::v1::WatchTokensRequest;

// Finishes `reactor` with `status`, converted once.
void Finish(grpc::ServerUnaryReactor* reactor, const absl::Status& status) {
  reactor->Finish(ToGrpcStatus(status));
}

// Finishes `reactor` with `status`, logged by `log` if it is an error.
void Finish(grpc::ServerUnaryReactor* reactor, const absl::Status& status, const CallLog& log) {
  if (!status.ok()) log.Refused(status);
  Finish(reactor, status);
}

// The name a transition's RPC is logged under.
absl::string_view RpcOf(Transition transition) {
  switch (transition) {
    case Transition::kEnable:
      return "EnableToken";
    case Transition::kDisable:
      return "DisableToken";
    case Transition::kDelete:
      break;
  }
  return "DeleteToken";
}

// Validates a CreateToken request into store parameters (without id and hash for an
// allocation).
absl::StatusOr<CreateTokenParams> CreateParamsOf(const CreateTokenRequest& request,
                                                 std::string actor) {
  absl::Status status = ValidateAccountId(request.account_id());
  if (status.ok()) status = ValidateName(request.name());
  if (status.ok()) status = ValidateDescription(request.description());
  if (!status.ok()) return status;
  CreateTokenParams params;
  params.account_id = request.account_id();
  params.name = request.name();
  params.description = request.description();
  params.actor = std::move(actor);
  if (request.token_id().empty() && request.secret_sha256().empty()) return params;
  if (request.token_id().empty()) {
    return MakeError(absl::StatusCode::kInvalidArgument, reason::kInvalidTokenId,
                     "token_id is required with secret_sha256 (an import needs both)",
                     {{"field", "token_id"}});
  }
  if (request.secret_sha256().empty()) {
    return MakeError(absl::StatusCode::kInvalidArgument, reason::kInvalidSecretHash,
                     "secret_sha256 is required with token_id (an import needs both)",
                     {{"field", "secret_sha256"}});
  }
  if (status = ValidateTokenId(request.token_id()); !status.ok()) return status;
  absl::StatusOr<std::string> hash = ParseSecretSha256(request.secret_sha256());
  if (!hash.ok()) return hash.status();
  params.token_id = request.token_id();
  params.secret_sha256 = *std::move(hash);
  return params;
}

template <typename Request>
absl::Status ValidateTransition(const Request& request) {
  absl::Status status = ValidateTokenId(request.token_id());
  if (status.ok()) status = ValidateRevision(request.expected_revision(), "expected_revision");
  if (status.ok()) status = ValidateReason(request.reason());
  return status;
}

}  // namespace

// The state of one CreateToken call across its store attempts.
struct TokenServiceImpl::CreateCall {
  grpc::ServerUnaryReactor* reactor;
  CreateTokenResponse* response;
  CallLog log;
  absl::Time deadline;
  CreateTokenParams params;
  bool allocate;  // generate id and secret (else an import)
  int attempts_left;
};

TokenServiceImpl::TokenServiceImpl(TokenStore& store, TokenMirror& mirror, WatchHub& hub,
                                   const Authenticator& authenticator, TokenServiceOptions options)
    : store_(store), mirror_(mirror), hub_(hub), authenticator_(authenticator), options_(options) {}

absl::Status TokenServiceImpl::Admit(const grpc::CallbackServerContext& context,
                                     Permission permission, CallLog& log) const {
  absl::StatusOr<Identity> identity = authenticator_.Authenticate(CallCredentialsOf(context));
  absl::Status status = identity.status();
  if (identity.ok()) {
    log.SetPrincipal(identity->principal);
    status = Authenticator::Authorize(*identity, permission, log.rpc());
  }
  if (!status.ok()) log.Refused(status);
  return status;
}

absl::Time TokenServiceImpl::StoreDeadline(const grpc::CallbackServerContext& context) const {
  return WorkDeadline(context, options_.deadline_margin);
}

grpc::ServerUnaryReactor* TokenServiceImpl::CreateToken(grpc::CallbackServerContext* context,
                                                        const CreateTokenRequest* request,
                                                        CreateTokenResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  CallLog log("CreateToken", request->token_id());
  if (absl::Status admitted = Admit(*context, Permission::kCreate, log); !admitted.ok()) {
    Finish(reactor, admitted);
    return reactor;
  }
  absl::StatusOr<CreateTokenParams> params = CreateParamsOf(*request, log.principal());
  if (!params.ok()) {
    Finish(reactor, params.status(), log);
    return reactor;
  }
  const bool allocate = params->token_id.empty();
  RunCreate({reactor, response, std::move(log), StoreDeadline(*context), *std::move(params),
             allocate, allocate ? std::max(options_.create_attempts, 1) : 1});
  return reactor;
}

void TokenServiceImpl::RunCreate(CreateCall call) {
  std::string secret;
  if (call.allocate) {
    absl::StatusOr<std::string> id = GenerateTokenId();
    absl::StatusOr<std::string> generated = id.ok() ? GenerateSecret(*id) : id.status();
    if (!generated.ok()) {
      Finish(call.reactor, generated.status(), call.log);
      return;
    }
    secret = *std::move(generated);
    call.params.token_id = *std::move(id);
    call.params.secret_sha256 = Sha256(secret);
    call.log.SetTokenId(call.params.token_id);
  }
  CreateTokenParams params = call.params;
  const absl::Time deadline = call.deadline;
  store_.Create(std::move(params), deadline,
                [this, call = std::move(call),
                 secret = std::move(secret)](absl::StatusOr<Token> token) mutable {
                  if (!token.ok() && token.status().code() == absl::StatusCode::kAlreadyExists &&
                      call.allocate && call.attempts_left > 1) {
                    --call.attempts_left;
                    RunCreate(std::move(call));
                    return;
                  }
                  if (!token.ok()) {
                    Finish(call.reactor, token.status(), call.log);
                    return;
                  }
                  call.log.Changed("NONE", *token);
                  // The response is complete before FinishWhenVisible (it may finish at once).
                  *call.response->mutable_token() = WithoutSecretHash(*token);
                  call.response->set_secret(std::move(secret));
                  FinishWhenVisible(*token, call.deadline, call.reactor);
                });
}

void TokenServiceImpl::ReadAtRevision(const grpc::CallbackServerContext& context,
                                      int64_t min_revision, grpc::ServerUnaryReactor* reactor,
                                      CallLog log, absl::AnyInvocable<absl::Status()> read) {
  const bool loaded = mirror_.loaded();
  if (loaded && min_revision == 0) {
    Finish(reactor, read(), log);
    return;
  }
  const absl::Time deadline =
      ReadWaitDeadline(context, options_.deadline_margin, options_.max_revision_wait, loaded,
                       options_.mirror_load_wait);
  mirror_.WhenRevisionReached(
      min_revision, deadline,
      [this, reactor, log = std::move(log), read = std::move(read)](absl::Status reached) mutable {
        Finish(reactor, reached.ok() || !mirror_.loaded() ? read() : reached, log);
      });
}

void TokenServiceImpl::FinishWhenVisible(const Token& committed, absl::Time deadline,
                                         grpc::ServerUnaryReactor* reactor) {
  const absl::Duration wait = std::max(
      std::min(deadline - absl::Now(), options_.change_visible_wait), absl::ZeroDuration());
  mirror_.WhenApplied(
      committed, absl::Now() + wait,
      [reactor, revision = committed.revision(), wait](absl::Status applied) {
        if (applied.ok() || absl::IsUnavailable(applied)) {  // applied, or shutting down
          Finish(reactor, applied);
          return;
        }
        const std::string at = absl::StrCat(revision);
        Finish(reactor,
               MakeError(absl::StatusCode::kUnavailable, reason::kChangeUnconfirmed,
                         absl::StrCat("the change was stored at revision ", at,
                                      " but this replica has not applied it within ",
                                      absl::FormatDuration(wait),
                                      " (it is catching up with, or reloading from, the store): "
                                      "it may or may not have been kept; read it back"),
                         {{"revision", at}}));
      });
}

grpc::ServerUnaryReactor* TokenServiceImpl::GetToken(grpc::CallbackServerContext* context,
                                                     const GetTokenRequest* request,
                                                     GetTokenResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  CallLog log("GetToken", request->token_id());
  absl::Status status = Admit(*context, Permission::kRead, log);
  if (status.ok()) status = ValidateGetRequest(*request);
  if (!status.ok()) {
    Finish(reactor, status, log);
    return reactor;
  }
  ReadAtRevision(*context, request->min_revision(), reactor, std::move(log),
                 [this, response, token_id = request->token_id()]() -> absl::Status {
                   absl::StatusOr<TokenAtRevision> result = mirror_.Get(token_id);
                   if (!result.ok()) return result.status();
                   FillGetResponse(std::move(result->token), result->revision, *response);
                   return absl::OkStatus();
                 });
  return reactor;
}

grpc::ServerUnaryReactor* TokenServiceImpl::ListTokens(grpc::CallbackServerContext* context,
                                                       const ListTokensRequest* request,
                                                       ListTokensResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  CallLog log("ListTokens", "");
  if (absl::Status admitted = Admit(*context, Permission::kRead, log); !admitted.ok()) {
    Finish(reactor, admitted);
    return reactor;
  }
  absl::StatusOr<ListParams> params = ListParamsOf(*request);
  if (!params.ok()) {
    Finish(reactor, params.status(), log);
    return reactor;
  }
  ReadAtRevision(*context, request->min_revision(), reactor, std::move(log),
                 [this, response, params = *std::move(params)]() -> absl::Status {
                   absl::StatusOr<TokenPage> page = mirror_.List(params);
                   if (!page.ok()) return page.status();
                   FillListResponse(*std::move(page), params, *response);
                   return absl::OkStatus();
                 });
  return reactor;
}

template <typename Request, typename Response>
grpc::ServerUnaryReactor* TokenServiceImpl::ChangeState(grpc::CallbackServerContext* context,
                                                        Transition transition,
                                                        const Request& request,
                                                        Response* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  CallLog log(RpcOf(transition), request.token_id());
  if (absl::Status admitted = Admit(*context, Permission::kChangeState, log); !admitted.ok()) {
    Finish(reactor, admitted);
    return reactor;
  }
  if (absl::Status status = ValidateTransition(request); !status.ok()) {
    Finish(reactor, status, log);
    return reactor;
  }
  TransitionParams params;
  params.token_id = request.token_id();
  params.transition = transition;
  params.expected_revision = request.expected_revision();
  params.reason = request.reason();
  params.actor = log.principal();
  const absl::Time deadline = StoreDeadline(*context);
  store_.Apply(std::move(params), deadline,
               [this, reactor, response, deadline,
                log = std::move(log)](absl::StatusOr<AppliedTransition> applied) {
                 if (!applied.ok()) {
                   Finish(reactor, applied.status(), log);
                   return;
                 }
                 log.Changed(StateName(applied->previous_state), applied->token);
                 *response->mutable_token() = WithoutSecretHash(applied->token);
                 FinishWhenVisible(applied->token, deadline, reactor);
               });
  return reactor;
}

grpc::ServerUnaryReactor* TokenServiceImpl::EnableToken(grpc::CallbackServerContext* context,
                                                        const EnableTokenRequest* request,
                                                        EnableTokenResponse* response) {
  return ChangeState(context, Transition::kEnable, *request, response);
}

grpc::ServerUnaryReactor* TokenServiceImpl::DisableToken(grpc::CallbackServerContext* context,
                                                         const DisableTokenRequest* request,
                                                         DisableTokenResponse* response) {
  return ChangeState(context, Transition::kDisable, *request, response);
}

grpc::ServerUnaryReactor* TokenServiceImpl::DeleteToken(grpc::CallbackServerContext* context,
                                                        const DeleteTokenRequest* request,
                                                        DeleteTokenResponse* response) {
  return ChangeState(context, Transition::kDelete, *request, response);
}

grpc::ServerUnaryReactor* TokenServiceImpl::VerifyToken(grpc::CallbackServerContext* context,
                                                        const VerifyTokenRequest* request,
                                                        VerifyTokenResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  CallLog log("VerifyToken", "");
  if (absl::Status admitted = Admit(*context, Permission::kVerify, log); !admitted.ok()) {
    Finish(reactor, admitted);
    return reactor;
  }
  std::optional<std::string> token_id = ParseSecret(request->secret());
  if (!token_id.has_value()) {
    response->set_result(VerifyTokenResponse::RESULT_MALFORMED);
    Finish(reactor, absl::OkStatus());
    return reactor;
  }
  ReadAtRevision(*context, 0, reactor, std::move(log),
                 [this, response, token_id = *std::move(token_id),
                  hash = Sha256(request->secret())]() -> absl::Status {
                   absl::StatusOr<TokenAtRevision> result = mirror_.Get(token_id);
                   if (!result.ok()) {
                     if (result.status().code() != absl::StatusCode::kNotFound)
                       return result.status();
                     response->set_result(VerifyTokenResponse::RESULT_NOT_FOUND);
                   } else if (!ConstantTimeEquals(hash, result->token.secret_sha256())) {
                     response->set_result(VerifyTokenResponse::RESULT_NOT_FOUND);
                   } else {
                     const Token& token = result->token;
                     response->set_result(VerifyResultOf(token.state()));
                     response->set_token_id(token.id());
                     response->set_account_id(token.account_id());
                     response->set_revision(token.revision());
                   }
                   return absl::OkStatus();
                 });
  return reactor;
}

namespace {

// A WatchTokens call without a request: gRPC hands the method no message when the call ended
// (cancelled by its client, past its deadline, its connection gone) before the request arrived,
// or when the client closed its side without sending one. It finishes at once with
// INVALID_ARGUMENT; that refusal is logged only if the client got it (the call was not
// cancelled). A call that ended first asked nothing and was refused nothing: no log line.
class WatchWithoutRequest final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  explicit WatchWithoutRequest(grpc::CallbackServerContext* context)
      : context_(context),
        status_(MakeError(absl::StatusCode::kInvalidArgument, reason::kInvalidArgument,
                          "no WatchTokensRequest arrived")) {
    Finish(ToGrpcStatus(status_));
  }

  void OnDone() override {
    // Accurate once the call is done.
    if (!context_->IsCancelled()) CallLog("WatchTokens", "").Refused(status_);
    delete this;
  }

 private:
  grpc::CallbackServerContext* const context_;
  const absl::Status status_;
};

}  // namespace

grpc::ServerWriteReactor<grpc::ByteBuffer>* TokenServiceImpl::WatchTokens(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) {
  if (!request->Valid()) return new WatchWithoutRequest(context);
  grpc::ByteBuffer buffer(*request);  // Deserialize consumes it; the slices are shared
  WatchTokensRequest parsed;
  const grpc::Status parse =
      grpc::SerializationTraits<WatchTokensRequest>::Deserialize(&buffer, &parsed);
  CallLog log("WatchTokens", "");
  absl::Status status =
      parse.ok() ? Admit(*context,
                         parsed.include_secret_hash() ? Permission::kWatchSecretHashes
                                                      : Permission::kWatch,
                         log)
                 : MakeError(absl::StatusCode::kInvalidArgument, reason::kInvalidArgument,
                             "the WatchTokensRequest does not parse");
  if (!status.ok()) {
    if (!parse.ok()) log.Refused(status);
    return WatchHub::Refuse(status);
  }
  return hub_.Watch(context, parsed, log.principal());
}

}  // namespace tokenstatus
