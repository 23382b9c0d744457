#include "server/auth/credential_table.h"

#include <fstream>
#include <iterator>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/status_util.h"
#include "core/token_secret.h"
#include "core/validation.h"

namespace tokenstatus {
namespace {

constexpr size_t kMaxPrincipalLength = 256;

absl::Status BadFile(absl::string_view message) {
  return MakeError(absl::StatusCode::kInvalidArgument, reason::kInvalidCredentialsFile,
                   absl::StrCat("credentials file: ", message));
}

absl::Status BadLine(int line_number, absl::string_view problem) {
  return BadFile(absl::StrCat("line ", line_number, ": ", problem));
}

bool IsValidPrincipal(absl::string_view principal) {
  if (principal.empty() || principal.size() > kMaxPrincipalLength) return false;
  for (char c : principal) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && !absl::StrContains("._@:/+=-", c)) {
      return false;
    }
  }
  return true;
}

}  // namespace

absl::StatusOr<CredentialTable> CredentialTable::Parse(absl::string_view contents) {
  CredentialTable table;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    const std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.size() != 3) {
      return BadLine(line_number, "expected 3 fields: <sha256 hex> <role> <principal>");
    }
    absl::StatusOr<std::string> hash = ParseSecretSha256(fields[0]);
    if (!hash.ok()) return BadLine(line_number, "the first field must be 64 hex digits");
    const std::optional<Role> role = ParseRole(fields[1]);
    if (!role.has_value()) {
      return BadLine(line_number, "unknown role (admin, operator, reader or verifier)");
    }
    if (!IsValidPrincipal(fields[2])) {
      return BadLine(line_number, absl::StrCat("the principal must be 1..", kMaxPrincipalLength,
                                               " characters of [A-Za-z0-9._@:/+=-]"));
    }
    auto [it, inserted] = table.by_hash_.try_emplace(*std::move(hash));
    Identity& identity = it->second;
    if (inserted) {
      identity.principal = std::string(fields[2]);
    } else if (identity.principal != fields[2]) {
      return BadLine(line_number, "this secret already belongs to another principal");
    }
    identity.roles.Add(*role);
    table.by_principal_[identity.principal].Add(*role);
  }
  return table;
}

absl::StatusOr<CredentialTable> CredentialTable::Load(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return MakeError(absl::StatusCode::kFailedPrecondition, reason::kInvalidCredentialsFile,
                     absl::StrCat("cannot read the credentials file ", path));
  }
  std::string contents;
  contents.resize(kMaxFileBytes + 1);
  file.read(contents.data(), static_cast<std::streamsize>(contents.size()));
  if (file.bad()) {
    return MakeError(absl::StatusCode::kFailedPrecondition, reason::kInvalidCredentialsFile,
                     absl::StrCat("cannot read the credentials file ", path));
  }
  contents.resize(static_cast<size_t>(file.gcount()));
  if (contents.size() > kMaxFileBytes) {
    return MakeError(
        absl::StatusCode::kFailedPrecondition, reason::kInvalidCredentialsFile,
        absl::StrCat("the credentials file ", path, " is larger than ", kMaxFileBytes, " bytes"));
  }
  return Parse(contents);
}

const Identity* CredentialTable::Authenticate(absl::string_view secret) const {
  auto it = by_hash_.find(Sha256(secret));
  return it == by_hash_.end() ? nullptr : &it->second;
}

RoleSet CredentialTable::RolesOf(absl::string_view principal) const {
  auto it = by_principal_.find(principal);
  return it == by_principal_.end() ? RoleSet() : it->second;
}

}  // namespace tokenstatus
