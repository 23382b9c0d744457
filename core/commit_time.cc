#include "core/commit_time.h"

namespace tokenstatus {

absl::Time CommitTimeOf(const apitoken::v1::Token& token) {
  return absl::FromUnixSeconds(token.update_time().seconds()) +
         absl::Nanoseconds(token.update_time().nanos());
}

}  // namespace tokenstatus
