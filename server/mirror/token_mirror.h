#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/revision_waiters.h"
#include "server/store/token_store.h"

namespace tokenstatus {

// Told of every change of the mirror, in order. Called on the thread that changes the mirror,
// while the mirror's writer lock is held: implementations must not block and must not call back
// into the mirror. Because of that lock, a listener's view is consistent with
// TokenMirror::ReadConsistent: a reader of state at revision R is told of exactly the changes
// after R.
class MirrorListener {
 public:
  virtual ~MirrorListener() = default;
  // `events` were applied, in revision order; the mirror is now at `revision`
  // (== events.back().token().revision()) of `epoch` (which the first changes of a dataset that
  // was empty when loaded bring along: the mirror adopts it, see TokenMirror::Apply).
  virtual void OnChanges(absl::Span<const std::shared_ptr<const TokenEvent>> events,
                         int64_t revision, const std::string& epoch) = 0;
  // The mirror's whole state was replaced (another epoch, a store that lost data, a revision
  // that went back). It is now at `revision` of `epoch`, whose history mark is `chain`.
  virtual void OnReset(const std::string& epoch, int64_t revision, const std::string& chain) = 0;
};

// A consistent view of the mirror, valid only inside TokenMirror::ReadConsistent.
class MirrorView {
 public:
  virtual ~MirrorView() = default;
  virtual int64_t revision() const = 0;
  virtual const std::string& epoch() const = 0;
  // The history mark at revision() (TokenEvent.chain; empty if the store has none).
  virtual const std::string& chain() const = 0;
  // Calls `fn` for every token of `account_id` (every token if empty), in id order, deleted ones
  // included. Tokens include secret_sha256.
  virtual void ForEachToken(absl::string_view account_id,
                            absl::FunctionRef<void(const Token&)> fn) const = 0;
  // How many tokens ForEachToken(account_id, ...) visits.
  virtual size_t CountTokens(absl::string_view account_id) const = 0;
  // The tokens ForEachToken(account_id, ...) visits, in the same order, as the mirror's own
  // immutable tokens (about 16 bytes each, no copy): a consistent cut at revision() that stays
  // valid after the view is gone (a token the mirror replaces later lives on while captured).
  virtual std::vector<std::shared_ptr<const Token>> CaptureTokens(
      absl::string_view account_id) const = 0;
};

// The in-memory copy of every token (the watch cache) of one server replica, fed by the
// EventTailer from the store's event stream, read by the service (Get, List, Verify) and the
// watch hub (snapshots). Until the first Reset() it is not loaded: reads fail with
// UNAVAILABLE / MIRROR_NOT_READY.
//
// Thread-safe: reads take a reader lock; Reset/Apply (the tailer's thread only) the writer lock.
class TokenMirror {
 public:
  TokenMirror();
  ~TokenMirror();  // fails pending revision waiters with UNAVAILABLE / SERVER_SHUTTING_DOWN

  // Installs the one listener (the watch hub). Call before the tailer starts; `listener` must
  // outlive the mirror or be replaced by nullptr first.
  void SetListener(MirrorListener* listener);

  bool loaded() const;
  int64_t revision() const;
  std::string epoch() const;
  std::string chain() const;  // the history mark at revision()

  // What the metrics show of the mirror, read without its lock (each field is current; they
  // may be from different moments of a change). Thread-safe.
  struct Stats {
    int64_t revision = -1;  // -1 until loaded
    // Tokens by state (index: Token::State; deleted tokens are kept, as in the store).
    std::array<int64_t, 4> tokens_by_state{};
    // The commit time (update_time) of the newest change applied; InfinitePast before one.
    absl::Time newest_commit = absl::InfinitePast();
  };
  Stats stats() const;

  // --- Reads (same results and errors as the TokenStore methods of the same names, served from
  // memory; UNAVAILABLE / MIRROR_NOT_READY before the first Reset). Tokens include
  // secret_sha256. ---
  absl::StatusOr<TokenAtRevision> Get(absl::string_view token_id) const;
  absl::StatusOr<TokenPage> List(const ListParams& params) const;

  // Calls `done` with OK as soon as the mirror is loaded and at revision >= `min_revision` (at
  // once, on the calling thread, if it already is), or with DEADLINE_EXCEEDED /
  // REVISION_NOT_REACHED at `deadline`, the message naming both revisions. `done` runs exactly
  // once, on the calling thread, the tailer's thread or the mirror's deadline thread; it must not
  // block.
  void WhenRevisionReached(int64_t min_revision, absl::Time deadline,
                           absl::AnyInvocable<void(absl::Status)> done);

