#pragma once

#include "absl/time/time.h"
#include "apitoken/v1/token_service.grpc.pb.h"
#include "grpcpp/support/server_callback.h"
#include "server/store/token_store.h"

namespace tokenstatus {

struct TokenServiceOptions {
  // A store call gets the RPC's deadline minus min(deadline_margin, time left / 5), so that a
  // store timeout (UNAVAILABLE) reaches the client before its own deadline expires.
  absl::Duration deadline_margin = absl::Milliseconds(50);
  // CreateToken without token_id: how many fresh ids are tried when an id is already taken.
  int create_attempts = 3;
};

// apitoken.v1.TokenService on the gRPC callback API. Every RPC validates its request
// (INVALID_ARGUMENT with an ErrorInfo reason and {"field": ...}), makes one store call with the
// RPC's deadline (see TokenServiceOptions), and finishes from the store's callback: no gRPC
// thread ever blocks. Errors are converted once, by ToGrpcStatus (server/service/grpc_status.h),
// so every error carries a google.rpc.ErrorInfo.
//
// Behaviour beyond the proto's comments:
// - CreateToken allocates an id and a secret (returned once; only its SHA-256 is stored) unless
//   token_id and secret_sha256 are both given (an import); one without the other is
//   INVALID_ARGUMENT. A generated id that is taken is retried with a new one.
// - Get/List with min_revision above the revision they were served at: OUT_OF_RANGE /
//   REVISION_NOT_REACHED. Negative min_revision / expected_revision: INVALID_ARGUMENT.
// - Responses never carry secret_sha256.
// - VerifyToken answers with a Result; only a store failure (e.g. UNAVAILABLE) is an RPC error.
//   A wrong secret for an existing id is RESULT_NOT_FOUND and reveals nothing of the token.
// - Every change logs one line "event=token_changed actor=.. token=.. from=.. to=.. revision=..",
//   every refused change one "event=token_change_refused ..." line with the reason; never a
//   secret.
//
// Thread-safe. `store` must outlive the service, and the service the server it is registered
// with.
class TokenServiceImpl final : public apitoken::v1::TokenService::CallbackService {
 public:
  explicit TokenServiceImpl(TokenStore& store, TokenServiceOptions options = {});

  grpc::ServerUnaryReactor* CreateToken(grpc::CallbackServerContext* context,
                                        const apitoken::v1::CreateTokenRequest* request,
                                        apitoken::v1::CreateTokenResponse* response) override;
  grpc::ServerUnaryReactor* GetToken(grpc::CallbackServerContext* context,
                                     const apitoken::v1::GetTokenRequest* request,
                                     apitoken::v1::GetTokenResponse* response) override;
  grpc::ServerUnaryReactor* ListTokens(grpc::CallbackServerContext* context,
                                       const apitoken::v1::ListTokensRequest* request,
                                       apitoken::v1::ListTokensResponse* response) override;
  grpc::ServerUnaryReactor* EnableToken(grpc::CallbackServerContext* context,
                                        const apitoken::v1::EnableTokenRequest* request,
                                        apitoken::v1::EnableTokenResponse* response) override;
  grpc::ServerUnaryReactor* DisableToken(grpc::CallbackServerContext* context,
                                         const apitoken::v1::DisableTokenRequest* request,
                                         apitoken::v1::DisableTokenResponse* response) override;
  grpc::ServerUnaryReactor* DeleteToken(grpc::CallbackServerContext* context,
                                        const apitoken::v1::DeleteTokenRequest* request,
                                        apitoken::v1::DeleteTokenResponse* response) override;
  grpc::ServerUnaryReactor* VerifyToken(grpc::CallbackServerContext* context,
                                        const apitoken::v1::VerifyTokenRequest* request,
                                        apitoken::v1::VerifyTokenResponse* response) override;

 private:
  struct CreateCall;

  // The one code path of EnableToken, DisableToken and DeleteToken.
  template <typename Request, typename Response>
  grpc::ServerUnaryReactor* ChangeState(grpc::CallbackServerContext* context, Transition transition,
                                        const Request& request, Response* response);
  // Makes one store Create attempt of `call`, retrying with a fresh id on a collision.
  void RunCreate(CreateCall call);
  // The deadline of a store call made for the RPC of `context`.
  absl::Time StoreDeadline(const grpc::CallbackServerContext& context) const;

  TokenStore& store_;
  const TokenServiceOptions options_;
};

}  // namespace tokenstatus
