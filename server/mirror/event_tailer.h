#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/mirror/token_mirror.h"
#include "server/store/token_store.h"

namespace tokenstatus {

struct EventTailerOptions {
  int batch_size = 1000;                           // events per read
  int load_page_size = 1000;                       // tokens per TokenStore::Scan of a load
  int load_lanes = 8;                              // Scans side by side in a load (SplitIds)
  absl::Duration block = absl::Milliseconds(500);  // longest blocking read
  absl::Duration retry_max = absl::Seconds(2);     // backoff cap after a failed read
  // Told the reason of every reload it decides (as logged: event=mirror_reload reason=...),
  // on the tailer's thread; for the metrics. May be empty.
  std::function<void(absl::string_view reason)> on_reload{};
};

// Loads the mirror from the store (head revision + epoch + history mark first, then every
// record, then the events after that revision) and then follows the event stream with ONE
// blocking reader; detects a new epoch, a revision that went back, a trimmed gap, or a history
// that is not the one applied so far, and then reloads (mirror.Reset → listeners get OnReset).
// Recovers by itself when the store comes back.
//
// The load reads every token (TokenStore::Scan, pages of load_page_size, in load_lanes ranges
// side by side, cut by TokenStore::SplitIds, so that the store and this process are both busy;
// the lowest revision of the ranges' first pages, with its epoch and mark, is the head the load
// starts from, and every token read is at least as new), replays
// ReadEvents from that revision onto the listing (an event replaces a listed token only if it is
// newer; the listing's own revision is read again and must carry its mark), checks that the head's
// epoch (and, at the same revision, its mark) has not changed meanwhile, and then Resets the mirror
// once. Following: TokenStore::WaitEvents after the mirror's revision; any of these makes it
// reload:
//   - events whose first revision is not mirror.revision() + 1 (trimmed),
//   - events whose first one does not follow the mirror's mark (EventBatch::prev_chain: the
//     store was restored older, or failed over, and then changed past the mirror's revision),
//   - a head of another epoch, a head revision below the mirror's, or a head at the mirror's
//     revision with another mark.
// Every read (at least every `block`) checks, so a replaced history is found within one round
// of a reconnect. A failed store call is retried after a jittered exponential backoff (100 ms
// doubling up to retry_max), logged once per outage.
//
// The tailer's thread is the mirror's only writer. Not copyable; Start() at most once.
class EventTailer {
 public:
  // `store` and `mirror` must outlive the tailer.
  EventTailer(TokenStore& store, TokenMirror& mirror, EventTailerOptions options = {});
  EventTailer(const EventTailer&) = delete;
  EventTailer& operator=(const EventTailer&) = delete;

  // Starts the tailer's thread.
  void Start();
  // Stops it (wakes a backoff wait; a blocking read in progress ends within `block` plus the
  // store's call timeout at most) and joins.
  ~EventTailer();

 private:
  // Shared with store callbacks, which may run after the tailer is gone (a call abandoned when
  // it stops): the stop flag and the results of the calls being awaited.
  struct Shared {
    absl::Mutex mu;
    bool stopping ABSL_GUARDED_BY(mu) = false;
    // The load's Scan pages as they come, by lane, for the scan numbered scan_generation (0: no
    // scan; pages of a scan given up on are dropped).
    uint64_t scan_generation ABSL_GUARDED_BY(mu) = 0;
    std::vector<std::pair<size_t, absl::StatusOr<TokenPage>>> pages ABSL_GUARDED_BY(mu);
  };
  // What a load read: every token in id order, and the head it is at least as new as.
  struct Listing {
    std::vector<Token> tokens;
    int64_t revision = -1;  // the lowest of the ranges' first pages' revisions
    std::string epoch;
    std::string chain;  // the mark at `revision`
  };

  void Run();
  // Lists, replays and Resets the mirror. CANCELLED when stopping; ABORTED when the store's
  // history moved under the load (another epoch, a trimmed gap, a revision that went back):
  // retried, with backoff, like a store error; other errors from the store.
  absl::Status Load();
  // Reads every token with Scans of up to load_lanes ranges side by side. CANCELLED when
  // stopping; ABORTED if the pages are of different epochs; other errors from the store.
  absl::StatusOr<Listing> ScanAll();
  // Starts the Scan of `params` for `lane` of the scan numbered `generation`; its page goes to
  // shared_->pages.
  void StartScan(uint64_t generation, size_t lane, const ScanParams& params);
  // One WaitEvents round: Applies what came, or sets `reload` when the store's history no
  // longer continues the mirror's. CANCELLED when stopping; other errors from the store.
  absl::Status Follow(bool& reload);
  // Whether `events` continue `revision`: non-empty, with the revisions revision + 1, + 2, ...
  static bool Continues(int64_t revision, const std::vector<TokenEvent>& events);

  // Calls `call` with a callback and waits for its result; CANCELLED if the tailer stops first.
  template <typename T>
  absl::StatusOr<T> Await(absl::FunctionRef<void(StoreCallback<T>)> call);
  // Waits `delay` or until stopping; false when stopping.
  bool Sleep(absl::Duration delay);
  bool stopping() const;
  absl::Time CallDeadline() const;

  TokenStore& store_;
  TokenMirror& mirror_;
  const EventTailerOptions options_;
  const std::shared_ptr<Shared> shared_ = std::make_shared<Shared>();
  std::minstd_rand jitter_;     // the tailer's thread only
  uint64_t scans_started_ = 0;  // the tailer's thread only
  std::thread thread_;
};

}  // namespace tokenstatus
