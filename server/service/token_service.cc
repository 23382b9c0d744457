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
#include "core/grpc_status.h"
#include "core/log.h"
#include "core/read_at_revision.h"
#include "core/read_requests.h"
#include "core/refused_stream.h"
#include "core/status_util.h"
#include "core/token_secret.h"
#include "core/token_state.h"
#include "core/token_view.h"
#include "core/unary_call.h"
#include "core/validation.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "server/auth/call_credentials.h"
#include "server/service/call_log.h"

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

// How a transition is named: its RPC (in logs and metrics) and its type in
// tokenstatus_changes_total.
struct TransitionNames {
  absl::string_view rpc;
  const char* change_type;
};
TransitionNames NamesOf(Transition transition) {
  switch (transition) {
    case Transition::kEnable:
      return {"EnableToken", "enabled"};
    case Transition::kDisable:
      return {"DisableToken", "disabled"};
    case Transition::kDelete:
      break;
  }
  return {"DeleteToken", "deleted"};
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
  Call call;
  CreateTokenResponse* response;
  absl::Time deadline;
  CreateTokenParams params;
  bool allocate;  // generate id and secret (else an import)
  int attempts_left;
  absl::Time started;  // the call's start
};

TokenServiceImpl::TokenServiceImpl(TokenStore& store, TokenMirror& mirror, WatchHub& hub,
                                   const Authenticator& authenticator, TokenServiceOptions options,
                                   ChangeMetrics* metrics, metrics::GrpcServerMetrics* call_metrics)
    : store_(store),
      mirror_(mirror),
      hub_(hub),
      authenticator_(authenticator),
      options_(options),
      metrics_(metrics),
      call_metrics_(call_metrics) {}

metrics::CallMetrics TokenServiceImpl::Measured(absl::string_view method,
                                                metrics::GrpcServerMetrics::Type type) const {
  return metrics::CallMetrics(call_metrics_, apitoken::v1::TokenService::service_full_name(),
                              method, type);
}

absl::Status TokenServiceImpl::Admit(const grpc::CallbackServerContext& context,
                                     Permission permission, CallLog& log) const {
  absl::StatusOr<Identity> identity = authenticator_.Authenticate(CallCredentialsOf(context));
  absl::Status status = identity.status();
  if (identity.ok()) {
    log.SetPrincipal(identity->principal);
    status = Authenticator::Authorize(*identity, permission, log.rpc());
  }
  return status;
}

absl::Time TokenServiceImpl::StoreDeadline(const grpc::CallbackServerContext& context) const {
  return WorkDeadline(context, options_.deadline_margin);
}

grpc::ServerUnaryReactor* TokenServiceImpl::CreateToken(grpc::CallbackServerContext* context,
                                                        const CreateTokenRequest* request,
                                                        CreateTokenResponse* response) {
  std::string principal;
  return ServeUnary(
      context, CallLog("CreateToken", request->token_id()),
      [&](CallLog& log) {
        absl::Status admitted = Admit(*context, Permission::kCreate, log);
        principal = log.principal();
        return admitted;
      },
      [&] { return CreateParamsOf(*request, principal); },
      [&](Call call, CreateTokenParams params) {
        const bool allocate = params.token_id.empty();
        RunCreate({std::move(call), response, StoreDeadline(*context), std::move(params), allocate,
                   allocate ? std::max(options_.create_attempts, 1) : 1, absl::Now()});
      },
      Measured("CreateToken"));
}

