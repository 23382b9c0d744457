#include "core/token_state.h"

namespace tokenstatus {

absl::string_view StateName(apitoken::v1::Token::State state) {
  switch (state) {
    case apitoken::v1::Token::STATE_ACTIVE:
      return "ACTIVE";
    case apitoken::v1::Token::STATE_DISABLED:
      return "DISABLED";
    case apitoken::v1::Token::STATE_DELETED:
      return "DELETED";
    default:
      return "";
  }
}

}  // namespace tokenstatus
