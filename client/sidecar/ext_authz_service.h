#pragma once

#include "client/sidecar/ext_authz_answer.h"
#include "client/sidecar/sidecar_service.h"
#include "envoy/service/auth/v3/external_auth.grpc.pb.h"
#include "grpcpp/support/server_callback.h"

namespace tokenstatus {

// envoy.service.auth.v3.Authorization served by token-sidecar, next to its SidecarService on the
// same listener(s), so that Envoy's ext_authz filter (and Istio's CUSTOM authorization) checks
// tokens against the sidecar's cache without a network hop.
//
// Check finds the credential (ExtAuthzCredential), verifies it exactly as VerifyToken does
// (SidecarService::VerifySecret: same cache, same sync wait, same stale policy) and answers with
// ExtAuthzAnswer (ext_authz_answer.h: the table of answers). Every Check is an OK RPC, a denial
// included; it never blocks a gRPC thread, never reaches the server, and never logs the request
// or its secret.
//
// Thread-safe. `verifier` must outlive the service, and the service the server it is registered
// with.
class ExtAuthzService final : public envoy::service::auth::v3::Authorization::CallbackService {
 public:
  ExtAuthzService(SidecarService& verifier, ExtAuthzOptions options);

  ExtAuthzService(const ExtAuthzService&) = delete;
  ExtAuthzService& operator=(const ExtAuthzService&) = delete;

  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* context,
                                  const envoy::service::auth::v3::CheckRequest* request,
                                  envoy::service::auth::v3::CheckResponse* response) override;

 private:
  SidecarService& verifier_;
  const ExtAuthzOptions options_;
};

}  // namespace tokenstatus
