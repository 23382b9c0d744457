#include "tests/bench/noop_token_service.h"

#include "grpcpp/support/status.h"

namespace tokenstatus::bench {

NoopTokenService::NoopTokenService() {
  token_.set_id("TKN-0000-0001");
  token_.set_account_id("ACC-0000-0001");
  token_.set_name("no-op");
  token_.set_state(apitoken::v1::Token::STATE_ACTIVE);
  token_.set_revision(1);
  token_.mutable_create_time()->set_seconds(1700000000);
  token_.mutable_update_time()->set_seconds(1700000000);
  token_.set_updated_by("anonymous");
}

template <typename Response>
grpc::ServerUnaryReactor* NoopTokenService::Reply(grpc::CallbackServerContext* context,
                                                  Response* response) {
  *response->mutable_token() = token_;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* NoopTokenService::CreateToken(
    grpc::CallbackServerContext* context, const apitoken::v1::CreateTokenRequest* /*request*/,
    apitoken::v1::CreateTokenResponse* response) {
  return Reply(context, response);
}

grpc::ServerUnaryReactor* NoopTokenService::GetToken(
    grpc::CallbackServerContext* context, const apitoken::v1::GetTokenRequest* /*request*/,
    apitoken::v1::GetTokenResponse* response) {
  response->set_revision(token_.revision());
  return Reply(context, response);
}

grpc::ServerUnaryReactor* NoopTokenService::EnableToken(
    grpc::CallbackServerContext* context, const apitoken::v1::EnableTokenRequest* /*request*/,
    apitoken::v1::EnableTokenResponse* response) {
  return Reply(context, response);
}

grpc::ServerUnaryReactor* NoopTokenService::DisableToken(
    grpc::CallbackServerContext* context, const apitoken::v1::DisableTokenRequest* /*request*/,
    apitoken::v1::DisableTokenResponse* response) {
  return Reply(context, response);
}

}  // namespace tokenstatus::bench
