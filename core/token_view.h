#pragma once

#include "apitoken/v1/token_service.pb.h"

namespace tokenstatus {

// How a stored token is shown to a caller, shared by the server's RPCs and a client's
// TokenCache so that both answer alike. Pure functions, thread-safe.

// Returns `token` as a response may show it: without secret_sha256.
apitoken::v1::Token WithoutSecretHash(apitoken::v1::Token token);

// The VerifyToken answer for a secret that matched a token in `state`: VALID, DISABLED,
// DELETED; RESULT_NOT_FOUND for STATE_UNSPECIFIED (never stored; fails closed).
apitoken::v1::VerifyTokenResponse::Result VerifyResultOf(apitoken::v1::Token::State state);

}  // namespace tokenstatus
