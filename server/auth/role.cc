#include "server/auth/role.h"

#include <array>
#include <vector>

#include "absl/strings/str_join.h"

namespace tokenstatus {
namespace {

constexpr std::array<Role, 4> kRoles = {Role::kAdmin, Role::kOperator, Role::kReader,
                                        Role::kVerifier};

// The permissions of one role, without inheritance (admin, operator: see Allows).
bool Grants(Role role, Permission permission) {
  switch (role) {
    case Role::kAdmin:
      return true;
    case Role::kOperator:
      return permission == Permission::kCreate || permission == Permission::kChangeState ||
             permission == Permission::kReadHistory || Grants(Role::kReader, permission);
    case Role::kReader:
      return permission == Permission::kRead || permission == Permission::kWatch;
    case Role::kVerifier:
      return permission == Permission::kVerify || permission == Permission::kWatch ||
             permission == Permission::kWatchSecretHashes;
  }
  return false;
}

}  // namespace

bool RoleSet::Allows(Permission permission) const {
  for (Role role : kRoles) {
    if (Has(role) && Grants(role, permission)) return true;
  }
  return false;
}

std::string RoleSet::ToString() const {
  std::vector<absl::string_view> names;
  for (Role role : kRoles) {
    if (Has(role)) names.push_back(RoleName(role));
  }
  return absl::StrJoin(names, ",");
}

std::optional<Role> ParseRole(absl::string_view name) {
  for (Role role : kRoles) {
    if (RoleName(role) == name) return role;
  }
  return std::nullopt;
}

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kAdmin:
      return "admin";
    case Role::kOperator:
      return "operator";
    case Role::kReader:
      return "reader";
    case Role::kVerifier:
      return "verifier";
  }
  return "unknown";
}

}  // namespace tokenstatus
