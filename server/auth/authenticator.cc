#include "server/auth/authenticator.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/bearer.h"
#include "core/status_util.h"

namespace tokenstatus {
namespace {

absl::Status InvalidCredentials(absl::string_view why) {
  return MakeError(absl::StatusCode::kUnauthenticated, reason::kInvalidCredentials,
                   absl::StrCat("invalid credentials: ", why));
}

RoleSet AllRoles() {
  RoleSet roles(Role::kAdmin);
  roles.Add(Role::kOperator);
  roles.Add(Role::kReader);
  roles.Add(Role::kVerifier);
  return roles;
}

}  // namespace

Authenticator::Authenticator(bool allow_unauthenticated,
                             std::shared_ptr<const CredentialTable> credentials)
    : allow_unauthenticated_(allow_unauthenticated), credentials_(std::move(credentials)) {}

void Authenticator::SetCredentials(std::shared_ptr<const CredentialTable> credentials) {
  absl::MutexLock lock(&mu_);
  credentials_ = std::move(credentials);
}

absl::StatusOr<Identity> Authenticator::Authenticate(const CallCredentials& call) const {
  std::shared_ptr<const CredentialTable> credentials;
  {
    absl::MutexLock lock(&mu_);
    credentials = credentials_;
  }
  if (call.authorization.has_value()) {
    const std::optional<absl::string_view> bearer = BearerCredential(*call.authorization);
    if (!bearer.has_value()) {
      return InvalidCredentials("the authorization metadata must be \"Bearer <secret>\"");
    }
    const Identity* identity = credentials->Authenticate(*bearer);
    if (identity == nullptr) return InvalidCredentials("unknown bearer credential");
    return *identity;
  }
  if (call.certificate_principal.has_value()) {
    return Identity{*call.certificate_principal, credentials->RolesOf(*call.certificate_principal)};
  }
  if (allow_unauthenticated_) return Identity{kAnonymousPrincipal, AllRoles()};
  return MakeError(absl::StatusCode::kUnauthenticated, reason::kMissingCredentials,
                   "credentials required: an authorization: Bearer <secret> metadata or a TLS "
                   "client certificate");
}

absl::Status Authenticator::Authorize(const Identity& identity, Permission permission,
                                      absl::string_view rpc) {
  if (identity.roles.Allows(permission)) return absl::OkStatus();
  return MakeError(absl::StatusCode::kPermissionDenied, reason::kPermissionDenied,
                   absl::StrCat("principal ", identity.principal, " (roles: ",
                                identity.roles.empty() ? "none" : identity.roles.ToString(),
                                ") may not call ", rpc),
                   {{"principal", identity.principal}, {"rpc", rpc}});
}

}  // namespace tokenstatus
