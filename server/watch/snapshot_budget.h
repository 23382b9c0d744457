#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace tokenstatus {

// The memory the watch snapshots in progress may hold together, and how many snapshots each
// principal may have in progress (WatchHubOptions::snapshot_memory_budget,
// max_snapshots_per_principal). A snapshot reserves its share before it captures anything and
// keeps it in Holds, which give it back when destroyed.
//
// One snapshot always fits when nothing else is held, whatever its size: the budget delays
// snapshots, it never makes one impossible.
//
// Thread-safe. Its lock is a leaf: it may be used (and a Hold destroyed) under any other lock;
// `on_release` runs after that lock is released, and must itself take only leaf locks.
class SnapshotBudget {
 public:
  // A part of the budget, given back when destroyed (or reset by moving another Hold in).
  // Move-only; an empty Hold holds nothing.
  class Hold {
   public:
    Hold() = default;
    Hold(Hold&& other) noexcept { *this = std::move(other); }
    Hold& operator=(Hold&& other) noexcept;
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;
    ~Hold() { Release(); }

    int64_t bytes() const { return bytes_; }

   private:
    friend class SnapshotBudget;
    void Release();

    SnapshotBudget* budget_ = nullptr;
    std::string principal_;  // whose slot this holds; empty: none
    bool slot_ = false;
    int64_t bytes_ = 0;
  };

  enum class Outcome {
    kGranted,
    kPrincipalAtLimit,  // the principal already has max_per_principal snapshots in progress
    kOverBudget,        // the bytes do not fit (and something else is held)
  };

  // `limit_bytes` >= 0, `max_per_principal` >= 1. `on_release` (may be empty) runs after each
  // release, e.g. to let waiting snapshots try again.
  SnapshotBudget(int64_t limit_bytes, int max_per_principal,
                 absl::AnyInvocable<void()> on_release = nullptr);
  // Every Hold must have been destroyed.
  ~SnapshotBudget() = default;

  // Reserves, all or nothing, one snapshot slot of `principal` with `stream_bytes` (into
  // *stream_hold) and `shared_bytes` (into *shared_hold: memory the snapshot may share with
  // later ones, such as its captured tokens; 0 for none). Granted if the principal has a slot
  // left and the bytes fit within the limit, or nothing at all is held yet.
  Outcome TryReserve(const std::string& principal, int64_t stream_bytes, int64_t shared_bytes,
                     Hold* stream_hold, Hold* shared_hold);

  int64_t limit_bytes() const { return limit_bytes_; }
  // Bytes held now.
  int64_t reserved_bytes() const;
  // Snapshot slots held now (all principals).
  int slots() const;

 private:
  void Release(const std::string& principal, bool slot, int64_t bytes);

  const int64_t limit_bytes_;
  const int max_per_principal_;
  absl::AnyInvocable<void()> on_release_;

  mutable absl::Mutex mu_;
  int64_t reserved_ ABSL_GUARDED_BY(mu_) = 0;
  int slots_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, int> per_principal_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tokenstatus
