#pragma once

#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/auth/credential_table.h"
#include "server/auth/role.h"

namespace tokenstatus {

// What a call presents to prove who it is (see CallCredentialsOf in
// server/auth/call_credentials.h for how a gRPC call's are read).
struct CallCredentials {
  // The `authorization` metadata, if the call sent one.
  std::optional<std::string> authorization;
  // The principal of the TLS client certificate (first DNS or URI SAN, else CN), if the
  // connection is mutual TLS.
  std::optional<std::string> certificate_principal;
};

// The principal of calls without credentials when --insecure_allow_unauthenticated is set.
inline constexpr char kAnonymousPrincipal[] = "anonymous";

// Decides who a call comes from and whether it may do what it asks.
//
// Authenticate, in this order:
//   1. an `authorization: Bearer <secret>` credential (scheme case-insensitive): the identity
//      the credentials file gives that secret; UNAUTHENTICATED / INVALID_CREDENTIALS if the
//      header is malformed or the secret unknown;
//   2. else a TLS client certificate: its principal with the roles the credentials file gives
//      that principal name (possibly none: then every RPC is refused by Authorize);
//   3. else, with allow_unauthenticated, "anonymous" with every role; otherwise
//      UNAUTHENTICATED / MISSING_CREDENTIALS.
// Messages never contain the secret.
//
// Thread-safe. SetCredentials (the SIGHUP reload) swaps the table atomically: a call sees the
// old table or the new one, never a mix; streams already authorized are not re-checked.
class Authenticator {
 public:
  explicit Authenticator(
      bool allow_unauthenticated,
      std::shared_ptr<const CredentialTable> credentials = std::make_shared<CredentialTable>());

  // Installs `credentials` for the calls that start from now on.
  void SetCredentials(std::shared_ptr<const CredentialTable> credentials);

  absl::StatusOr<Identity> Authenticate(const CallCredentials& call) const;

  // OK if `identity` may `permission`; else PERMISSION_DENIED / PERMISSION_DENIED naming the
  // principal, its roles and `rpc`. Decided from the identity alone: callers check this before
  // looking anything up, so a refusal never reveals whether a token exists.
  static absl::Status Authorize(const Identity& identity, Permission permission,
                                absl::string_view rpc);

 private:
  const bool allow_unauthenticated_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const CredentialTable> credentials_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tokenstatus
