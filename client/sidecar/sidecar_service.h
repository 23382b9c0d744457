#pragma once

#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "apitoken/v1/token_service.grpc.pb.h"
#include "client/token_cache.h"
#include "core/metrics/grpc_server_metrics.h"
#include "core/metrics/registry.h"
#include "core/revision_waiters.h"
#include "core/unary_call.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/server_callback.h"

namespace tokenstatus {

// token-sidecar's call log (the Log of its UnaryCalls): its refusals go to its local callers
// only, and are not logged.
struct UnloggedCall {
  void Refused(const absl::Status&) const {}
};

// The admit step of token-sidecar's ServeUnary calls: it serves its local callers (loopback or a
// unix socket) without credentials, so every caller is admitted.
inline absl::Status AdmitLocal(UnloggedCall&) { return absl::OkStatus(); }

// The validate step of a request with nothing to check.
inline absl::Status NothingToValidate() { return absl::OkStatus(); }

struct SidecarServiceOptions {
  // host:port of the tokenstatus-server the cache follows; named in the answer to a change.
  std::string upstream;
  // The cache's stale policy (TokenCacheOptions::stale_policy): kFailClosed refuses reads while
  // the cache is not fresh, kServeLastKnown answers them from the last known state.
  StalePolicy stale_policy = StalePolicy::kFailClosed;
  // tokenstatus_sidecar_decisions_total{rpc, result}, counted by CountDecision (may be null).
  metrics::Family<metrics::Counter>* decisions = nullptr;
  // The grpc_server_* metrics of its calls (may be null).
  metrics::GrpcServerMetrics* calls = nullptr;
  // As TokenServiceOptions: a min_revision wait ends at the RPC's deadline minus
  // min(deadline_margin, time left / 5), and after max_revision_wait at most.
  absl::Duration deadline_margin = absl::Milliseconds(50);
  absl::Duration max_revision_wait = absl::Minutes(1);
  // A read that arrives before the cache has synced waits this long at most (and never past its
  // deadline) for the sync before failing with UNAVAILABLE / MIRROR_NOT_READY.
  absl::Duration sync_wait = absl::Seconds(1);
};

// apitoken.v1.TokenService served by token-sidecar from a TokenCache, on the gRPC callback API;
// no call ever blocks a gRPC thread or reaches the server.
//
// - GetToken, ListTokens and VerifyToken validate their requests and page like the server
//   (core/read_requests.h: same INVALID_ARGUMENT reasons and fields, same page
//   tokens) and answer from the cache: same results, same TOKEN_NOT_FOUND, never secret_sha256.
//   `revision` in a response is the cache's revision.
// - min_revision (Get, List) waits, event-driven, until the cache has reached it; at the RPC's
//   deadline (less the margin) DEADLINE_EXCEEDED / REVISION_NOT_REACHED naming both revisions.
// - Until the cache has synced a read waits up to sync_wait, then fails with UNAVAILABLE /
//   MIRROR_NOT_READY (a malformed VerifyToken secret is answered RESULT_MALFORMED at once).
// - While the cache is not fresh (nothing heard from the server within max_staleness) and the
//   policy is kFailClosed, reads fail with UNAVAILABLE / CACHE_STALE.
// - CreateToken, EnableToken, DisableToken, DeleteToken and WatchTokens fail with
//   UNIMPLEMENTED / UPSTREAM_ONLY: "token-sidecar serves reads only; send changes to
//   tokenstatus-server at <upstream>" (metadata {"upstream": <upstream>}); ListTokenEvents
//   likewise with "token-sidecar keeps no token history; ask tokenstatus-server at <upstream>".
//
// Thread-safe. `cache` must outlive the service, and the service the server it is registered
// with. The service registers a change listener on `cache` and removes it when destroyed.
class SidecarService final : public apitoken::v1::TokenService::WithRawCallbackMethod_WatchTokens<
                                 apitoken::v1::TokenService::CallbackService> {
 public:
  SidecarService(TokenCache& cache, SidecarServiceOptions options);
  ~SidecarService() override;

  SidecarService(const SidecarService&) = delete;
  SidecarService& operator=(const SidecarService&) = delete;

  // Fails the reads waiting for a revision or for the sync, and every later one that would
  // wait, with UNAVAILABLE / SERVER_SHUTTING_DOWN, so that a server shutdown is not held up by
  // them. Idempotent.
  void Shutdown();

  // Counts one answer of `rpc` (VerifyToken, Check) that allowed the token or did not (an
  // error, a stale cache and every result but VALID deny) in options.decisions.
  void CountDecision(const char* rpc, bool allowed) const;
  // A unary call of `service`'s `method` starting now, measured in options.calls (if any).
  metrics::CallMetrics Measured(absl::string_view service, absl::string_view method) const;

  // VerifyToken's verification of `secret` for the call of `context`, computed from the cache;
  // VerifyToken and ExtAuthzService's Check both answer from it. Calls `done` once, at once or,
  // before the cache has synced, when it has (up to sync_wait later, never past the call's
  // deadline), on any thread, with the VerifyResult (RESULT_MALFORMED for a malformed secret
  // whatever the cache's state) or the read's error: UNAVAILABLE / MIRROR_NOT_READY,
  // CACHE_STALE (not fresh under kFailClosed) or SERVER_SHUTTING_DOWN. Never logs the secret.
  void VerifySecret(const grpc::CallbackServerContext& context, std::string secret,
                    absl::AnyInvocable<void(absl::StatusOr<VerifyResult>)> done);

  grpc::ServerUnaryReactor* GetToken(grpc::CallbackServerContext* context,
                                     const apitoken::v1::GetTokenRequest* request,
                                     apitoken::v1::GetTokenResponse* response) override;
  grpc::ServerUnaryReactor* ListTokens(grpc::CallbackServerContext* context,
                                       const apitoken::v1::ListTokensRequest* request,
                                       apitoken::v1::ListTokensResponse* response) override;
  grpc::ServerUnaryReactor* VerifyToken(grpc::CallbackServerContext* context,
                                        const apitoken::v1::VerifyTokenRequest* request,
                                        apitoken::v1::VerifyTokenResponse* response) override;
  grpc::ServerUnaryReactor* CreateToken(grpc::CallbackServerContext* context,
                                        const apitoken::v1::CreateTokenRequest* request,
                                        apitoken::v1::CreateTokenResponse* response) override;
  grpc::ServerUnaryReactor* EnableToken(grpc::CallbackServerContext* context,
                                        const apitoken::v1::EnableTokenRequest* request,
                                        apitoken::v1::EnableTokenResponse* response) override;
  grpc::ServerUnaryReactor* DisableToken(grpc::CallbackServerContext* context,
                                         const apitoken::v1::DisableTokenRequest* request,
                                         apitoken::v1::DisableTokenResponse* response) override;
  grpc::ServerUnaryReactor* DeleteToken(grpc::CallbackServerContext* context,
                                        const apitoken::v1::DeleteTokenRequest* request,
                                        apitoken::v1::DeleteTokenResponse* response) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* WatchTokens(grpc::CallbackServerContext* context,
                                                          const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* ListTokenEvents(
      grpc::CallbackServerContext* context, const apitoken::v1::ListTokenEventsRequest* request,
      apitoken::v1::ListTokenEventsResponse* response) override;

 private:
  // Finishes `call` with what `read` returns once the cache has synced and reached
  // `min_revision` (core/read_at_revision.h: the sync is waited for up to options_.sync_wait).
  // `call` is a UnaryCall<UnloggedCall> or VerifySecret's end (defined in the .cc only).
  template <typename Call>
  void ReadAtRevision(const grpc::CallbackServerContext& context, int64_t min_revision, Call call,
                      absl::AnyInvocable<absl::Status()> read);
  // UNAVAILABLE / MIRROR_NOT_READY unless the cache has synced. Checked before a lookup.
  absl::Status CheckSynced() const;
  // UNAVAILABLE / CACHE_STALE for a lookup that was not `fresh` under kFailClosed.
  absl::Status CheckFresh(bool fresh) const;
  // UNIMPLEMENTED / UPSTREAM_ONLY: `what`, then "tokenstatus-server at <upstream>".
  absl::Status UpstreamOnly(absl::string_view what) const;
  // Finishes the call of `context` with UpstreamOnly(what).
  grpc::ServerUnaryReactor* Refuse(grpc::CallbackServerContext* context,
                                   absl::string_view what) const;

  TokenCache& cache_;
  const SidecarServiceOptions options_;
  RevisionWaiters waiters_;
  TokenCache::ListenerId listener_ = 0;  // set in the constructor, removed in the destructor
};

}  // namespace tokenstatus
