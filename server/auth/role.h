#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace tokenstatus {

// The roles of the access-control model and what each may do. Pure, thread-safe.
//
//   admin     everything
//   operator  create, enable, disable, delete, read the history, and what a reader may
//   reader    get, list, watch without secret hashes
//   verifier  verify, and watch with or without secret hashes (client caches that verify
//             secrets locally)
//
// A principal may hold several roles: a RoleSet is their union.

enum class Role : uint8_t {
  kAdmin = 1 << 0,
  kOperator = 1 << 1,
  kReader = 1 << 2,
  kVerifier = 1 << 3,
};

// What a call asks to do. Each RPC maps to one; WatchTokens to kWatch or, with
// include_secret_hash, kWatchSecretHashes.
enum class Permission {
  kCreate,
  kChangeState,  // enable, disable, delete
  kRead,         // get, list
  kReadHistory,  // the change history of a token
  kWatch,
  kWatchSecretHashes,
  kVerify,
};

// A set of roles (a bit mask of Role values).
class RoleSet {
 public:
  constexpr RoleSet() = default;
  constexpr RoleSet(Role role) : bits_(static_cast<uint8_t>(role)) {}  // NOLINT: implicit

  // Adds `role`.
  void Add(Role role) { bits_ |= static_cast<uint8_t>(role); }
  bool Has(Role role) const { return (bits_ & static_cast<uint8_t>(role)) != 0; }
  bool empty() const { return bits_ == 0; }
  // True if any role of the set grants `permission`.
  bool Allows(Permission permission) const;
  // The roles' names in the order admin, operator, reader, verifier, joined by ",".
  std::string ToString() const;

  bool operator==(const RoleSet&) const = default;

 private:
  uint8_t bits_ = 0;
};

// The role named `name` ("admin", "operator", "reader", "verifier"; exact, lowercase), or
// nullopt.
std::optional<Role> ParseRole(absl::string_view name);

// The name of `role`.
absl::string_view RoleName(Role role);

}  // namespace tokenstatus
