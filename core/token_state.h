#pragma once

#include "absl/strings/string_view.h"
#include "apitoken/v1/token_service.pb.h"

namespace tokenstatus {

// The one spelling of a token state outside the proto: "ACTIVE", "DISABLED", "DELETED" (the
// enum value names without "STATE_"); "" for STATE_UNSPECIFIED and values outside the enum.
// Log lines and the Redis store (server/store/token_record.h) both use it. Pure, thread-safe.
absl::string_view StateName(apitoken::v1::Token::State state);

}  // namespace tokenstatus
