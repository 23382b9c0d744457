// Fuzzes the credentials-file parser: it never crashes; it refuses with INVALID_ARGUMENT and a
// short fixed message naming a line (never the line's content, which would be at least 64
// characters of hash); it accepts at most one credential per line.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/string_view.h"
#include "server/auth/credential_table.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view contents(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<tokenstatus::CredentialTable> table =
      tokenstatus::CredentialTable::Parse(contents);
  if (!table.ok()) {
    if (table.status().code() != absl::StatusCode::kInvalidArgument) std::abort();
    // Messages are a fixed text and a line number: never longer than this.
    if (table.status().message().size() > 160) std::abort();
    return 0;
  }
  // At most one credential per non-empty line.
  size_t lines = 1;
  for (char c : contents) lines += c == '\n';
  if (table->size() > lines) std::abort();
  return 0;
}
