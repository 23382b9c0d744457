#include "core/refused_stream.h"

#include "core/grpc_status.h"

namespace tokenstatus {
namespace {

class RefusedStreamReactor final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  explicit RefusedStreamReactor(const absl::Status& status) { Finish(ToGrpcStatus(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

grpc::ServerWriteReactor<grpc::ByteBuffer>* RefusedStream(const absl::Status& status) {
  return new RefusedStreamReactor(status);
}

}  // namespace tokenstatus
