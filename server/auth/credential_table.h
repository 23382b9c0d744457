#pragma once

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/auth/role.h"

namespace tokenstatus {

// Who a caller is: its principal name and the roles it holds.
struct Identity {
  std::string principal;
  RoleSet roles;
};

// The bearer credentials of --credentials_file: the SHA-256 of each secret → its identity.
//
// File format, one credential per line, fields separated by spaces or tabs:
//   <SHA-256 of the secret: 64 hex digits> <role> <principal>
// Blank lines and lines whose first non-blank character is '#' are ignored. A principal holds
// several roles through several lines (with the same secret or different ones). A principal
// name is 1..256 characters of [A-Za-z0-9._@:/+=-] (a DNS or URI SAN fits). The file holds no
// secret, only hashes; still, error messages name the line number, never its content.
//
// Immutable after Parse; thread-safe for concurrent reads.
class CredentialTable {
 public:
  // The largest file Load reads.
  static constexpr size_t kMaxFileBytes = 1 << 20;

  // An empty table (authenticates nobody).
  CredentialTable() = default;

  // Parses `contents`. INVALID_ARGUMENT / INVALID_CREDENTIALS_FILE naming the first bad line:
  // a wrong number of fields, a hash that is not 64 hex digits, an unknown role, a bad
  // principal name, or a secret already given to another principal.
  static absl::StatusOr<CredentialTable> Parse(absl::string_view contents);

  // Reads and parses the file at `path`: Parse's errors, or FAILED_PRECONDITION /
  // INVALID_CREDENTIALS_FILE if it cannot be read or is larger than kMaxFileBytes.
  static absl::StatusOr<CredentialTable> Load(const std::string& path);

  // The identity of the bearer `secret`, or nullptr. The pointer is valid while the table is.
  const Identity* Authenticate(absl::string_view secret) const;

  // The roles the file gives `principal` (the union over its lines; empty if none): the roles
  // of a caller authenticated by its TLS client certificate.
  RoleSet RolesOf(absl::string_view principal) const;

  // Distinct secrets (hashes) in the table.
  size_t size() const { return by_hash_.size(); }

 private:
  // SHA-256 (32 raw bytes) → identity.
  absl::flat_hash_map<std::string, Identity> by_hash_;
  // Principal → the union of its roles.
  absl::flat_hash_map<std::string, RoleSet> by_principal_;
};

}  // namespace tokenstatus
