#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/store/token_store.h"

namespace tokenstatus {

struct MemoryTokenStoreOptions {
  int64_t event_retention = 1000000;  // events kept for ReadEvents (the oldest are dropped); >= 1
};

// A TokenStore in process memory with the same semantics as RedisTokenStore: one global revision
// taken by every change, an epoch (random, made by the first change), ordering by id, an event
// list with retention, per-token histories bounded as there (kMaxHistoryPerToken changes, and
// the event retention), history marks made as there (with another hash), and the same errors
// checked in the same order (see TokenStore). Nothing is persisted; it is meant for unit tests of
// the layers above the store.
//
// Every method completes inline: `done` runs on the calling thread before the method returns,
// with no lock held (so `done` may call the store again). Only WaitEvents waits (for a change,
// up to the earlier of `block` and its deadline, then answers OK with what there is); no
// other method ever reaches its deadline. Thread-safe.
class MemoryTokenStore : public TokenStore {
 public:
  explicit MemoryTokenStore(MemoryTokenStoreOptions options = {});

  void Create(CreateTokenParams params, absl::Time deadline, StoreCallback<Token> done) override;
  void Apply(TransitionParams params, absl::Time deadline,
             StoreCallback<AppliedTransition> done) override;
  void Get(std::string token_id, absl::Time deadline, StoreCallback<TokenAtRevision> done) override;
  void List(ListParams params, absl::Time deadline, StoreCallback<TokenPage> done) override;
  void Scan(ScanParams params, absl::Time deadline, StoreCallback<TokenPage> done) override;
  void SplitIds(int parts, absl::Time deadline,
                StoreCallback<std::vector<std::string>> done) override;
  void ReadEvents(int64_t after_revision, int max_count, absl::Time deadline,
                  StoreCallback<std::vector<TokenEvent>> done) override;
  void ReadHistory(std::string token_id, int64_t before_revision, int limit, absl::Time deadline,
                   StoreCallback<TokenHistoryPage> done) override;
  void ReadHead(absl::Time deadline, StoreCallback<StoreHead> done) override;
  void WaitEvents(int64_t after_revision, int max_count, absl::Duration block, absl::Time deadline,
                  StoreCallback<EventBatch> done) override;

 private:
  absl::StatusOr<Token> CreateLocked(CreateTokenParams params) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<AppliedTransition> ApplyLocked(const TransitionParams& params)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes the next revision, makes the epoch on the first change, and records `token` (whose
  // revision and update_time it sets) with an event of `type`; returns the stored token.
  absl::StatusOr<Token> CommitLocked(Token token, TokenEvent::Type type)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A page with no tokens, stamped with the current revision, epoch and chain.
  TokenPage EmptyPageLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  TokenPage ListLocked(const ListParams& params) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  std::vector<TokenEvent> EventsAfterLocked(int64_t after_revision, int max_count) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // The position in events_ of the first event with a revision >= `revision`.
  size_t EventIndexLocked(int64_t revision) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // The event of `revision`, or nullptr if the retention dropped it.
  const TokenEvent* EventAtLocked(int64_t revision) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::StatusOr<TokenHistoryPage> HistoryLocked(const std::string& token_id,
                                                 int64_t before_revision, int limit) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const MemoryTokenStoreOptions options_;
  mutable absl::Mutex mu_;
  std::map<std::string, Token> tokens_ ABSL_GUARDED_BY(mu_);  // by id: List's order
  int64_t revision_ ABSL_GUARDED_BY(mu_) = 0;
  std::string epoch_ ABSL_GUARDED_BY(mu_);
  std::string chain_ ABSL_GUARDED_BY(mu_);                    // the head's history mark
  std::deque<TokenEvent> events_ ABSL_GUARDED_BY(mu_);        // in revision order
  std::deque<std::string> prev_chains_ ABSL_GUARDED_BY(mu_);  // the mark before each event
  // By token id: the revisions of its newest kMaxHistoryPerToken changes, ascending.
  std::map<std::string, std::deque<int64_t>> history_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tokenstatus
