#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "apitoken/v1/token_service.pb.h"

namespace tokenstatus {

// The query and the page of a token listing, shared by every place that lists tokens: the store
// (TokenStore::List), the server's mirror, the read RPCs and a client's TokenCache, so that a
// listing means the same everywhere.

using Token = apitoken::v1::Token;

// A listing's cursor, page size and filters (TokenStore::List, TokenCache::List).
struct ListParams {
  std::string after_id;  // exclusive keyset cursor; empty = from the first id
  int page_size = 100;   // 1..1000
  Token::State state = Token::STATE_UNSPECIFIED;  // filter; UNSPECIFIED = no state filter
  std::string account_id;                         // filter; empty = every account
  bool show_deleted = false;                      // with STATE_UNSPECIFIED: include DELETED tokens
};

// One page of a listing.
struct TokenPage {
  std::vector<Token> tokens;  // ordered by id, every one matching the filters
  std::string next_after_id;  // cursor for the next page; empty when the listing is complete
  int64_t revision = 0;       // the global revision the page was served at
  std::string epoch;          // the dataset's epoch (empty if nothing was ever written)
  std::string chain;          // the history mark at `revision` (TokenEvent.chain; empty if none)
};

// Whether `token` belongs in a listing with `params`' filters (account, state, show_deleted):
// STATE_UNSPECIFIED lists ACTIVE and DISABLED tokens, DELETED ones too with show_deleted; any
// other state lists exactly that state.
bool MatchesListFilter(const Token& token, const ListParams& params);

}  // namespace tokenstatus
