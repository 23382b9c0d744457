#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/status_util.h"
#include "gtest/gtest.h"
#include "server/mirror/token_mirror.h"
#include "server/store/memory_token_store.h"

namespace tokenstatus::testing {

// A TokenStore decorator over a MemoryTokenStore that can fail calls the way a real backend
// does, records the deadline of the last call, and applies every change's events to a mirror
// before the change is answered (a synchronous stand-in for the EventTailer). It relies on
// MemoryTokenStore answering on the calling thread (its callbacks run before its calls
// return). A failed read of the memory store is a test failure (ADD_FAILURE). Thread-safe.
class FaultInjectingStore : public TokenStore {
 public:
  // The mirror fed after every change (loaded here).
  void Feed(TokenMirror* mirror) {
    {
      absl::MutexLock lock(&mu_);
      mirror_ = mirror;
    }
    Sync();
  }
  // Brings the mirror up to the memory store, as the EventTailer would: a reload when the
  // store's epoch is not the mirror's (the first write makes one), else the new events.
  void Sync() {
    absl::MutexLock lock(&sync_mu_);
    StoreHead head;
    memory_.ReadHead(absl::InfiniteFuture(), [&](absl::StatusOr<StoreHead> read) {
      if (!read.ok()) {
        ADD_FAILURE() << read.status();
        return;
      }
      head = *std::move(read);
    });
    if (mirror_->loaded() && mirror_->epoch() == head.epoch) {
      memory_.ReadEvents(mirror_->revision(), 1000000, absl::InfiniteFuture(),
                         [this](absl::StatusOr<std::vector<TokenEvent>> events) {
                           if (!events.ok()) {
                             ADD_FAILURE() << events.status();
                             return;
                           }
                           mirror_->Apply(*std::move(events));
                         });
      return;
    }
    std::vector<Token> tokens;
    ListParams params;
    params.page_size = 1000;
    params.show_deleted = true;
    do {
      memory_.List(params, absl::InfiniteFuture(), [&](absl::StatusOr<TokenPage> page) {
        if (!page.ok()) {
          ADD_FAILURE() << page.status();
          params.after_id.clear();
          return;
        }
        tokens.insert(tokens.end(), page->tokens.begin(), page->tokens.end());
        params.after_id = page->next_after_id;
      });
    } while (!params.after_id.empty());
    mirror_->Reset(std::move(tokens), head.revision, head.epoch);
  }
  // Every call fails with UNAVAILABLE / STORE_UNAVAILABLE while set.
  void SetUnavailable(bool unavailable) {
    absl::MutexLock lock(&mu_);
    unavailable_ = unavailable;
  }
  // The next `count` Create calls fail with ALREADY_EXISTS, as for an id collision.
  void CollideNextCreates(int count) {
    absl::MutexLock lock(&mu_);
    collisions_ = count;
  }
  int creates() const {
    absl::MutexLock lock(&mu_);
    return creates_;
  }
  absl::Time last_deadline() const {
    absl::MutexLock lock(&mu_);
    return last_deadline_;
  }
  MemoryTokenStore& memory() { return memory_; }

  void Create(CreateTokenParams params, absl::Time deadline, StoreCallback<Token> done) override {
    bool collide = false;
    {
      absl::MutexLock lock(&mu_);
      ++creates_;
      if (collisions_ > 0) {
        --collisions_;
        collide = true;
      }
    }
    if (collide) {
      done(MakeError(absl::StatusCode::kAlreadyExists, reason::kTokenAlreadyExists, "taken"));
      return;
    }
    if (Fail(deadline, done)) return;
    memory_.Create(std::move(params), deadline, Mirrored(std::move(done)));
  }
  void Apply(TransitionParams params, absl::Time deadline,
             StoreCallback<AppliedTransition> done) override {
    if (Fail(deadline, done)) return;
    memory_.Apply(std::move(params), deadline, Mirrored(std::move(done)));
  }
  void Get(std::string token_id, absl::Time deadline,
           StoreCallback<TokenAtRevision> done) override {
    if (Fail(deadline, done)) return;
    memory_.Get(std::move(token_id), deadline, std::move(done));
  }
  void List(ListParams params, absl::Time deadline, StoreCallback<TokenPage> done) override {
    if (Fail(deadline, done)) return;
    memory_.List(std::move(params), deadline, std::move(done));
  }
  void Scan(ScanParams params, absl::Time deadline, StoreCallback<TokenPage> done) override {
    if (Fail(deadline, done)) return;
    memory_.Scan(std::move(params), deadline, std::move(done));
  }
  void SplitIds(int parts, absl::Time deadline,
                StoreCallback<std::vector<std::string>> done) override {
    if (Fail(deadline, done)) return;
    memory_.SplitIds(parts, deadline, std::move(done));
  }
  void ReadEvents(int64_t after_revision, int max_count, absl::Time deadline,
                  StoreCallback<std::vector<TokenEvent>> done) override {
    if (Fail(deadline, done)) return;
    memory_.ReadEvents(after_revision, max_count, deadline, std::move(done));
  }
  void ReadHistory(std::string token_id, int64_t before_revision, int limit, absl::Time deadline,
                   StoreCallback<TokenHistoryPage> done) override {
    if (Fail(deadline, done)) return;
    memory_.ReadHistory(std::move(token_id), before_revision, limit, deadline, std::move(done));
  }
  void ReadHead(absl::Time deadline, StoreCallback<StoreHead> done) override {
    if (Fail(deadline, done)) return;
    memory_.ReadHead(deadline, std::move(done));
  }
  void WaitEvents(int64_t after_revision, int max_count, absl::Duration block, absl::Time deadline,
                  StoreCallback<EventBatch> done) override {
    if (Fail(deadline, done)) return;
    memory_.WaitEvents(after_revision, max_count, block, deadline, std::move(done));
  }

 private:
  // `done`, preceded on success by Sync().
  template <typename T>
  StoreCallback<T> Mirrored(StoreCallback<T> done) {
    return [this, done = std::move(done)](absl::StatusOr<T> result) mutable {
      if (result.ok()) Sync();
      done(std::move(result));
    };
  }

  // Records `deadline`; if unavailable, calls `done` with UNAVAILABLE and returns true.
  template <typename T>
  bool Fail(absl::Time deadline, StoreCallback<T>& done) {
    {
      absl::MutexLock lock(&mu_);
      last_deadline_ = deadline;
      if (!unavailable_) return false;
    }
    done(MakeError(absl::StatusCode::kUnavailable, reason::kStoreUnavailable, "redis is down"));
    return true;
  }

  MemoryTokenStore memory_;
  mutable absl::Mutex mu_;
  bool unavailable_ ABSL_GUARDED_BY(mu_) = false;
  int collisions_ ABSL_GUARDED_BY(mu_) = 0;
  int creates_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_deadline_ ABSL_GUARDED_BY(mu_);
  absl::Mutex sync_mu_;            // one Sync at a time
  TokenMirror* mirror_ = nullptr;  // set by Feed, before any other call
};

}  // namespace tokenstatus::testing
