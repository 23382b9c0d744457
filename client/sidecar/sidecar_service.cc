#include "client/sidecar/sidecar_service.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/read_at_revision.h"
#include "core/read_requests.h"
#include "core/refused_stream.h"
#include "core/status_util.h"
#include "core/token_secret.h"
#include "core/unary_call.h"

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

// What token-sidecar leaves to its upstream, as its refusals say it.
constexpr char kChangesUpstream[] = "token-sidecar serves reads only; send changes to ";
constexpr char kHistoryUpstream[] = "token-sidecar keeps no token history; ask ";

using Call = UnaryCall<UnloggedCall>;

// The end of a VerifySecret read: ReadAtRevision finishes it with the read's status, and it hands
// `done` the result the read left in `*result` (OK) or the error.
struct VerifyEnd {
  std::shared_ptr<VerifyResult> result;
  absl::AnyInvocable<void(absl::StatusOr<VerifyResult>)> done;

  void Finish(const absl::Status& status) && {
    if (status.ok()) {
      done(std::move(*result));
    } else {
      done(status);
    }
  }
};

}  // namespace

SidecarService::SidecarService(TokenCache& cache, SidecarServiceOptions options)
    : cache_(cache), options_(std::move(options)), waiters_("the cache", [&cache]() -> int64_t {
        return cache.synced() ? cache.revision() : -1;
      }) {
  listener_ = cache_.OnChange([this](const CacheChange&) { waiters_.Changed(); });
}

SidecarService::~SidecarService() { cache_.RemoveListener(listener_); }

void SidecarService::Shutdown() { waiters_.Shutdown(); }

absl::Status SidecarService::CheckSynced() const {
  if (cache_.synced()) return absl::OkStatus();
  return MakeError(absl::StatusCode::kUnavailable, reason::kMirrorNotReady,
                   absl::StrCat("token-sidecar has not synced with tokenstatus-server at ",
                                options_.upstream, " yet"));
}

absl::Status SidecarService::CheckFresh(bool fresh) const {
  if (fresh || options_.stale_policy == StalePolicy::kServeLastKnown) return absl::OkStatus();
  return MakeError(absl::StatusCode::kUnavailable, reason::kCacheStale,
                   absl::StrCat("token-sidecar's cache is stale: nothing heard from "
                                "tokenstatus-server at ",
                                options_.upstream, " within max_staleness"));
}

template <typename Call>
void SidecarService::ReadAtRevision(const grpc::CallbackServerContext& context,
                                    int64_t min_revision, Call call,
                                    absl::AnyInvocable<absl::Status()> read) {
  tokenstatus::ReadAtRevision(
      context, {options_.deadline_margin, options_.max_revision_wait, options_.sync_wait},
      min_revision, [this] { return cache_.synced(); },
      [this](int64_t revision, absl::Time deadline, absl::AnyInvocable<void(absl::Status)> done) {
        waiters_.Add(revision, deadline, std::move(done));
      },
      std::move(call), std::move(read));
}

void SidecarService::VerifySecret(const grpc::CallbackServerContext& context, std::string secret,
                                  absl::AnyInvocable<void(absl::StatusOr<VerifyResult>)> done) {
  // A malformed secret is answered whatever the cache's state, as the server does.
  if (!ParseSecret(secret).has_value()) {
    VerifyResult malformed;
    malformed.result = VerifyTokenResponse::RESULT_MALFORMED;
    done(std::move(malformed));
    return;
  }
  auto result = std::make_shared<VerifyResult>();
  ReadAtRevision(context, 0, VerifyEnd{result, std::move(done)},
                 [this, result, secret = std::move(secret)]() -> absl::Status {
                   if (absl::Status status = CheckSynced(); !status.ok()) return status;
                   *result = cache_.Verify(secret);
                   return CheckFresh(result->fresh);
                 });
}

grpc::ServerUnaryReactor* SidecarService::GetToken(grpc::CallbackServerContext* context,
                                                   const GetTokenRequest* request,
                                                   GetTokenResponse* response) {
  return ServeUnary(
      context, UnloggedCall(), AdmitLocal, [&] { return ValidateGetRequest(*request); },
      [&](Call call) {
        ReadAtRevision(*context, request->min_revision(), std::move(call),
                       [this, request, response]() -> absl::Status {
                         if (absl::Status status = CheckSynced(); !status.ok()) return status;
                         GetResult result = cache_.Get(request->token_id());
                         if (absl::Status status = CheckFresh(result.fresh); !status.ok()) {
                           return status;
                         }
                         if (!result.token.has_value()) {
                           return TokenNotFoundError(request->token_id());
                         }
                         FillGetResponse(*std::move(result.token), result.cache_revision,
                                         *response);
                         return absl::OkStatus();
                       });
      },
      Measured(apitoken::v1::TokenService::service_full_name(), "GetToken"));
}

