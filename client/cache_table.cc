#include "client/cache_table.h"

#include <algorithm>
#include <thread>
#include <utility>

#include "core/validation.h"

namespace tokenstatus {

using apitoken::v1::Token;

std::optional<TokenKey> TokenKeyOf(absl::string_view token_id) {
  if (!IsValidTokenId(token_id)) return std::nullopt;
  TokenKey key = 0;
  for (char c : token_id.substr(3)) {  // after "TKN"
    if (c != '-') key = key * 10 + static_cast<TokenKey>(c - '0');
  }
  constexpr size_t kTwoGroupLength = 13;  // "TKN-NNNN-NNNN"
  if (token_id.size() > kTwoGroupLength) key |= TokenKey{1} << 63;
  return key;
}

SpreadRwLock::Slot& SpreadRwLock::SlotOfThisThread() const {
  static std::atomic<int> next_thread{0};
  thread_local const int slot = next_thread.fetch_add(1, std::memory_order_relaxed) % kSlots;
  return slots_[slot];
}

void SpreadRwLock::ReaderLock() const {
  Slot& slot = SlotOfThisThread();
  while (true) {
    // seq_cst increment, then seq_cst load of the flag, against Lock()'s seq_cst store of the
    // flag, then loads of the counters: either this reader sees the flag or the writer sees it.
    slot.readers.fetch_add(1);
    if (!writing_.load()) return;
    slot.readers.fetch_sub(1, std::memory_order_release);
    while (writing_.load(std::memory_order_acquire)) std::this_thread::yield();
  }
}

void SpreadRwLock::ReaderUnlock() const {
  SlotOfThisThread().readers.fetch_sub(1, std::memory_order_release);
}

void SpreadRwLock::Lock() {
  writers_.Lock();
  writing_.store(true);
  for (Slot& slot : slots_) {
    while (slot.readers.load() != 0) std::this_thread::yield();
  }
}

void SpreadRwLock::Unlock() {
  writing_.store(false, std::memory_order_release);
  writers_.Unlock();
}

CachedEntry CachedEntry::Of(const Token& token) {
  CachedEntry entry;
  entry.state = token.state();
  entry.revision = token.revision();
  entry.token = &token;
  const std::string& hash = token.secret_sha256();
  if (hash.size() == entry.secret_sha256.size()) {
    std::copy(hash.begin(), hash.end(), entry.secret_sha256.begin());
    entry.secret_sha256_size = static_cast<uint8_t>(hash.size());
  }
  return entry;
}

bool SnapshotBuilder::Add(Token token) {
  const std::optional<TokenKey> key = TokenKeyOf(token.id());
  if (!key.has_value()) return false;
  auto shared = std::make_shared<const Token>(std::move(token));
  entries_.insert_or_assign(*key, CachedEntry::Of(*shared));
  index_.insert_or_assign(shared->id(), std::move(shared));
  return true;
}

bool CacheTable::ApplyIfNewer(TokenKey key, const Token& token) {
  mu_.Lock();
  auto [it, inserted] = entries_.try_emplace(key);
  const bool newer = inserted || it->second.revision < token.revision();
  if (newer) it->second = CachedEntry::Of(token);
  mu_.Unlock();
  return newer;
}

void CacheTable::Swap(SnapshotBuilder& builder) {
  mu_.Lock();
  entries_.swap(builder.entries_);
  mu_.Unlock();
}

}  // namespace tokenstatus
