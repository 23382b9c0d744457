#pragma once

// Helpers of the WatchTokens integration tests: a watcher that follows one stream with gRPC's
// callback API (no thread per stream) and records everything it receives; checks of what a
// watcher saw against the acknowledged changes and against ListTokens; a thread-safe log of
// acknowledged changes; several server replicas on one Redis; a server's resident memory.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "apitoken/v1/token_service.grpc.pb.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/client_callback.h"
#include "gtest/gtest.h"
#include "tests/integration/integration_test_util.h"
#include "tests/testing/process_usage.h"
#include "tests/testing/redis_instance.h"
#include "tests/testing/server_process.h"

namespace tokenstatus::integration {

using apitoken::v1::TokenEvent;
using apitoken::v1::WatchTokensRequest;
using apitoken::v1::WatchTokensResponse;

// How long a watcher may take to see a change, to sync, or to end, before a test gives up. Far
// above the expected milliseconds: it only bounds a broken run.
inline constexpr absl::Duration kWatchTimeout = absl::Seconds(30);

// A request for the whole stream from now: snapshot, SYNCED, then live changes, with PROGRESS
// every `progress_interval` (so that a filtered watcher also learns the latest revision).
WatchTokensRequest FromNow(const std::string& account_id = "",
                           absl::Duration progress_interval = absl::Milliseconds(200));
// A request resuming after `revision` of `epoch` (with send_initial_state, so that a RESET is
// followed by a fresh snapshot).
WatchTokensRequest ResumeAfter(int64_t revision, const std::string& epoch,
                               const std::string& account_id = "",
                               absl::Duration progress_interval = absl::Milliseconds(200));

// A channel with its own connection whose client reads as little ahead as HTTP/2 allows: no BDP
// probing, a 16 KiB stream window. A watcher on it that stops reading makes the server's writes
// wait after a few messages (a slow consumer).
std::shared_ptr<grpc::Channel> NewNarrowChannel(const std::string& address);

// One WatchTokens stream, read by gRPC's callback threads. It records every message and how the
// stream ended. Thread-safe.
class Watcher : public grpc::ClientReadReactor<WatchTokensResponse> {
 public:
  // Starts the stream on `stub`, which must outlive the watcher. With `paused`, it reads nothing
  // until Resume(): what the server sends piles up in the flow-control window, then in the
  // server's queue for the stream.
  Watcher(TokenService::Stub& stub, WatchTokensRequest request, bool paused = false);
  // Cancels the stream if it is still open and waits for gRPC's last callback.
  ~Watcher() override;

  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

  // Starts reading (a no-op unless paused and not yet resumed).
  void Resume();
  // Cancels the stream (the client going away); it then ends with CANCELLED.
  void Cancel();

  // Wait until the latest message has a revision >= `revision` (true), or the stream ended or
  // `timeout` passed (false).
  bool WaitForRevision(int64_t revision, absl::Duration timeout = kWatchTimeout);
  // Wait until a KIND_SYNCED has arrived (true), or the stream ended or `timeout` passed.
  bool WaitForSynced(absl::Duration timeout = kWatchTimeout);
  // Wait until `count` messages of `kind` have arrived (true), or the stream ended or `timeout`.
  bool WaitForKind(WatchTokensResponse::Kind kind, int count = 1,
                   absl::Duration timeout = kWatchTimeout);
  // Wait until `predicate` holds for the messages so far (true), or the stream ended or
  // `timeout` passed (false). `predicate` runs under the watcher's lock: it must not call it.
  bool WaitUntil(absl::FunctionRef<bool(const std::vector<WatchTokensResponse>&)> predicate,
                 absl::Duration timeout = kWatchTimeout);
  // Waits until the stream has ended and returns its status; nullopt after `timeout`.
  std::optional<grpc::Status> WaitForEnd(absl::Duration timeout = kWatchTimeout);

