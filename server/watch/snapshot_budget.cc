#include "server/watch/snapshot_budget.h"

#include <utility>

namespace tokenstatus {

SnapshotBudget::Hold& SnapshotBudget::Hold::operator=(Hold&& other) noexcept {
  if (this != &other) {
    Release();
    budget_ = std::exchange(other.budget_, nullptr);
    principal_ = std::move(other.principal_);
    slot_ = std::exchange(other.slot_, false);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

void SnapshotBudget::Hold::Release() {
  if (budget_ == nullptr) return;
  std::exchange(budget_, nullptr)->Release(principal_, slot_, bytes_);
  slot_ = false;
  bytes_ = 0;
}

SnapshotBudget::SnapshotBudget(int64_t limit_bytes, int max_per_principal,
                               absl::AnyInvocable<void()> on_release)
    : limit_bytes_(limit_bytes),
      max_per_principal_(max_per_principal),
      on_release_(std::move(on_release)) {}

SnapshotBudget::Outcome SnapshotBudget::TryReserve(const std::string& principal,
                                                   int64_t stream_bytes, int64_t shared_bytes,
                                                   Hold* stream_hold, Hold* shared_hold) {
  {
    absl::MutexLock lock(&mu_);
    auto it = per_principal_.find(principal);
    if (it != per_principal_.end() && it->second >= max_per_principal_) {
      return Outcome::kPrincipalAtLimit;
    }
    const int64_t wanted = stream_bytes + shared_bytes;
    if (reserved_ > 0 && reserved_ + wanted > limit_bytes_) return Outcome::kOverBudget;
    reserved_ += wanted;
    ++slots_;
    ++per_principal_[principal];
  }
  // Outside the lock: a Hold being replaced gives its share back (and calls on_release_).
  Hold stream;
  stream.budget_ = this;
  stream.principal_ = principal;
  stream.slot_ = true;
  stream.bytes_ = stream_bytes;
  *stream_hold = std::move(stream);
  Hold shared;
  shared.budget_ = shared_bytes > 0 ? this : nullptr;
  shared.bytes_ = shared_bytes;
  *shared_hold = std::move(shared);
  return Outcome::kGranted;
}

int64_t SnapshotBudget::reserved_bytes() const {
  absl::MutexLock lock(&mu_);
  return reserved_;
}

int SnapshotBudget::slots() const {
  absl::MutexLock lock(&mu_);
  return slots_;
}

void SnapshotBudget::Release(const std::string& principal, bool slot, int64_t bytes) {
  {
    absl::MutexLock lock(&mu_);
    reserved_ -= bytes;
    if (slot) {
      --slots_;
      auto it = per_principal_.find(principal);
      if (it != per_principal_.end() && --it->second <= 0) per_principal_.erase(it);
    }
  }
  if (on_release_) on_release_();
}

}  // namespace tokenstatus
