#pragma once

// Internal to TokenCache: the point-lookup table, its reader/writer lock, the ordered index,
// and the builder of a snapshot loaded aside.

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "apitoken/v1/token_service.pb.h"

namespace tokenstatus {

// The key of a token id in the table: its digits as one number, with the top bit telling
// 3-group ids from 2-group ones. Integer keys keep a map slot at 24 bytes and spare the string
// hash and compare: fewer cache misses per lookup.
using TokenKey = uint64_t;

// Returns the key of `token_id`, or nullopt unless IsValidTokenId(token_id) (core/
// validation.h): the cache only ever holds valid ids, so any other string is unknown.
std::optional<TokenKey> TokenKeyOf(absl::string_view token_id);

// One cached token: what Check needs inline, the whole token (with secret_sha256) behind it.
// `token` is owned by the TokenIndex of the same state (see CacheTable).
struct CachedEntry {
  // The entry of `token` (which must outlive it).
  static CachedEntry Of(const apitoken::v1::Token& token);

  apitoken::v1::Token::State state = apitoken::v1::Token::STATE_UNSPECIFIED;
  int64_t revision = 0;
  const apitoken::v1::Token* token = nullptr;
  // A copy of token->secret_sha256() (empty if the cache has no hashes): Verify compares it
  // here, in the table's own memory, instead of chasing two more pointers to random places in
  // a large cache (a cache miss each: a third of Verify's time with 100,000 tokens).
  uint8_t secret_sha256_size = 0;
  std::array<char, 32> secret_sha256{};

  absl::string_view SecretSha256() const {
    return absl::string_view(secret_sha256.data(), secret_sha256_size);
  }
};

using EntryMap = absl::flat_hash_map<TokenKey, CachedEntry>;
// Every token by id, in id order (List); owns the tokens the table points to.
using TokenIndex = absl::btree_map<std::string, std::shared_ptr<const apitoken::v1::Token>>;

// A reader/writer lock for many concurrent readers and a rare writer. A reader writes only
// one of kSlots counters, each on its own cache line and picked per thread, so readers on
// different cores never pass a cache line back and forth (an absl::Mutex reader lock writes the
// mutex's word: with two threads reading, most lookups paid a cross-core transfer). The writer
// raises a flag, then waits until every counter is zero; readers that see the flag step back and
// wait for it to drop. Readers hold it for a lookup only, so the writer waits nanoseconds.
// Not reentrant. Thread-safe.
class ABSL_LOCKABLE SpreadRwLock {
 public:
  void ReaderLock() const ABSL_SHARED_LOCK_FUNCTION();
  void ReaderUnlock() const ABSL_UNLOCK_FUNCTION();
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION();
  void Unlock() ABSL_UNLOCK_FUNCTION();

 private:
  static constexpr int kSlots = 16;
  struct alignas(64) Slot {
    std::atomic<int64_t> readers{0};
  };
  // The calling thread's counter.
  Slot& SlotOfThisThread() const;

  mutable std::array<Slot, kSlots> slots_;
  alignas(64) std::atomic<bool> writing_{false};
  absl::Mutex writers_;  // one writer at a time
};

// Holds a SpreadRwLock's reader lock for its scope.
class ABSL_SCOPED_LOCKABLE SpreadReaderLock {
 public:
  explicit SpreadReaderLock(const SpreadRwLock& mu) ABSL_SHARED_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_.ReaderLock();
  }
  ~SpreadReaderLock() ABSL_UNLOCK_FUNCTION() { mu_.ReaderUnlock(); }
  SpreadReaderLock(const SpreadReaderLock&) = delete;
  SpreadReaderLock& operator=(const SpreadReaderLock&) = delete;

 private:
  const SpreadRwLock& mu_;
};

// A snapshot being received: the entries and the index, built aside from the live cache.
// Single-threaded (the cache's stream thread).
class SnapshotBuilder {
 public:
  // Adds `token` (a later token with the same id replaces it). A token whose id is not valid is
  // skipped (returns false); a server never sends one.
  bool Add(apitoken::v1::Token token);
  size_t size() const { return index_.size(); }

 private:
  friend class CacheTable;
  friend class TokenCache;
  EntryMap entries_;
  TokenIndex index_;
};

// The point-lookup side of the cache: one hash map of every token by key under a SpreadRwLock.
// Thread-safe. Writes (ApplyIfNewer, Swap) come from one thread, the cache's stream thread.
//
// Entries point to tokens owned by the cache's TokenIndex. The writer keeps them valid: it
// changes the table before it drops the token an entry pointed to from the index, and readers
// use an entry's token only under the table's reader lock.
class CacheTable {
 public:
  // Calls `fn(const CachedEntry*)` (nullptr if `key` is unknown) under the reader lock and
  // returns what `fn` returns. `fn` must not block or keep the pointer.
  template <typename Fn>
  auto Find(TokenKey key, Fn&& fn) const {
    SpreadReaderLock lock(mu_);
    auto it = entries_.find(key);
    return fn(it == entries_.end() ? nullptr : &it->second);
  }

  // Stores `token` (its key `key`) unless the entry with that key has a revision >=
  // token.revision(); returns whether it was stored. `token` must stay alive until replaced
  // (the caller then installs it in the index).
  bool ApplyIfNewer(TokenKey key, const apitoken::v1::Token& token);

  // Replaces the entries with `builder`'s (which receives the old ones) in one step under the
  // writer lock: a reader sees the old state or the new one, never a mix or an empty table.
  void Swap(SnapshotBuilder& builder);

 private:
  mutable SpreadRwLock mu_;
  EntryMap entries_ ABSL_GUARDED_BY(mu_);
};

// Everything a TokenCache holds: a table for point lookups and an ordered index for List. The
// table is written only by the cache's stream thread; the index under index_mu.
struct CacheContents {
  CacheTable table;
  // Every token by id, with the revision and epoch the index is at.
  mutable absl::Mutex index_mu;
  TokenIndex index ABSL_GUARDED_BY(index_mu);
  int64_t index_revision ABSL_GUARDED_BY(index_mu) = 0;
  std::string index_epoch ABSL_GUARDED_BY(index_mu);
};

}  // namespace tokenstatus
