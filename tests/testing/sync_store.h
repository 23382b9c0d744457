#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/store/token_store.h"

namespace tokenstatus::testing {

// Calls `call` with a StoreCallback and waits up to `timeout` for it to be called; returns what
// it was called with, or DEADLINE_EXCEEDED. A late callback (after the timeout) is harmless.
template <typename T>
absl::StatusOr<T> AwaitStore(absl::FunctionRef<void(StoreCallback<T>)> call,
                             absl::Duration timeout = absl::Seconds(20)) {
  struct State {
    absl::Notification done;
    absl::StatusOr<T> result;
  };
  auto state = std::make_shared<State>();
  call([state](absl::StatusOr<T> result) {
    state->result = std::move(result);
    state->done.Notify();
  });
  if (!state->done.WaitForNotificationWithTimeout(timeout)) {
    return absl::DeadlineExceededError("the store never called back");
  }
  return std::move(state->result);
}

// A synchronous view of a TokenStore for tests: each call waits for its callback (20 s at
// most; store calls get a 5 s deadline). Thread-compatible.
class SyncStore {
 public:
  explicit SyncStore(TokenStore& store) : store_(store) {}

  absl::StatusOr<Token> Create(CreateTokenParams params) {
    return AwaitStore<Token>([&](StoreCallback<Token> done) {
      store_.Create(std::move(params), Deadline(), std::move(done));
    });
  }
  absl::StatusOr<AppliedTransition> Apply(TransitionParams params) {
    return AwaitStore<AppliedTransition>([&](StoreCallback<AppliedTransition> done) {
      store_.Apply(std::move(params), Deadline(), std::move(done));
    });
  }
  absl::StatusOr<TokenAtRevision> Get(const std::string& id) {
    return AwaitStore<TokenAtRevision>(
        [&](StoreCallback<TokenAtRevision> done) { store_.Get(id, Deadline(), std::move(done)); });
  }
  absl::StatusOr<TokenPage> List(ListParams params) {
    return AwaitStore<TokenPage>([&](StoreCallback<TokenPage> done) {
      store_.List(std::move(params), Deadline(), std::move(done));
    });
  }
  absl::StatusOr<TokenPage> Scan(ScanParams params) {
    return AwaitStore<TokenPage>([&](StoreCallback<TokenPage> done) {
      store_.Scan(std::move(params), Deadline(), std::move(done));
    });
  }
  absl::StatusOr<std::vector<std::string>> SplitIds(int parts) {
    return AwaitStore<std::vector<std::string>>([&](StoreCallback<std::vector<std::string>> done) {
      store_.SplitIds(parts, Deadline(), std::move(done));
    });
  }
  absl::StatusOr<std::vector<TokenEvent>> ReadEvents(int64_t after_revision, int max_count) {
    return AwaitStore<std::vector<TokenEvent>>([&](StoreCallback<std::vector<TokenEvent>> done) {
      store_.ReadEvents(after_revision, max_count, Deadline(), std::move(done));
    });
  }
  absl::StatusOr<TokenHistoryPage> ReadHistory(const std::string& id, int64_t before_revision,
                                               int limit) {
    return AwaitStore<TokenHistoryPage>([&](StoreCallback<TokenHistoryPage> done) {
      store_.ReadHistory(id, before_revision, limit, Deadline(), std::move(done));
    });
  }
  absl::StatusOr<StoreHead> ReadHead() {
    return AwaitStore<StoreHead>(
        [&](StoreCallback<StoreHead> done) { store_.ReadHead(Deadline(), std::move(done)); });
  }
  absl::StatusOr<EventBatch> WaitEvents(int64_t after_revision, int max_count,
                                        absl::Duration block) {
    return AwaitStore<EventBatch>([&](StoreCallback<EventBatch> done) {
      store_.WaitEvents(after_revision, max_count, block, absl::Now() + block + absl::Seconds(5),
                        std::move(done));
    });
  }

 private:
  static absl::Time Deadline() { return absl::Now() + absl::Seconds(5); }
  TokenStore& store_;
};

}  // namespace tokenstatus::testing
