#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "apitoken/v1/token_service.pb.h"
#include "core/list_query.h"

namespace tokenstatus {

using TokenEvent = apitoken::v1::TokenEvent;

// Inputs of TokenStore::Create. The caller (the service) has validated every field.
struct CreateTokenParams {
  std::string token_id;       // TKN-NNNN-NNNN
  std::string account_id;     // ACC-NNNN-NNNN
  std::string name;           // 1..200 characters
  std::string description;    // 0..2000 characters
  std::string secret_sha256;  // exactly 32 raw bytes
  std::string actor;          // principal making the change
};

// The state changes of an existing token.
enum class Transition {
  kEnable,   // DISABLED -> ACTIVE
  kDisable,  // ACTIVE -> DISABLED
  kDelete,   // ACTIVE|DISABLED -> DELETED
};

// Inputs of TokenStore::Apply. The caller has validated every field.
struct TransitionParams {
  std::string token_id;
  Transition transition = Transition::kDisable;
  int64_t expected_revision = 0;  // > 0: apply only if the token's revision equals it
  std::string reason;             // recorded as state_reason
  std::string actor;              // principal making the change
};

// A token as of a global revision.
struct TokenAtRevision {
  Token token;
  int64_t revision = 0;  // the global revision the read was served at (>= token.revision())
};

// The outcome of TokenStore::Apply.
struct AppliedTransition {
  Token token;                                             // after the change
  Token::State previous_state = Token::STATE_UNSPECIFIED;  // the state it left
};

// Where the store's history stands: its global revision (0 before any change), its epoch
// (empty before any change) and the history mark of its newest change (TokenEvent.chain; empty
// before any change, or if that change was stored before marks existed). A new epoch, a
// revision lower than one seen before, or another mark at a revision seen before means the
// dataset was replaced or lost changes.
struct StoreHead {
  int64_t revision = 0;
  std::string epoch;
  std::string chain;
};

// The outcome of TokenStore::WaitEvents.
struct EventBatch {
  std::vector<TokenEvent> events;  // revision order; may be empty (nothing came in time)
  std::string prev_chain;          // the mark before events.front() (the one at after_revision
                                   // in the history the events belong to); empty if no events
  StoreHead head;                  // read after the events (head.revision >= their revisions
                                   // unless the dataset was replaced in between)
};

// The most changes of one token that TokenStore::ReadHistory can return: only the newest this
// many changes of each token stay in its history (and only as far as the event retention
// reaches).
inline constexpr int kMaxHistoryPerToken = 1000;

// The largest page of TokenStore::Scan, and the most ranges TokenStore::SplitIds cuts.
inline constexpr int kMaxScanSize = 10000;
inline constexpr int kMaxScanParts = 64;

// What TokenStore::Scan reads: tokens with after_id < id <= last_id.
struct ScanParams {
  std::string after_id{};  // exclusive lower bound; "" = from the first token
  std::string last_id{};   // inclusive upper bound; "" = to the last token
  int limit = 1000;        // clamped to 1..kMaxScanSize
};

// One page of TokenStore::ReadHistory.
struct TokenHistoryPage {
  std::vector<TokenEvent> events;  // newest first (descending token.revision), all of one token
  bool more = false;               // older changes follow: read on with before_revision =
                                   // events.back().token().revision() (set only with events)
};

template <typename T>
using StoreCallback = absl::AnyInvocable<void(absl::StatusOr<T>)>;

// The durable home of every token, its global revision and its event stream.
//
// Every change (Create, Apply) is one atomic step: it checks the preconditions, writes the
// record and its indexes, takes the next global revision, and appends one TokenEvent carrying
// the whole token after the change and its history mark (TokenEvent.chain: chained from the
// previous change's mark with a random nonce, so that two histories that share revision
// numbers but not changes never share a mark). No change is stored without its event, and no event
// without its change; a refused change writes nothing.
//
// Every method is asynchronous: it returns at once and calls `done` exactly once, either on the
// calling thread or on a store-owned thread. `done` must not block. The store gives up at
// `deadline` (the earlier of the caller's deadline and the store's own timeout) and then calls
// `done` with UNAVAILABLE.
//
// Errors carry an ErrorInfo reason (core/status_util.h):
//   UNAVAILABLE / STORE_UNAVAILABLE   the backend is unreachable or did not answer in time;
//   INTERNAL / STORE_ERROR            the backend answered something unexpected.
// Method-specific errors are listed on each method.
//
// Returned tokens include secret_sha256; callers strip it where it must not be shown.
// Implementations are thread-safe.
class TokenStore {
 public:
  virtual ~TokenStore() = default;

