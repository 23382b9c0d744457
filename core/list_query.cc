#include "core/list_query.h"

namespace tokenstatus {

bool MatchesListFilter(const Token& token, const ListParams& params) {
  if (!params.account_id.empty() && token.account_id() != params.account_id) return false;
  if (params.state != Token::STATE_UNSPECIFIED) return token.state() == params.state;
  return params.show_deleted || token.state() != Token::STATE_DELETED;
}

}  // namespace tokenstatus
