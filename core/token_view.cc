#include "core/token_view.h"

namespace tokenstatus {

using apitoken::v1::Token;
using apitoken::v1::VerifyTokenResponse;

Token WithoutSecretHash(Token token) {
  token.clear_secret_sha256();
  return token;
}

VerifyTokenResponse::Result VerifyResultOf(Token::State state) {
  switch (state) {
    case Token::STATE_ACTIVE:
      return VerifyTokenResponse::RESULT_VALID;
    case Token::STATE_DISABLED:
      return VerifyTokenResponse::RESULT_DISABLED;
    case Token::STATE_DELETED:
      return VerifyTokenResponse::RESULT_DELETED;
    default:
      // Never stored; fail closed.
      return VerifyTokenResponse::RESULT_NOT_FOUND;
  }
}

}  // namespace tokenstatus