  // Creates the token in state ACTIVE with the next revision and a TYPE_CREATED event; returns
  // the new token. ALREADY_EXISTS / TOKEN_ALREADY_EXISTS if the id is taken (in any state).
  virtual void Create(CreateTokenParams params, absl::Time deadline, StoreCallback<Token> done) = 0;

  // Applies `params.transition` and returns the token after it together with the state it left
  // (ACTIVE or DISABLED: the one the transition was checked against, read in the same atomic
  // step). Errors, checked in this order:
  //   NOT_FOUND / TOKEN_NOT_FOUND;
  //   FAILED_PRECONDITION / TOKEN_DELETED (any transition of a DELETED token);
  //   FAILED_PRECONDITION / TOKEN_ALREADY_ACTIVE (enable of ACTIVE),
  //                         TOKEN_ALREADY_DISABLED (disable of DISABLED);
  //   ABORTED / REVISION_MISMATCH (expected_revision > 0 and != the token's revision; the
  //                                ErrorInfo metadata "current_revision" holds the actual one).
  virtual void Apply(TransitionParams params, absl::Time deadline,
                     StoreCallback<AppliedTransition> done) = 0;

  // Returns the token and the global revision the read was served at.
  // NOT_FOUND / TOKEN_NOT_FOUND if no token has this id.
  virtual void Get(std::string token_id, absl::Time deadline,
                   StoreCallback<TokenAtRevision> done) = 0;

  // Returns up to params.page_size tokens with id > params.after_id matching the filters, in id
  // order, from one consistent state. A page may hold fewer tokens than asked for while
  // next_after_id is non-empty (the scan of one page is bounded); follow the cursor until it is
  // empty. A token that exists and matches the filters for the whole listing is returned
  // exactly once.
  virtual void List(ListParams params, absl::Time deadline, StoreCallback<TokenPage> done) = 0;

  // The bulk read of a whole dataset (a mirror's load): up to params.limit tokens of the range
  // of `params`, deleted ones included, in id order; next_after_id (the next page's after_id) is
  // empty once the page reached the range's last token. Unlike List, a page is not
  // one consistent state: its revision, epoch and chain are read first, then each token at its
  // own moment, so every token is at least as new as the page's revision; a reader that needs
  // one state replays the events after that revision (EventTailer does). In exchange the store
  // is never held for a whole page. ABORTED / STORE_ERROR if a listed token's record is gone
  // when read (the dataset was replaced during the scan).
  virtual void Scan(ScanParams params, absl::Time deadline, StoreCallback<TokenPage> done) = 0;

  // Ids of tokens (deleted ones included) that cut the ids into `parts` (clamped to
  // 1..kMaxScanParts) ranges of about equal size, from one state, for Scans side by side:
  // (first, ids[0]], (ids[0], ids[1]], ..., (ids.back(), last]. Ascending, without repeats, at
  // most parts - 1 of them; none for one part or an empty store.
  virtual void SplitIds(int parts, absl::Time deadline,
                        StoreCallback<std::vector<std::string>> done) = 0;

  // Returns up to `max_count` events with revision > after_revision, in revision order, as far
  // as the stream's retention reaches.
  virtual void ReadEvents(int64_t after_revision, int max_count, absl::Time deadline,
                          StoreCallback<std::vector<TokenEvent>> done) = 0;

  // Returns up to `limit` (clamped to 1..kMaxPageSize) changes of the token `token_id` with a
  // revision below `before_revision` (0 = from the newest), newest first, from one consistent
  // state. The history ends at the oldest of the token's changes still in the event stream's
  // retention, and at its kMaxHistoryPerToken newest changes; `more` says whether a next page
  // holds at least one older change. NOT_FOUND / TOKEN_NOT_FOUND if no token has this id.
  virtual void ReadHistory(std::string token_id, int64_t before_revision, int limit,
                           absl::Time deadline, StoreCallback<TokenHistoryPage> done) = 0;

  // Returns the head: the global revision and the epoch, read together.
  virtual void ReadHead(absl::Time deadline, StoreCallback<StoreHead> done) = 0;

  // The tailer's read: returns up to `max_count` events with revision > after_revision as soon
  // as there is at least one, or none once `block` (> 0) has passed; in both cases with the head
  // read after the events. Since the events are read first, a head.epoch equal to the epoch
  // the caller knows means the events belong to it too; a caller that checks head.epoch and
  // head.revision against what it has seen detects a replaced dataset (whose new events may
  // start again at revision 1, below after_revision, and so never arrive here). May hold a
  // connection (or, for MemoryTokenStore, the calling thread) for up to `block`.
  virtual void WaitEvents(int64_t after_revision, int max_count, absl::Duration block,
                          absl::Time deadline, StoreCallback<EventBatch> done) = 0;
};

}  // namespace tokenstatus
