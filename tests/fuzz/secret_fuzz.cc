// Fuzzes secret parsing: a secret ParseSecret accepts is "idt:<id>:<opaque>" with a valid token
// id, and the id returned is the one inside it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/token_secret.h"
#include "core/validation.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view secret(reinterpret_cast<const char*>(data), size);
  const std::optional<std::string> id = tokenstatus::ParseSecret(secret);
  if (!id.has_value()) return 0;
  if (!tokenstatus::IsValidTokenId(*id)) std::abort();
  if (!absl::StartsWith(secret, absl::StrCat("idt:", *id, ":"))) std::abort();
  const size_t opaque = secret.size() - id->size() - 5;
  if (opaque < 16 || opaque > 256) std::abort();
  return 0;
}
