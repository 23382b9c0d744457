#pragma once

// The history of a chaos run and its checker.
//
// A run records what every client did and saw: each operation (invoke time, completion time,
// result), each message of each watch stream (TokenCaches included) and each stream start and
// end, each injected fault, and the answers replicas and caches gave once the system had synced
// again. The truth is what Redis held: the event stream of the final store and of every store a
// fault replaced (a Redis restored from an older copy leaves the lost history behind; the run
// reads it from the copy of the killed store's data). Check() judges the history against the
// truth:
//
//   - no acknowledged change lost: every change acknowledged to a client is in the final store's
//     event stream with the acknowledged revision and state, unless a fault that replaced the
//     store's history (restore from an older copy, FLUSHALL) overlapped it. A restore keeps what
//     the copy held: a change acknowledged before the copy was taken must survive;
//   - no refused change applied: a change refused with a definite error (FAILED_PRECONDITION,
//     NOT_FOUND, INVALID_ARGUMENT, ...) is in no history;
//   - reads during the run: a GetToken served at revision R answers the token as some history
//     held it at R (a replica may lag, but never invent); a VerifyToken answers a state some
//     history gave the token at the revision it names;
//   - watchers: between two RESETs a watcher's messages follow ONE history: a snapshot equal to
//     that history's state at its SYNCED revision, then every matching change of it exactly once
//     and in order (a missing one is a gap; one seen again a duplicate; one older than the last a
//     reordering; one the history does not hold is foreign), PROGRESS never skipping one;
//   - every RESET justified: a watcher gets a RESET only after a fault that replaced the store's
//     history: the first one after each such fault, and any further one only while the watcher
//     follows a history that is no longer the store's;
//   - once synced again, every replica and cache answers exactly the final store's state
//     (GetToken, ListTokens, VerifyToken; Check, Get, List, Verify of a cache), and Redis's own
//     records agree with its event stream;
//   - every change a store holds was made by an operation of the run (acknowledged, or with an
//     unknown outcome); garbage requests get one of the answers they may get, and change nothing.
//
// Times are nanoseconds of CLOCK_MONOTONIC (NowNs), one clock for every thread and process of
// the run, so "before" and "after" compare records of different processes too.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "apitoken/v1/token_service.pb.h"

namespace tokenstatus::chaos {

using apitoken::v1::Token;
using apitoken::v1::TokenEvent;
using apitoken::v1::WatchTokensResponse;

// Nanoseconds of CLOCK_MONOTONIC.
int64_t NowNs();

// The operation tag a stored change carries: a creation's description, a state change's reason.
// The run gives every operation a unique tag, so the store's event stream says which operation
// made each change.
std::string TagOf(const TokenEvent& event);

// One change: as a store's event stream holds it, or as a watcher received it.
struct Change {
  int64_t revision = 0;
  std::string token_id;
  std::string account_id;
  Token::State state = Token::STATE_UNSPECIFIED;  // after the change
  TokenEvent::Type type = TokenEvent::TYPE_UNSPECIFIED;
  std::string tag;    // TagOf
  std::string chain;  // TokenEvent.chain (empty without history marks)

  static Change FromEvent(const TokenEvent& event);
  // The same change: revision, token, account, state, type and tag (not the chain).
  bool Same(const Change& other) const;
  // "r12 TKN-1000-0001 DISABLED (DISABLED by w1-7)".
  std::string ToString() const;
};

// A token as a snapshot, a read or an answer shows it.
struct TokenState {
  std::string token_id;
  std::string account_id;
  Token::State state = Token::STATE_UNSPECIFIED;
  int64_t revision = 0;  // the revision of the token's last change

  static TokenState FromToken(const Token& token);
  std::string ToString() const;
};

// One history of a dataset: its epoch and every change from revision 1 to its head, as a Redis
// event stream held them (the final store, or a store a fault replaced). Immutable.
class Branch {
 public:
  // `changes` must have the revisions 1, 2, ..., n (INVALID_ARGUMENT otherwise).
  static absl::StatusOr<Branch> Create(std::string name, std::string epoch,
                                       std::vector<Change> changes);

