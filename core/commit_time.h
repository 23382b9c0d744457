#pragma once

#include "absl/time/time.h"
#include "apitoken/v1/token_service.pb.h"

namespace tokenstatus {

// When the token's last change was committed: its update_time, set by the server's clock in
// the change's script. What the lag metrics (the mirror's, the fan-out's, a cache's
// propagation) are measured from. Pure, thread-safe.
absl::Time CommitTimeOf(const apitoken::v1::Token& token);

}  // namespace tokenstatus
