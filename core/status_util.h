#pragma once

#include <initializer_list>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/rpc/error_details.pb.h"

namespace tokenstatus {

// The ErrorInfo domain of every error this service returns.
inline constexpr char kErrorDomain[] = "tokenstatus.apitoken.v1";

// ErrorInfo reasons (UPPER_SNAKE_CASE). Clients match on these; never rename one.
namespace reason {
inline constexpr char kInvalidArgument[] = "INVALID_ARGUMENT";
inline constexpr char kInvalidTokenId[] = "INVALID_TOKEN_ID";
inline constexpr char kInvalidAccountId[] = "INVALID_ACCOUNT_ID";
inline constexpr char kInvalidName[] = "INVALID_NAME";
inline constexpr char kInvalidDescription[] = "INVALID_DESCRIPTION";
inline constexpr char kInvalidReason[] = "INVALID_REASON";
inline constexpr char kInvalidSecretHash[] = "INVALID_SECRET_SHA256";
inline constexpr char kInvalidPageSize[] = "INVALID_PAGE_SIZE";
inline constexpr char kInvalidPageToken[] = "INVALID_PAGE_TOKEN";
inline constexpr char kInvalidRevision[] = "INVALID_REVISION";
inline constexpr char kInvalidState[] = "INVALID_STATE";
inline constexpr char kTokenNotFound[] = "TOKEN_NOT_FOUND";
inline constexpr char kTokenAlreadyExists[] = "TOKEN_ALREADY_EXISTS";
inline constexpr char kTokenAlreadyActive[] = "TOKEN_ALREADY_ACTIVE";
inline constexpr char kTokenAlreadyDisabled[] = "TOKEN_ALREADY_DISABLED";
inline constexpr char kTokenDeleted[] = "TOKEN_DELETED";
// A request was refused because the token it presented is disabled (token-sidecar's answer to
// Envoy's ext_authz Check, TokenAuthProcessor).
inline constexpr char kTokenDisabled[] = "TOKEN_DISABLED";
inline constexpr char kRevisionMismatch[] = "REVISION_MISMATCH";
inline constexpr char kRevisionNotReached[] = "REVISION_NOT_REACHED";
inline constexpr char kMirrorNotReady[] = "MIRROR_NOT_READY";
// A change was stored, but this replica could not confirm it in time (its mirror had not applied
// it); metadata {"revision": the change's}. It may or may not have been kept.
inline constexpr char kChangeUnconfirmed[] = "CHANGE_UNCONFIRMED";
// A change was applied on the Redis primary, but fewer replicas than --min_replicas_acked
// confirmed it within --replica_ack_timeout (WAIT); metadata {"revision": the change's,
// "replicas_acked": how many did}. It may or may not survive a failover.
inline constexpr char kReplicationUnconfirmed[] = "REPLICATION_UNCONFIRMED";
// A client-side copy (token-sidecar's cache) has heard nothing from the server for too long.
inline constexpr char kCacheStale[] = "CACHE_STALE";
// A read-only replica (token-sidecar) was asked for what only the server does (a change, a
// token's history); metadata {"upstream": the server's address}.
inline constexpr char kUpstreamOnly[] = "UPSTREAM_ONLY";
inline constexpr char kWatcherFellBehind[] = "WATCHER_FELL_BEHIND";
inline constexpr char kTooManyWatchers[] = "TOO_MANY_WATCHERS";
// A watch stream's snapshot found no room in the server's snapshot memory budget in time;
// metadata {"retry_after_ms": when to try again, "revision": where to resume}.
inline constexpr char kSnapshotBudgetExhausted[] = "SNAPSHOT_BUDGET_EXHAUSTED";
inline constexpr char kServerShuttingDown[] = "SERVER_SHUTTING_DOWN";
inline constexpr char kStoreUnavailable[] = "STORE_UNAVAILABLE";
inline constexpr char kStoreError[] = "STORE_ERROR";
inline constexpr char kInternal[] = "INTERNAL";
inline constexpr char kInvalidCredentialsFile[] = "INVALID_CREDENTIALS_FILE";
inline constexpr char kMissingCredentials[] = "MISSING_CREDENTIALS";
inline constexpr char kInvalidCredentials[] = "INVALID_CREDENTIALS";
inline constexpr char kPermissionDenied[] = "PERMISSION_DENIED";
}  // namespace reason

// ErrorInfo metadata key of a retry hint: milliseconds the client should wait before trying
// again (SNAPSHOT_BUDGET_EXHAUSTED carries it; TokenCache waits at least that long).
inline constexpr char kRetryAfterMsKey[] = "retry_after_ms";

// Returns a non-OK status with `code` and `message` that carries a google.rpc.ErrorInfo with
// `reason`, kErrorDomain and `metadata` as a payload (see ErrorInfoOf). `code` must not be kOk.
absl::Status MakeError(
    absl::StatusCode code, absl::string_view reason, absl::string_view message,
    std::initializer_list<std::pair<absl::string_view, absl::string_view>> metadata = {});

// Returns the ErrorInfo attached by MakeError. A non-OK status without one gets reason
// "INTERNAL" for kInternal/kUnknown codes, else the code's name (e.g. "UNAVAILABLE"); an OK
// status gets an empty ErrorInfo.
google::rpc::ErrorInfo ErrorInfoOf(const absl::Status& status);

// Shorthand for ErrorInfoOf(status).reason().
std::string ErrorReason(const absl::Status& status);

}  // namespace tokenstatus