  const std::string& name() const { return name_; }
  const std::string& epoch() const { return epoch_; }
  int64_t head() const { return static_cast<int64_t>(changes_.size()); }
  const std::vector<Change>& changes() const { return changes_; }
  // The change at `revision`; nullptr outside 1..head.
  const Change* At(int64_t revision) const;
  // The token `id` as of `revision` (0..head); nullopt if it did not exist yet.
  std::optional<TokenState> StateAt(const std::string& id, int64_t revision) const;
  // Every token as of `revision` whose account matches `account` ("" = every account).
  std::vector<TokenState> StatesAt(int64_t revision, const std::string& account) const;
  // Every token at the head, by id.
  const std::map<std::string, TokenState>& Final() const { return final_; }
  // The first change in (after, upto] whose account matches `account` ("" = any); nullptr if none.
  const Change* FirstMatching(int64_t after, int64_t upto, const std::string& account) const;
  // How many changes in (after, upto] match `account`.
  int64_t CountMatching(int64_t after, int64_t upto, const std::string& account) const;
  // The change tagged `tag`; nullptr if none.
  const Change* FindTag(const std::string& tag) const;

 private:
  Branch() = default;

  std::string name_;
  std::string epoch_;
  std::vector<Change> changes_;  // changes_[r - 1] has revision r
  absl::flat_hash_map<std::string, std::vector<int64_t>> revisions_by_token_;  // ascending
  absl::flat_hash_map<std::string, int64_t> revision_by_tag_;
  std::map<std::string, TokenState> final_;
};

// What an operation did.
enum class OpType {
  kCreate,
  kEnable,
  kDisable,
  kDelete,
  kGet,
  kVerify,
  kNoise,  // a malformed, oversize or garbage request (expected_codes says what it may get)
};
std::string OpTypeName(OpType type);

// How it ended, as far as the client can tell.
enum class Outcome {
  kOk,
  kFailed,   // a definite refusal: the change was not made
  kUnknown,  // UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED, INTERNAL, UNKNOWN: maybe made, maybe not
};
// The outcome of a call that ended with gRPC status code `code`.
Outcome OutcomeOf(int code);

// One request of a client, with its result.
struct Operation {
  std::string client;  // "writer-1@replica-0"
  OpType type = OpType::kGet;
  std::string tag;  // unique per change or noise operation (empty for reads)
  std::string token_id;
  int64_t invoke_ns = 0;
  int64_t complete_ns = 0;
  Outcome outcome = Outcome::kOk;
  int code = 0;  // grpc::StatusCode
  std::string error;
  // An acknowledged change: the token after it. A read: the token read (found), and for GetToken
  // the revision the answer was served at.
  bool found = false;
  TokenState token;
  int64_t served_revision = 0;
  // kNoise: the codes the request may get (UNAVAILABLE and DEADLINE_EXCEEDED are always allowed:
  // a server being killed or stopped answers nothing else). token_id, if set, names the token the
  // request would have created: no history may hold it.
  std::vector<int> expected_codes;
};

// One injected fault, from the moment it began to the moment it was over (the process restarted,
// the copy restored, the signal sent).
struct Fault {
  std::string name;  // "redis SIGKILL + restart", "restore older copy", ...
  int64_t start_ns = 0;
  int64_t end_ns = 0;
  // The store's history was replaced (restore from an older copy, FLUSHALL): changes
  // acknowledged from keeps_before_ns until end_ns may be lost, and watchers may get a RESET.
  bool replaces_history = false;
  // A restore keeps what its copy held: changes completed before this time (the copy's start)
  // survive it. INT64_MIN for a fault that keeps nothing (FLUSHALL).
  int64_t keeps_before_ns = 0;
};

// One record of a watch stream's life, in arrival order.
struct WatchRecord {
  enum class Type { kOpen, kMessage, kEnd };
  Type type = Type::kMessage;
  int64_t t_ns = 0;
  // kOpen: the request's resume point (since_revision 0: from scratch, with a snapshot).
  int64_t since_revision = 0;
  std::string since_epoch;
  std::string since_chain;
  // kMessage.
  WatchTokensResponse::Kind kind = WatchTokensResponse::KIND_UNSPECIFIED;
  int64_t revision = 0;
  std::string epoch;
  std::string chain;
  std::vector<TokenState> tokens;  // KIND_SNAPSHOT
  std::vector<Change> events;      // KIND_CHANGES
  // kEnd: how the stream ended.
  int code = 0;
  std::string detail;

