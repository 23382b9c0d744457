#include "client/watch_source.h"

#include <utility>

#include "client/token_client.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/sync_stream.h"

namespace tokenstatus {
namespace {

using apitoken::v1::TokenService;
using apitoken::v1::WatchTokensRequest;
using apitoken::v1::WatchTokensResponse;

// A WatchTokens call read with gRPC's synchronous API. The call starts in the first Read(), on
// the reader's thread: with wait-for-ready, starting it blocks until the channel connects, and
// Cancel() must be able to end that wait (TryCancel before the call exists cancels it when it
// starts).
//
// Wait-for-ready: while the server is unreachable the stream waits for the channel to connect
// (gRPC reconnects with the channel's backoff). A fail-fast call on a channel in
// TRANSIENT_FAILURE fails without making it try again, and reconnects came seconds after the
// server was back.
class GrpcWatchStream : public WatchStream {
 public:
  GrpcWatchStream(TokenService::Stub& stub, const WatchTokensRequest& request)
      : stub_(stub), request_(request) {
    context_.set_wait_for_ready(true);
  }

  bool Read(WatchTokensResponse* response) override {
    if (reader_ == nullptr) reader_ = stub_.WatchTokens(&context_, request_);
    return reader_->Read(response);
  }

  void Cancel() override { context_.TryCancel(); }

  absl::Status Finish() override { return FromGrpcStatus(reader_->Finish()); }

 private:
  TokenService::Stub& stub_;
  const WatchTokensRequest request_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<WatchTokensResponse>> reader_;
};

class GrpcWatchSource : public WatchSource {
 public:
  explicit GrpcWatchSource(std::shared_ptr<grpc::Channel> channel)
      : stub_(TokenService::NewStub(std::move(channel))) {}

  std::unique_ptr<WatchStream> Open(const WatchTokensRequest& request) override {
    return std::make_unique<GrpcWatchStream>(*stub_, request);
  }

 private:
  std::unique_ptr<TokenService::Stub> stub_;
};

}  // namespace

std::unique_ptr<WatchSource> NewGrpcWatchSource(std::shared_ptr<grpc::Channel> channel) {
  return std::make_unique<GrpcWatchSource>(std::move(channel));
}

}  // namespace tokenstatus