  // Calls `done` with OK as soon as this mirror has applied the change that the store returned as
  // `committed` (the token after it, with its revision), and never because of a revision number
  // alone: the mirror applied an event equal to it at its revision (same id, state, update_time
  // and actor), or holds exactly that token now, or was loaded by a load that began after this
  // call (and so read the store after the change) up to its revision or beyond. A mirror that
  // follows another history than the store (a store restored older, then changed again) has
  // other events at those revisions and does not qualify until it has reloaded. Otherwise
  // `done` gets DEADLINE_EXCEEDED / REVISION_NOT_REACHED at `deadline`. Call it after the store
  // has answered the change. `done` runs as for WhenRevisionReached.
  void WhenApplied(const Token& committed, absl::Time deadline,
                   absl::AnyInvocable<void(absl::Status)> done);

  // Runs `fn` with a consistent view, under the reader lock: no change is applied (and no
  // listener call made) while it runs. UNAVAILABLE / MIRROR_NOT_READY (fn not run) before the
  // first Reset.
  absl::Status ReadConsistent(absl::FunctionRef<void(const MirrorView&)> fn) const;

  // --- Writers: the tailer's thread only. ---
  // A load of the whole state from the store begins (before its first read); the Reset that
  // follows completes it. See WhenApplied.
  void BeginLoad();
  // Replaces the whole state with `tokens` at `revision` of `epoch` (whose history mark there is
  // `chain`) and marks the mirror loaded. Tells the listener OnReset unless this is the first
  // load.
  void Reset(std::vector<Token> tokens, int64_t revision, std::string epoch,
             std::string chain = "");
  // Applies `events` (revision order; each revision > revision()) of the store's `epoch` and
  // tells the listener. `epoch` is empty (the mirror's own) or equals epoch(), except for the
  // first changes of a dataset that was empty when loaded (revision() == 0, epoch() empty): the
  // first change makes the epoch, and the mirror adopts it without a reset, since nothing was
  // lost. The mirror's history mark becomes the last event's chain.
  void Apply(std::vector<TokenEvent> events, absl::string_view epoch = "");

 private:
  class View;
  // Every token by id. Nodes are stable: the account index refers to their keys and iterators.
  using TokenMap = std::map<std::string, std::shared_ptr<const Token>, std::less<>>;
  // Per account: its tokens' ids (views of TokenMap keys) in id order.
  using AccountIndex =
      absl::flat_hash_map<std::string,
                          absl::btree_map<absl::string_view, TokenMap::const_iterator>>;

  // What identifies one change among the changes of every history at its revision (WhenApplied).
  static uint64_t FingerprintOf(const Token& token);
  // Whether the change `committed` is applied (WhenApplied), for a waiter added when
  // loads_begun_ was `loads_before`.
  bool Applied(const Token& committed, uint64_t fingerprint, uint64_t loads_before) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // Inserts `token` (or replaces the token with its id) in `tokens` and `accounts`. Returns the
  // replaced token's state, or -1 if there was none.
  static int Put(std::shared_ptr<const Token> token, TokenMap& tokens, AccountIndex& accounts);

  // Lock order: the waiters' lock, then mu_ (a WhenApplied condition reads the mirror; the
  // mirror never calls into the waiters under mu_); mu_, then the listener's locks.
  mutable absl::Mutex mu_;
  bool loaded_ ABSL_GUARDED_BY(mu_) = false;
  int64_t revision_ ABSL_GUARDED_BY(mu_) = 0;
  std::string epoch_ ABSL_GUARDED_BY(mu_);
  std::string chain_ ABSL_GUARDED_BY(mu_);
  TokenMap tokens_ ABSL_GUARDED_BY(mu_);
  AccountIndex accounts_ ABSL_GUARDED_BY(mu_);
  MirrorListener* listener_ ABSL_GUARDED_BY(mu_) = nullptr;
  // The fingerprints of the newest applied events, at revision % size (cleared by Reset).
  struct AppliedEvent {
    int64_t revision = -1;
    uint64_t fingerprint = 0;
  };
  static constexpr size_t kAppliedEvents = 1 << 16;
  std::vector<AppliedEvent> applied_ ABSL_GUARDED_BY(mu_);
  // Loads begun (BeginLoad), the number of the one the last Reset completed, and its revision.
  std::atomic<uint64_t> loads_begun_{0};
  uint64_t loaded_by_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t loaded_revision_ ABSL_GUARDED_BY(mu_) = -1;

  // Stats: tokens by state and the newest commit time (unix nanoseconds), set under mu_.
  std::array<std::atomic<int64_t>, 4> tokens_by_state_{};
  std::atomic<int64_t> newest_commit_nanos_{std::numeric_limits<int64_t>::min()};

  // The revision waiters are measured against: -1 until loaded; set under mu_.
  std::atomic<int64_t> reached_{-1};
  // Declared last: its deadline thread starts in the constructor, and the destructor fails the
  // pending waiters first.
  RevisionWaiters waiters_{"the mirror", [this] { return reached_.load(); }};
};

}  // namespace tokenstatus
