#pragma once

#include "server/redis/redis_script.h"

namespace tokenstatus {

// The Lua scripts of RedisTokenStore (layout: README "Redis layout", server/store/token_record.h).
// `<p>` is the store's key prefix. Every script runs atomically; the change scripts read the
// clock with TIME, and refuse with an error reply "<REASON> <detail>" (REASON as in
// core/status_util.h, e.g. "REVISION_MISMATCH 41" carries the current revision) before
// writing anything. The returned objects live forever; thread-safe.

// Change scripts share this layout:
//   KEYS: 1 <p>:t:<id>, 2 <p>:rev, 3 <p>:events, 4 <p>:meta, 5 <p>:h:<id>
//   ARGV: 1 <p>, 2 a fresh random epoch candidate (kept only by the first change of an empty
//         dataset), 3 event retention (XADD MAXLEN ~), 4 actor, then the script's own.
// A change appends the event `<rev>-0` (type, prev, chain + the record's fields) first, then
// sets <p>:rev, the history mark <p>:meta chain,
// the record and the indexes, and adds <rev> to the token's history index <p>:h:<id> (a sorted
// set of the revisions of its changes, member and score the revision), trimmed to its newest
// kMaxHistoryPerToken (server/store/token_store.h). Its reply holds the record after the change
// as a flat field/value list (its "record" below).
//
// History marks: `chain` = the first 16 hex digits of SHA-1(prev ":" nonce ":" revision), where
// `prev` is the mark before the change (<p>:meta chain, "" for the first change or a dataset
// written before marks existed) and the nonce is ARGV 2 (random per change). The event carries
// both `prev` and `chain`; <p>:meta chain holds the head's mark. Equal marks at one revision
// mean one history (with overwhelming probability); a restored older copy that is then changed
// again reaches the same revisions with other marks.

// ARGV 5 id, 6 account_id, 7 name, 8 description, 9 secret_sha256 (lowercase hex).
// Returns the record. Errors: TOKEN_ALREADY_EXISTS.
const RedisScript& CreateTokenScript();

// ARGV 5 ENABLE | DISABLE | DELETE, 6 expected revision ("0" = any), 7 reason.
// Returns {previous state, record}: the state the token left (ACTIVE | DISABLED) and the record.
// Errors, in this order: TOKEN_NOT_FOUND, TOKEN_DELETED, TOKEN_ALREADY_ACTIVE |
// TOKEN_ALREADY_DISABLED, REVISION_MISMATCH <current revision>.
const RedisScript& ApplyTransitionScript();

// Read-only. KEYS: 1 <p>:t:<id>, 2 <p>:rev.
// Returns {revision, record field/value list}. Errors: TOKEN_NOT_FOUND.
const RedisScript& GetTokenScript();

// Read-only. KEYS: 1 the index to page through (<p>:idx:...), 2 <p>:rev, 3 <p>:meta.
// ARGV: 1 <p>, 2 exclusive start id ("" = from the first), 3 page size, 4 scan limit (index
// entries examined at most), 5 state filter ("" = any), 6 "1" to include DELETED tokens when
// there is no state filter.
// Returns {revision, epoch ("" if none), chain ("" if none), cursor, record field/value list...}:
// the matching
// records in id order; cursor is the last id examined when the index goes on past it, "" when
// the index is exhausted.
const RedisScript& ListTokensScript();

// Read-only. KEYS: 1 <p>:idx:all, 2 <p>:rev, 3 <p>:meta.
// ARGV: 1 exclusive start id ("" = from the first), 2 inclusive last id ("" = to the last),
// 3 limit (>= 1).
// Returns {revision, epoch ("" if none), chain ("" if none), ids}: the head and the next
// limit + 1 ids of the range (one more than asked: whether it exists tells whether the range
// goes on). RedisTokenStore::Scan then reads the records themselves.
const RedisScript& ScanIdsScript();

// Read-only. KEYS: 1 <p>:idx:all. ARGV: 1 parts (>= 1).
// Returns the ids at the ranks ZCARD * i / parts - 1 (i = 1 .. parts - 1) that exist, without
// repeats: the ends of all but the last of `parts` ranges of about equal size.
const RedisScript& SplitIdsScript();

// Read-only. KEYS: 1 <p>:t:<id>, 2 <p>:h:<id>, 3 <p>:events.
// ARGV: 1 exclusive upper revision ("0" = from the newest), 2 limit (>= 1).
// Returns {more ("1" | "0"), entries}: up to `limit` event entries of the token's history index
// below the upper revision, newest first, as XRANGE returns entries; the history ends at the
// first indexed revision whose event the stream no longer holds (trimmed, so every older one is
// too). more is "1" when the entry after the last one returned exists. Errors: TOKEN_NOT_FOUND.
const RedisScript& ReadHistoryScript();

// Read-only. KEYS: 1 <p>:rev, 2 <p>:meta.
// Returns {revision ("0" if none), epoch ("" if none), chain ("" if none)}.
const RedisScript& ReadHeadScript();

}  // namespace tokenstatus
