// Fuzzes token id parsing: IsValidTokenId and ValidateTokenId must agree with each other and
// with the format ^TKN(-[0-9]{4}){2,3}$, checked here independently.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"
#include "core/validation.h"

namespace {

bool MatchesFormat(absl::string_view id) {
  if (id.size() != 13 && id.size() != 18) return false;
  if (id.substr(0, 3) != "TKN") return false;
  for (size_t i = 3; i < id.size(); i += 5) {
    if (id[i] != '-') return false;
    for (size_t j = i + 1; j < i + 5; ++j) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(id[j]))) return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view id(reinterpret_cast<const char*>(data), size);
  const bool valid = tokenstatus::IsValidTokenId(id);
  if (valid != MatchesFormat(id)) std::abort();
  if (valid != tokenstatus::ValidateTokenId(id).ok()) std::abort();
  return 0;
}
