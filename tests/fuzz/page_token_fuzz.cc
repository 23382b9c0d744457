// Fuzzes page-token decoding. The input is tried:
// - as a ListTokens page token: decoding never crashes, and what it accepts re-encodes to a
//   token that decodes to the same id;
// - as a ListTokenEvents (history) page token: the same, for the revision;
// - as the fields of a page token (a last id and an account): encoding then decoding gives the
//   id back, and the token is refused with other filters.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/string_view.h"
#include "core/page_token.h"
#include "core/validation.h"

namespace {

using ::tokenstatus::DecodePageToken;
using ::tokenstatus::EncodePageToken;
using ::tokenstatus::PageFilter;

void DecodeAsToken(absl::string_view input, const PageFilter& filter) {
  absl::StatusOr<std::string> id = DecodePageToken(input, filter);
  if (!id.ok()) return;
  absl::StatusOr<std::string> again = DecodePageToken(EncodePageToken(*id, filter), filter);
  if (!again.ok() || *again != *id) std::abort();
}

void DecodeAsHistoryToken(absl::string_view input, absl::string_view token_id) {
  absl::StatusOr<int64_t> revision = tokenstatus::DecodeHistoryPageToken(input, token_id);
  if (!revision.ok()) return;
  if (*revision <= 0) std::abort();
  absl::StatusOr<int64_t> again = tokenstatus::DecodeHistoryPageToken(
      tokenstatus::EncodeHistoryPageToken(token_id, *revision), token_id);
  if (!again.ok() || *again != *revision) std::abort();
}

void RoundTrip(absl::string_view input, PageFilter filter) {
  const size_t split = input.empty() ? 0 : static_cast<uint8_t>(input[0]) % input.size();
  const absl::string_view last_id = input.substr(0, split);
  filter.account_id = std::string(input.substr(split));
  // EncodePageToken's contract: valid ids only.
  if (!tokenstatus::IsValidTokenId(last_id)) return;
  if (!filter.account_id.empty() && !tokenstatus::ValidateAccountId(filter.account_id).ok()) {
    return;
  }
  const std::string token = EncodePageToken(last_id, filter);
  absl::StatusOr<std::string> id = DecodePageToken(token, filter);
  if (!id.ok() || *id != last_id) std::abort();
  PageFilter other = filter;
  other.show_deleted = !other.show_deleted;
  if (DecodePageToken(token, other).ok()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  PageFilter filter;
  filter.state = apitoken::v1::Token::STATE_DISABLED;
  DecodeAsToken(input, filter);
  DecodeAsToken(input, PageFilter{});
  DecodeAsHistoryToken(input, "TKN-1234-5678");
  RoundTrip(input, filter);
  return 0;
}
