#pragma once

#include <memory>

#include "absl/status/status.h"
#include "apitoken/v1/token_service.grpc.pb.h"
#include "grpcpp/channel.h"

namespace tokenstatus {

// One open WatchTokens stream, as TokenCache reads it.
//
// Thread-safety: Read() and Finish() are called by one thread (the cache's); Cancel() may be
// called from any thread at any time, also concurrently with Read().
class WatchStream {
 public:
  virtual ~WatchStream() = default;

  // Blocks until the next message arrives and stores it in `response` (true), or the stream has
  // ended (false; then call Finish()).
  virtual bool Read(apitoken::v1::WatchTokensResponse* response) = 0;

  // Ends the stream from the client side: a Read() in progress or later returns false.
  virtual void Cancel() = 0;

  // Only after Read() returned false: how the stream ended (OK if the server closed it cleanly,
  // CANCELLED after Cancel(), else the server's or the transport's error with its code, message
  // and ErrorInfo, as FromGrpcStatus (client/token_client.h) makes it). Call at most once.
  virtual absl::Status Finish() = 0;
};

// Opens WatchTokens streams: the real one over gRPC (NewGrpcWatchSource), or a fake in tests.
// Open() is called by the cache's thread only; implementations need not be thread-safe
// otherwise.
class WatchSource {
 public:
  virtual ~WatchSource() = default;

  // Starts a WatchTokens stream with `request`. Never fails here: a stream that cannot be opened
  // is returned anyway and its first Read() returns false, Finish() telling why.
  virtual std::unique_ptr<WatchStream> Open(const apitoken::v1::WatchTokensRequest& request) = 0;
};

// A WatchSource calling TokenService.WatchTokens on `channel`, wait-for-ready: a stream opened
// while the server is unreachable waits until the channel connects (with the channel's reconnect
// backoff, see TokenCache::ChannelArguments) or the stream is cancelled (TokenCache cancels a
// stream silent for max_staleness, then opens another).
std::unique_ptr<WatchSource> NewGrpcWatchSource(std::shared_ptr<grpc::Channel> channel);

}  // namespace tokenstatus
