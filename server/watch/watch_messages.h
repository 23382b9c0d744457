#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "apitoken/v1/token_service.pb.h"
#include "grpcpp/support/byte_buffer.h"
#include "server/watch/snapshot_budget.h"

namespace tokenstatus {

// What a watcher is sent: the messages of the watch protocol, serialized once and shared, the
// filter a stream asked for, and snapshots captured from the mirror and cut into chunks.

using Token = apitoken::v1::Token;
using TokenEvent = apitoken::v1::TokenEvent;

// Item::revision of a message after which the watcher cannot resume (a snapshot chunk).
inline constexpr int64_t kNoResumePoint = -1;

// Serializes `response` once; copies of the result share its slices.
grpc::ByteBuffer SerializeMessage(const apitoken::v1::WatchTokensResponse& response);

// A message of `kind` at `revision` of `epoch` (whose history mark there is `chain`), with no
// tokens or events yet.
apitoken::v1::WatchTokensResponse WatchMessageOf(apitoken::v1::WatchTokensResponse::Kind kind,
                                                 int64_t revision, const std::string& epoch,
                                                 const std::string& chain);

// What a stream asked to see: the tokens of one account or of all, with or without their
// secret hashes. Streams with equal filters share each serialized change.
struct WatchFilter {
  std::string account_id;  // empty: every account
  bool include_secret_hash = false;

  bool Matches(const Token& token) const {
    return account_id.empty() || token.account_id() == account_id;
  }
  // Copies `token` into `shown` as this filter shows it.
  void CopyAsShown(const Token& token, Token& shown) const {
    shown = token;
    if (!include_secret_hash) shown.clear_secret_sha256();
  }
  // Appends `event` to `response` if it matches.
  void AddIfMatches(const TokenEvent& event, apitoken::v1::WatchTokensResponse& response) const {
    if (!Matches(event.token())) return;
    TokenEvent* shown = response.add_events();
    shown->set_type(event.type());
    CopyAsShown(event.token(), *shown->mutable_token());
    shown->set_chain(event.chain());
  }

  bool operator==(const WatchFilter&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const WatchFilter& filter) {
    return H::combine(std::move(h), filter.account_id, filter.include_secret_hash);
  }
};

// The tokens of one account (or all) at one revision of the mirror, captured for snapshots:
// pointers to the mirror's immutable tokens, shared by every stream that starts its snapshot at
// that revision with that account. Immutable.
struct SnapshotCapture {
  SnapshotCapture(SnapshotBudget::Hold hold, int64_t revision, std::string epoch, std::string chain,
                  std::vector<std::shared_ptr<const Token>> tokens)
      : hold(std::move(hold)),
        revision(revision),
        epoch(std::move(epoch)),
        chain(std::move(chain)),
        tokens(std::move(tokens)) {}

  // What a capture of `count` tokens is charged against the budget.
  static int64_t BytesFor(size_t count) {
    return static_cast<int64_t>(sizeof(SnapshotCapture) +
                                count * sizeof(std::shared_ptr<const Token>));
  }

  // Declared first, destroyed last: the budget gets the bytes back once they are freed.
  SnapshotBudget::Hold hold;
  const int64_t revision;
  const std::string epoch;
  const std::string chain;  // the history mark at `revision`
  const std::vector<std::shared_ptr<const Token>> tokens;
};

// One stream's snapshot in progress: its capture and how far the stream has got. Lives in the
// stream's queue; `next` is advanced only by the stream's one writer (see WatchReactor::Pump).
struct SnapshotCursor {
  // What one stream's snapshot is charged against the budget beyond its capture: the one chunk
  // it holds at a time.
  static int64_t BytesFor(int chunk_bytes) {
    return static_cast<int64_t>(sizeof(SnapshotCursor)) + chunk_bytes;
  }

  std::shared_ptr<const SnapshotCapture> capture;
  size_t next = 0;            // the first token not yet sent
  SnapshotBudget::Hold hold;  // this stream's snapshot slot and chunk
};

// The KIND_SNAPSHOT chunk of `capture` from tokens[*next] on, as `filter` shows them: at most
// `max_tokens` tokens and, past the first, `max_bytes`. Advances *next past them.
grpc::ByteBuffer BuildSnapshotChunk(const SnapshotCapture& capture, const WatchFilter& filter,
                                    int max_tokens, int max_bytes, size_t* next);

}  // namespace tokenstatus
