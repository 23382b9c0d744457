#include "client/sidecar/sidecar_service.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/common/status_util.h"
#include "server/domain/token_secret.h"
#include "server/service/grpc_status.h"
#include "server/service/read_requests.h"
#include "server/watch/watch_hub.h"

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

// Finishes `reactor` with `status`, converted once.
void Finish(grpc::ServerUnaryReactor* reactor, const absl::Status& status) {
  reactor->Finish(ToGrpcStatus(status));
}

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

void SidecarService::ReadAtRevision(const grpc::CallbackServerContext& context,
                                    int64_t min_revision, grpc::ServerUnaryReactor* reactor,
                                    absl::AnyInvocable<absl::Status()> read) {
  const bool synced = cache_.synced();
  if (synced && min_revision == 0) {
    Finish(reactor, read());
    return;
  }
  const absl::Time deadline = ReadWaitDeadline(
      context, options_.deadline_margin, options_.max_revision_wait, synced, options_.sync_wait);
  waiters_.Add(min_revision, deadline,
               [this, reactor, read = std::move(read)](absl::Status reached) mutable {
                 // Not synced in time: `read` says so (MIRROR_NOT_READY).
                 Finish(reactor, reached.ok() || !cache_.synced() ? read() : reached);
               });
}

grpc::ServerUnaryReactor* SidecarService::GetToken(grpc::CallbackServerContext* context,
                                                   const GetTokenRequest* request,
                                                   GetTokenResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (absl::Status status = ValidateGetRequest(*request); !status.ok()) {
    Finish(reactor, status);
    return reactor;
  }
  ReadAtRevision(*context, request->min_revision(), reactor,
                 [this, request, response]() -> absl::Status {
                   if (absl::Status status = CheckSynced(); !status.ok()) return status;
                   GetResult result = cache_.Get(request->token_id());
                   if (absl::Status status = CheckFresh(result.fresh); !status.ok()) {
                     return status;
                   }
                   if (!result.token.has_value()) return TokenNotFoundError(request->token_id());
                   FillGetResponse(*std::move(result.token), result.cache_revision, *response);
                   return absl::OkStatus();
                 });
  return reactor;
}

grpc::ServerUnaryReactor* SidecarService::ListTokens(grpc::CallbackServerContext* context,
                                                     const ListTokensRequest* request,
                                                     ListTokensResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<ListParams> params = ListParamsOf(*request);
  if (!params.ok()) {
    Finish(reactor, params.status());
    return reactor;
  }
  ReadAtRevision(*context, request->min_revision(), reactor,
                 [this, response, params = *std::move(params)]() -> absl::Status {
                   if (absl::Status status = CheckSynced(); !status.ok()) return status;
                   ListResult result = cache_.List(params);
                   if (absl::Status status = CheckFresh(result.fresh); !status.ok()) {
                     return status;
                   }
                   FillListResponse(std::move(result.page), params, *response);
                   return absl::OkStatus();
                 });
  return reactor;
}

grpc::ServerUnaryReactor* SidecarService::VerifyToken(grpc::CallbackServerContext* context,
                                                      const VerifyTokenRequest* request,
                                                      VerifyTokenResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // A malformed secret is answered whatever the cache's state, as the server does.
  if (!ParseSecret(request->secret()).has_value()) {
    response->set_result(VerifyTokenResponse::RESULT_MALFORMED);
    Finish(reactor, absl::OkStatus());
    return reactor;
  }
  ReadAtRevision(*context, 0, reactor, [this, request, response]() -> absl::Status {
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
  return reactor;
}

absl::Status SidecarService::UpstreamOnly(absl::string_view what) const {
  return MakeError(absl::StatusCode::kUnimplemented, reason::kUpstreamOnly,
                   absl::StrCat(what, "tokenstatus-server at ", options_.upstream),
                   {{"upstream", options_.upstream}});
}

grpc::ServerUnaryReactor* SidecarService::Refuse(grpc::CallbackServerContext* context,
                                                 absl::string_view what) const {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  Finish(reactor, UpstreamOnly(what));
  return reactor;
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
  return WatchHub::Refuse(UpstreamOnly(kChangesUpstream));
}

grpc::ServerUnaryReactor* SidecarService::ListTokenEvents(
    grpc::CallbackServerContext* context, const apitoken::v1::ListTokenEventsRequest* /*request*/,
    apitoken::v1::ListTokenEventsResponse* /*response*/) {
  return Refuse(context, kHistoryUpstream);
}

}  // namespace tokenstatus
