#include "client/sidecar/sidecar_service.h"

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

// token-sidecar serves its local callers (loopback or a unix socket) without credentials: every
// caller is admitted.
absl::Status AdmitLocal(UnloggedCall&) { return absl::OkStatus(); }

// For a request with nothing to check.
absl::Status NothingToValidate() { return absl::OkStatus(); }

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
      });
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
      });
}

grpc::ServerUnaryReactor* SidecarService::VerifyToken(grpc::CallbackServerContext* context,
                                                      const VerifyTokenRequest* request,
                                                      VerifyTokenResponse* response) {
  return ServeUnary(context, UnloggedCall(), AdmitLocal, NothingToValidate, [&](Call call) {
    // A malformed secret is answered whatever the cache's state, as the server does.
    if (!ParseSecret(request->secret()).has_value()) {
      response->set_result(VerifyTokenResponse::RESULT_MALFORMED);
      std::move(call).Finish(absl::OkStatus());
      return;
    }
    ReadAtRevision(*context, 0, std::move(call), [this, request, response]() -> absl::Status {
      if (absl::Status status = CheckSynced(); !status.ok()) return status;
      VerifyResult result = cache_.Verify(request->secret());
      if (absl::Status status = CheckFresh(result.fresh); !status.ok()) return status;
      response->set_result(result.result);
      if (!result.token_id.empty()) {
        response->set_token_id(std::move(result.token_id));
        response->set_account_id(std::move(result.account_id));
        response->set_revision(result.token_revision);
      }
      return absl::OkStatus();
    });
  });
}

void SidecarService::ReadAtRevision(const grpc::CallbackServerContext& context,
                                    int64_t min_revision, UnaryCall<UnloggedCall> call,
                                    absl::AnyInvocable<absl::Status()> read) {
  tokenstatus::ReadAtRevision(
      context, {options_.deadline_margin, options_.max_revision_wait, options_.sync_wait},
      min_revision, [this] { return cache_.synced(); },
      [this](int64_t revision, absl::Time deadline, absl::AnyInvocable<void(absl::Status)> done) {
        waiters_.Add(revision, deadline, std::move(done));
      },
      std::move(call), std::move(read));
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