  static WatchRecord Open(int64_t t_ns, int64_t since_revision, std::string epoch,
                          std::string chain);
  static WatchRecord Message(int64_t t_ns, const WatchTokensResponse& message);
  static WatchRecord End(int64_t t_ns, int code, std::string detail);
};

// Everything one watcher (a raw WatchTokens client, or the stream under a TokenCache) received.
struct WatchLog {
  std::string name;
  std::string account;  // the stream's account filter ("" = every account)
  std::vector<WatchRecord> records;
};

// An answer a replica or a cache gave once the system had synced again, to compare with the
// final store.
struct Answer {
  std::string who;  // "replica-0", "cache-1", "sidecar"
  std::string via;  // "GetToken", "ListTokens", "VerifyToken", "Check", ...
  std::string token_id;
  bool found = false;
  Token::State state = Token::STATE_UNSPECIFIED;
  int64_t token_revision = 0;  // 0: not reported by this way of asking
  // A replica or cache that did not reach the store's head and epoch in time answers nothing:
  // synced = false, and detail says where it stopped.
  bool synced = true;
  std::string detail;
};

struct History {
  // The truth: the final store's history, and the histories of stores faults replaced.
  std::vector<Branch> branches;
  size_t final_branch = 0;
  // The final store's token records (its hashes), to compare with its event stream; nullopt to
  // skip.
  std::optional<std::map<std::string, TokenState>> final_records;
  std::vector<Operation> operations;
  std::vector<Fault> faults;
  std::vector<WatchLog> watchers;
  std::vector<Answer> answers;
  // Whether every change the stores hold must be the work of a recorded operation (false when a
  // scenario writes some changes without recording them).
  bool attribute_every_change = true;
};

enum class ViolationKind {
  kLostAck,              // an acknowledged change is not in the final store
  kAckMismatch,          // ... or is there with another revision or state
  kFailedChangeApplied,  // a refused change is in some history
  kWrongRead,            // a read answered a state no history held at that revision
  kGap,                  // a watcher missed a change
  kDuplicate,            // a watcher got a change twice
  kReorder,              // a watcher got a change older than one it had seen
  kForeignChange,        // a watcher got a change its history does not hold (or another epoch)
  kWrongSnapshot,        // a snapshot matches no history at its revision
  kUnjustifiedReset,     // a RESET no fault that replaced the store's history explains
  kWrongAnswer,          // a synced replica or cache answered a state the store does not hold
  kNotSynced,            // a replica or cache did not reach the store's head and epoch
  kUnexpectedAnswer,     // a garbage request got an answer it should not get
  kStoreInconsistent,    // Redis's records disagree with its own event stream
};
std::string ViolationKindName(ViolationKind kind);

struct Violation {
  ViolationKind kind;
  std::string who;
  std::string detail;
  std::string ToString() const;
};

// Counts of a run, for reports.
struct Figures {
  int64_t operations = 0;
  int64_t changes = 0;        // change operations invoked
  int64_t acknowledged = 0;   // change operations acknowledged
  int64_t lost = 0;           // acknowledged changes not in the final store (allowed or not)
  int64_t lost_allowed = 0;   // ... of which a fault that replaced the history explains
  int64_t refused = 0;        // change operations with a definite error
  int64_t indeterminate = 0;  // change operations with an unknown outcome
  int64_t reads = 0;
  int64_t noise = 0;
  int64_t faults = 0;
  int64_t watch_streams = 0;  // stream starts
  int64_t watch_events = 0;   // change events delivered to watchers
  int64_t resets = 0;
  int64_t answers = 0;
};

struct Report {
  std::vector<Violation> violations;
  Figures figures;

  bool ok() const { return violations.empty(); }
  int Count(ViolationKind kind) const;
  // The figures, the count of each kind of violation and of each client's, and the first
  // violations of each kind (`max_listed` in all).
  std::string Summary(size_t max_listed = 25) const;
};

// Judges `history` (see the top of this file).
Report Check(const History& history);

}  // namespace tokenstatus::chaos