grpc::ServerUnaryReactor* SidecarService::ListTokens(grpc::CallbackServerContext* context,
                                                     const ListTokensRequest* request,
                                                     ListTokensResponse* response) {
  return ServeUnary(
      context, UnloggedCall(), AdmitLocal, [&] { return ListParamsOf(*request); },
      [&](Call call, ListParams params) {
        ReadAtRevision(*context, request->min_revision(), std::move(call),
                       [this, response, params = std::move(params)]() -> absl::Status {
                         if (absl::Status status = CheckSynced(); !status.ok()) return status;
                         ListResult result = cache_.List(params);
                         if (absl::Status status = CheckFresh(result.fresh); !status.ok()) {
                           return status;
                         }
                         FillListResponse(std::move(result.page), params, *response);
                         return absl::OkStatus();
                       });
      },
      Measured(apitoken::v1::TokenService::service_full_name(), "ListTokens"));
}

grpc::ServerUnaryReactor* SidecarService::VerifyToken(grpc::CallbackServerContext* context,
                                                      const VerifyTokenRequest* request,
                                                      VerifyTokenResponse* response) {
  return ServeUnary(
      context, UnloggedCall(), AdmitLocal, NothingToValidate,
      [&](Call call) {
        VerifySecret(
            *context, request->secret(),
            [this, call = std::move(call), response](absl::StatusOr<VerifyResult> result) mutable {
              CountDecision("VerifyToken",
                            result.ok() && result->result == VerifyTokenResponse::RESULT_VALID);
              if (!result.ok()) {
                std::move(call).Finish(result.status());
                return;
              }
              response->set_result(result->result);
              if (!result->token_id.empty()) {
                response->set_token_id(std::move(result->token_id));
                response->set_account_id(std::move(result->account_id));
                response->set_revision(result->token_revision);
              }
              std::move(call).Finish(absl::OkStatus());
            });
      },
      Measured(apitoken::v1::TokenService::service_full_name(), "VerifyToken"));
}

metrics::CallMetrics SidecarService::Measured(absl::string_view service,
                                              absl::string_view method) const {
  return metrics::CallMetrics(options_.calls, service, method,
                              metrics::GrpcServerMetrics::Type::kUnary);
}

void SidecarService::CountDecision(const char* rpc, bool allowed) const {
  if (options_.decisions != nullptr) {
    options_.decisions->With({rpc, allowed ? "allow" : "deny"}).Increment();
  }
}

absl::Status SidecarService::UpstreamOnly(absl::string_view what) const {
  return MakeError(absl::StatusCode::kUnimplemented, reason::kUpstreamOnly,
                   absl::StrCat(what, "tokenstatus-server at ", options_.upstream),
                   {{"upstream", options_.upstream}});
}

grpc::ServerUnaryReactor* SidecarService::Refuse(grpc::CallbackServerContext* context,
                                                 absl::string_view what) const {
  return ServeUnary(
      context, UnloggedCall(), AdmitLocal, [&] { return UpstreamOnly(what); }, [](Call) {});
}

grpc::ServerUnaryReactor* SidecarService::CreateToken(grpc::CallbackServerContext* context,
                                                      const CreateTokenRequest* /*request*/,
                                                      CreateTokenResponse* /*response*/) {
  return Refuse(context, kChangesUpstream);
}

grpc::ServerUnaryReactor* SidecarService::EnableToken(grpc::CallbackServerContext* context,
                                                      const EnableTokenRequest* /*request*/,
                                                      EnableTokenResponse* /*response*/) {
  return Refuse(context, kChangesUpstream);
}

grpc::ServerUnaryReactor* SidecarService::DisableToken(grpc::CallbackServerContext* context,
                                                       const DisableTokenRequest* /*request*/,
                                                       DisableTokenResponse* /*response*/) {
  return Refuse(context, kChangesUpstream);
}

grpc::ServerUnaryReactor* SidecarService::DeleteToken(grpc::CallbackServerContext* context,
                                                      const DeleteTokenRequest* /*request*/,
                                                      DeleteTokenResponse* /*response*/) {
  return Refuse(context, kChangesUpstream);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* SidecarService::WatchTokens(
    grpc::CallbackServerContext* /*context*/, const grpc::ByteBuffer* /*request*/) {
  return RefusedStream(UpstreamOnly(kChangesUpstream));
}

grpc::ServerUnaryReactor* SidecarService::ListTokenEvents(
    grpc::CallbackServerContext* context, const apitoken::v1::ListTokenEventsRequest* /*request*/,
    apitoken::v1::ListTokenEventsResponse* /*response*/) {
  return Refuse(context, kHistoryUpstream);
}

}  // namespace tokenstatus
