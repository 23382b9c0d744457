#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/token_cache.h"
#include "envoy/service/auth/v3/external_auth.pb.h"

namespace tokenstatus {

// What token-sidecar answers Envoy's ext_authz filter (envoy.service.auth.v3.Authorization/
// Check): the request -> response mapping, pure (no cache, no I/O); ExtAuthzService
// (ext_authz_service.h) serves it.
//
// A Check is answered in two steps: ExtAuthzCredential finds the secret in the request's
// headers, SidecarService::VerifySecret verifies it as VerifyToken does, and ExtAuthzAnswer turns
// the outcome into the CheckResponse. Every answer is an OK RPC: a denial is a non-OK
// CheckResponse.status with a denied_response (a gRPC error would take Envoy's error path, which
// its failure_mode_allow decides).
//
//   outcome                                    status.code        HTTP  reason
//   allowed                                    OK                 -     -
//   no credential header (or empty)            UNAUTHENTICATED    401   MISSING_CREDENTIALS
//   malformed credential, unknown secret       UNAUTHENTICATED    401   INVALID_CREDENTIALS
//   token DELETED                              UNAUTHENTICATED    401   TOKEN_DELETED
//   token DISABLED                             PERMISSION_DENIED  403   TOKEN_DISABLED
//   token of another account than the route's  PERMISSION_DENIED  403   PERMISSION_DENIED
//   cache stale (fail closed), not synced yet, UNAVAILABLE        503   CACHE_STALE,
//   or the sidecar shutting down                                        MIRROR_NOT_READY,
//                                                                       SERVER_SHUTTING_DOWN
//
// A 401 carries `www-authenticate: Bearer`, a 503 `retry-after`; each denial has the body
// {"error": "<message>", "reason": "<reason>"} (content-type application/json), and its status
// carries the same ErrorInfo a TokenService error would (RpcStatusOf). An unknown token id and a
// wrong secret for a known one are answered alike, and no answer contains the secret.

// The options of ExtAuthzAnswer and ExtAuthzCredential (token-sidecar's --authz_* flags).
struct ExtAuthzOptions {
  // The request header that carries the credential, lower-case: "authorization" carries
  // "Bearer <secret>" (the scheme in any case), any other header (e.g. "x-api-key") the bare
  // secret.
  std::string credential_header = "authorization";
  // The upstream request headers an allowed request gets (overwriting any the client sent): the
  // token's id and its account's. Lower-case.
  std::string token_id_header = "x-token-id";
  std::string account_id_header = "x-account-id";
  // An allowed request loses its credential header, so the upstream never sees the secret.
  bool strip_credential = true;
  // The retry-after of a 503, in whole seconds (rounded up, at least 1).
  absl::Duration retry_after = absl::Seconds(1);
};

// The context_extensions keys ExtAuthzAnswer reads (per-route settings of the ext_authz filter);
// every other key is ignored.
// "account_id": the account (ACC-NNNN-NNNN) the token must belong to; a token of another account
// is denied with 403 / PERMISSION_DENIED.
inline constexpr char kRequiredAccountExtension[] = "account_id";

// Returns the secret in `request`'s options.credential_header, read from
// attributes.request.http.headers or, when Envoy sends raw headers, from http.header_map (a
// header's value, else its raw_value; names compared case-insensitively); surrounding whitespace
// is dropped. Errors (UNAUTHENTICATED): MISSING_CREDENTIALS if the header is absent or empty;
// INVALID_CREDENTIALS if it is there more than once, or if "authorization" does not hold
// "Bearer <secret>". The secret's form is VerifySecret's to judge. Messages name the header,
// never its value.
absl::StatusOr<std::string> ExtAuthzCredential(
    const envoy::service::auth::v3::CheckRequest& request, const ExtAuthzOptions& options);

// The answer to `request` whose credential came out as `verified`: the VerifyResult of its
// secret, or the error of ExtAuthzCredential or VerifySecret (see the table above; an error of
// another code is answered as a 503). Allowed (RESULT_VALID, and the token of the route's account
// if context_extensions names one): status OK; ok_response sets the token_id_header and
// account_id_header upstream request headers (append false: a client's own values are replaced)
// and, with strip_credential, removes credential_header; dynamic_metadata is {"token_id",
// "account_id", "revision" (the token's, a number)}.
envoy::service::auth::v3::CheckResponse ExtAuthzAnswer(
    const envoy::service::auth::v3::CheckRequest& request,
    const absl::StatusOr<VerifyResult>& verified, const ExtAuthzOptions& options);

}  // namespace tokenstatus
