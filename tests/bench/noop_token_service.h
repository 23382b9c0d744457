#pragma once

#include "apitoken/v1/token_service.grpc.pb.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"

namespace tokenstatus::bench {

// A TokenService that does no work: CreateToken, GetToken, EnableToken and DisableToken answer
// OK with the same fixed token, whatever the request; the other RPCs are UNIMPLEMENTED. Served
// with the same load generator, it measures the ceiling of the gRPC stack on this machine.
// Thread-safe (immutable after construction).
class NoopTokenService final : public apitoken::v1::TokenService::CallbackService {
 public:
  NoopTokenService();

  grpc::ServerUnaryReactor* CreateToken(grpc::CallbackServerContext* context,
                                        const apitoken::v1::CreateTokenRequest* request,
                                        apitoken::v1::CreateTokenResponse* response) override;
  grpc::ServerUnaryReactor* GetToken(grpc::CallbackServerContext* context,
                                     const apitoken::v1::GetTokenRequest* request,
                                     apitoken::v1::GetTokenResponse* response) override;
  grpc::ServerUnaryReactor* EnableToken(grpc::CallbackServerContext* context,
                                        const apitoken::v1::EnableTokenRequest* request,
                                        apitoken::v1::EnableTokenResponse* response) override;
  grpc::ServerUnaryReactor* DisableToken(grpc::CallbackServerContext* context,
                                         const apitoken::v1::DisableTokenRequest* request,
                                         apitoken::v1::DisableTokenResponse* response) override;

 private:
  // Copies the fixed token into `response` and finishes the call OK.
  template <typename Response>
  grpc::ServerUnaryReactor* Reply(grpc::CallbackServerContext* context, Response* response);

  apitoken::v1::Token token_;
};

}  // namespace tokenstatus::bench