  // The revision of the latest message; 0 before any.
  int64_t revision() const;
  // The epoch of the latest message; empty before any.
  std::string epoch() const;
  bool ended() const;
  // Every message so far, in arrival order.
  std::vector<WatchTokensResponse> messages() const;
  // The events of every KIND_CHANGES message so far, in arrival order.
  std::vector<TokenEvent> events() const;
  // How many messages of `kind` arrived.
  int CountOf(WatchTokensResponse::Kind kind) const;
  // The state the messages add up to, by token id: RESET clears it, SNAPSHOT tokens and
  // CHANGES events replace tokens.
  std::map<std::string, Token> view() const;
  // "12 messages (SYNCED@4, CHANGES@5, ...), revision 9, ended: ...", for failure messages.
  std::string Summary() const;

  // grpc::ClientReadReactor.
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  grpc::ClientContext context_;
  const WatchTokensRequest request_;
  WatchTokensResponse incoming_;  // the read in flight (only gRPC's callbacks touch it)

  mutable absl::Mutex mu_;
  bool paused_ ABSL_GUARDED_BY(mu_);
  std::vector<WatchTokensResponse> messages_ ABSL_GUARDED_BY(mu_);
  int64_t revision_ ABSL_GUARDED_BY(mu_) = 0;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
};

// Succeeds if the revisions of `events` strictly increase (so none repeats).
::testing::AssertionResult StrictlyIncreasing(const std::vector<TokenEvent>& events);
// Succeeds if the revisions of `events`, in order, are exactly `expected` (ascending): every
// change delivered once, in order, none missing, none extra.
::testing::AssertionResult RevisionsAre(const std::vector<TokenEvent>& events,
                                        const std::vector<int64_t>& expected);
// Succeeds if `view` holds exactly the tokens of `listed` (a ListTokens with show_deleted), each
// equal field for field. With `deleted_may_be_absent`, a DELETED token of `listed` may be missing
// from `view` (a snapshot need not carry deleted tokens).
::testing::AssertionResult ViewEquals(const std::map<std::string, Token>& view,
                                      const std::vector<Token>& listed,
                                      bool deleted_may_be_absent = false);
// Succeeds if `events` holds no secret_sha256 (a watch never sends the secret's hash).
::testing::AssertionResult NoSecretHashes(const std::vector<TokenEvent>& events);

// Succeeds if `messages` start with one KIND_RESET followed by a snapshot (KIND_SNAPSHOT chunks,
// then KIND_SYNCED) and hold no other KIND_RESET.
::testing::AssertionResult ResetThenSnapshot(const std::vector<WatchTokensResponse>& messages);

// Creates (imports) a new token of `account_id` through `api`; the token as acknowledged.
absl::StatusOr<Token> NewToken(const Api& api, const std::string& account_id,
                               const std::string& description = "");
// Disables `token` if it is ACTIVE, enables it if DISABLED, with `reason`; the token as
// acknowledged.
absl::StatusOr<Token> Flip(const Api& api, const Token& token, const std::string& reason = "");

// Every token (deleted included) of `account_id` (all if empty), served at >= `min_revision`.
absl::StatusOr<std::vector<Token>> ListEverything(const Api& api, const std::string& account_id,
                                                  int64_t min_revision);

// The changes acknowledged to the test's clients. Thread-safe.
class ChangeLog {
 public:
  // Records the acknowledged `token` (its revision is the change's).
  void Add(const Token& token);
  // The revisions of the changes of `account_id` (every change if empty), ascending.
  std::vector<int64_t> Revisions(const std::string& account_id = "") const;
  // The highest revision acknowledged; 0 if none.
  int64_t LastRevision() const;
  int size() const;

 private:
  mutable absl::Mutex mu_;
  std::map<int64_t, std::string> account_by_revision_ ABSL_GUARDED_BY(mu_);
};

// Starts `count` tokenstatus-server replicas on `redis` sharing `key_prefix`, each with
// `extra_flags`, and returns once each reports SERVING (its mirror has loaded).
absl::StatusOr<std::vector<std::unique_ptr<testing::ServerProcess>>> StartReplicas(
    testing::RedisInstance& redis, const std::string& key_prefix, int count,
    const std::vector<std::string>& extra_flags = {});

// Succeeds once `server`'s mirror has reached `revision` (a ListTokens with min_revision).
::testing::AssertionResult MirrorReached(const testing::ServerProcess& server, int64_t revision);

// The resident set size (VmRSS) of a process, in KiB (tests/testing/process_usage.h).
using ::tokenstatus::testing::ResidentKiB;

}  // namespace tokenstatus::integration