void TokenServiceImpl::RunCreate(CreateCall call) {
  std::string secret;
  if (call.allocate) {
    absl::StatusOr<std::string> id = GenerateTokenId();
    absl::StatusOr<std::string> generated = id.ok() ? GenerateSecret(*id) : id.status();
    if (!generated.ok()) {
      std::move(call.call).Finish(generated.status());
      return;
    }
    secret = *std::move(generated);
    call.params.token_id = *std::move(id);
    call.params.secret_sha256 = Sha256(secret);
    call.call.log().SetTokenId(call.params.token_id);
  }
  CreateTokenParams params = call.params;
  const absl::Time deadline = call.deadline;
  store_.Create(std::move(params), deadline,
                [this, call = std::move(call), secret = std::move(secret),
                 store_started = absl::Now()](absl::StatusOr<Token> token) mutable {
                  if (!token.ok() && token.status().code() == absl::StatusCode::kAlreadyExists &&
                      call.allocate && call.attempts_left > 1) {
                    --call.attempts_left;
                    RunCreate(std::move(call));
                    return;
                  }
                  if (!token.ok()) {
                    std::move(call.call).Finish(token.status());
                    return;
                  }
                  if (metrics_ != nullptr) {
                    metrics_->commit_seconds.ObserveSeconds(absl::Now() - store_started);
                  }
                  call.call.log().Changed("NONE", *token);
                  // The response is complete before FinishWhenVisible (it may finish at once).
                  *call.response->mutable_token() = WithoutSecretHash(*token);
                  call.response->set_secret(std::move(secret));
                  FinishWhenVisible(*token, call.deadline, call.started, "created",
                                    std::move(call.call));
                });
}

void TokenServiceImpl::ReadAtRevision(const grpc::CallbackServerContext& context,
                                      int64_t min_revision, Call call,
                                      absl::AnyInvocable<absl::Status()> read) {
  tokenstatus::ReadAtRevision(
      context, {options_.deadline_margin, options_.max_revision_wait, options_.mirror_load_wait},
      min_revision, [this] { return mirror_.loaded(); },
      [this](int64_t revision, absl::Time deadline, absl::AnyInvocable<void(absl::Status)> done) {
        mirror_.WhenRevisionReached(revision, deadline, std::move(done));
      },
      std::move(call), std::move(read));
}

void TokenServiceImpl::FinishWhenVisible(const Token& committed, absl::Time deadline,
                                         absl::Time started, const char* type, Call call) {
  const absl::Duration wait = std::max(
      std::min(deadline - absl::Now(), options_.change_visible_wait), absl::ZeroDuration());
  mirror_.WhenApplied(
      committed, absl::Now() + wait,
      [this, call = std::move(call), revision = committed.revision(), wait, started,
       type](absl::Status applied) mutable {
        if (applied.ok() && metrics_ != nullptr) {
          metrics_->visible_seconds.ObserveSeconds(absl::Now() - started);
          metrics_->changes.With({type}).Increment();
        }
        if (applied.ok() || absl::IsUnavailable(applied)) {  // applied, or shutting down
          std::move(call).Finish(applied);
          return;
        }
        const std::string at = absl::StrCat(revision);
        std::move(call).Finish(MakeError(
            absl::StatusCode::kUnavailable, reason::kChangeUnconfirmed,
            absl::StrCat("the change was stored at revision ", at,
                         " but this replica has not applied it within ", absl::FormatDuration(wait),
                         " (it is catching up with, or reloading from, the store): "
                         "it may or may not have been kept; read it back"),
            {{"revision", at}}));
      });
}

grpc::ServerUnaryReactor* TokenServiceImpl::GetToken(grpc::CallbackServerContext* context,
                                                     const GetTokenRequest* request,
                                                     GetTokenResponse* response) {
  return ServeUnary(
      context, CallLog("GetToken", request->token_id()),
      [&](CallLog& log) { return Admit(*context, Permission::kRead, log); },
      [&] { return ValidateGetRequest(*request); },
      [&](Call call) {
        ReadAtRevision(*context, request->min_revision(), std::move(call),
                       [this, response, token_id = request->token_id()]() -> absl::Status {
                         absl::StatusOr<TokenAtRevision> result = mirror_.Get(token_id);
                         if (!result.ok()) return result.status();
                         FillGetResponse(std::move(result->token), result->revision, *response);
                         return absl::OkStatus();
                       });
      },
      Measured("GetToken"));
}

