#include "server/watch/watch_messages.h"

#include "grpcpp/impl/codegen/proto_utils.h"

namespace tokenstatus {

using apitoken::v1::WatchTokensResponse;

grpc::ByteBuffer SerializeMessage(const WatchTokensResponse& response) {
  grpc::ByteBuffer buffer;
  bool own_buffer = false;
  grpc::SerializationTraits<WatchTokensResponse>::Serialize(response, &buffer, &own_buffer);
  return buffer;
}

WatchTokensResponse WatchMessageOf(WatchTokensResponse::Kind kind, int64_t revision,
                                   const std::string& epoch, const std::string& chain) {
  WatchTokensResponse response;
  response.set_kind(kind);
  response.set_revision(revision);
  response.set_epoch(epoch);
  response.set_chain(chain);
  return response;
}

grpc::ByteBuffer BuildSnapshotChunk(const SnapshotCapture& capture, const WatchFilter& filter,
                                    int max_tokens, int max_bytes, size_t* next) {
  WatchTokensResponse chunk = WatchMessageOf(WatchTokensResponse::KIND_SNAPSHOT, capture.revision,
                                             capture.epoch, capture.chain);
  size_t bytes = chunk.ByteSizeLong();
  const size_t byte_limit = static_cast<size_t>(max_bytes);
  // A token takes its size plus a tag and a length (at most 1 + 5 bytes).
  constexpr size_t kFieldOverhead = 6;
  while (*next < capture.tokens.size() && chunk.tokens_size() < max_tokens) {
    Token* shown = chunk.add_tokens();
    filter.CopyAsShown(*capture.tokens[*next], *shown);
    const size_t size = shown->ByteSizeLong() + kFieldOverhead;
    if (chunk.tokens_size() > 1 && bytes + size > byte_limit) {
      chunk.mutable_tokens()->RemoveLast();
      break;
    }
    bytes += size;
    ++*next;
  }
  return SerializeMessage(chunk);
}

}  // namespace tokenstatus