grpc::ServerUnaryReactor* TokenServiceImpl::ListTokens(grpc::CallbackServerContext* context,
                                                       const ListTokensRequest* request,
                                                       ListTokensResponse* response) {
  return ServeUnary(
      context, CallLog("ListTokens", ""),
      [&](CallLog& log) { return Admit(*context, Permission::kRead, log); },
      [&] { return ListParamsOf(*request); },
      [&](Call call, ListParams params) {
        ReadAtRevision(*context, request->min_revision(), std::move(call),
                       [this, response, params = std::move(params)]() -> absl::Status {
                         absl::StatusOr<TokenPage> page = mirror_.List(params);
                         if (!page.ok()) return page.status();
                         FillListResponse(*std::move(page), params, *response);
                         return absl::OkStatus();
                       });
      },
      Measured("ListTokens"));
}

template <typename Request, typename Response>
grpc::ServerUnaryReactor* TokenServiceImpl::ChangeState(grpc::CallbackServerContext* context,
                                                        Transition transition,
                                                        const Request& request,
                                                        Response* response) {
  return ServeUnary(
      context, CallLog(NamesOf(transition).rpc, request.token_id()),
      [&](CallLog& log) { return Admit(*context, Permission::kChangeState, log); },
      [&] { return ValidateTransition(request); },
      [&](Call call) {
        TransitionParams params;
        params.token_id = request.token_id();
        params.transition = transition;
        params.expected_revision = request.expected_revision();
        params.reason = request.reason();
        params.actor = call.log().principal();
        const absl::Time deadline = StoreDeadline(*context);
        const absl::Time started = absl::Now();
        store_.Apply(std::move(params), deadline,
                     [this, call = std::move(call), response, deadline, started,
                      type = NamesOf(transition).change_type](
                         absl::StatusOr<AppliedTransition> applied) mutable {
                       if (!applied.ok()) {
                         std::move(call).Finish(applied.status());
                         return;
                       }
                       if (metrics_ != nullptr) {
                         metrics_->commit_seconds.ObserveSeconds(absl::Now() - started);
                       }
                       call.log().Changed(StateName(applied->previous_state), applied->token);
                       *response->mutable_token() = WithoutSecretHash(applied->token);
                       FinishWhenVisible(applied->token, deadline, started, type, std::move(call));
                     });
      },
      Measured(NamesOf(transition).rpc));
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
  return ServeUnary(
      context, CallLog("VerifyToken", ""),
      [&](CallLog& log) { return Admit(*context, Permission::kVerify, log); },
      [] { return absl::OkStatus(); },  // a malformed secret is an answer, not a refusal
      [&](Call call) {
        std::optional<std::string> token_id = ParseSecret(request->secret());
        if (!token_id.has_value()) {
          response->set_result(VerifyTokenResponse::RESULT_MALFORMED);
          std::move(call).Finish(absl::OkStatus());
          return;
        }
        ReadAtRevision(*context, 0, std::move(call),
                       [this, response, token_id = *std::move(token_id),
                        hash = Sha256(request->secret())]() -> absl::Status {
                         absl::StatusOr<TokenAtRevision> result = mirror_.Get(token_id);
                         if (!result.ok()) {
                           if (result.status().code() != absl::StatusCode::kNotFound) {
                             return result.status();
                           }
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
      },
      Measured("VerifyToken"));
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
  metrics::CallMetrics call =
      Measured("WatchTokens", metrics::GrpcServerMetrics::Type::kServerStream);
  absl::Status status =
      parse.ok() ? Admit(*context,
                         parsed.include_secret_hash() ? Permission::kWatchSecretHashes
                                                      : Permission::kWatch,
                         log)
                 : MakeError(absl::StatusCode::kInvalidArgument, reason::kInvalidArgument,
                             "the WatchTokensRequest does not parse");
  if (!status.ok()) {
    log.Refused(status);
    call.Finish(status);
    return RefusedStream(status);
  }
  return hub_.Watch(context, parsed, log.principal(), std::move(call));
}

}  // namespace tokenstatus
