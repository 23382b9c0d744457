#include "client/sidecar/ext_authz_service.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/unary_call.h"

namespace tokenstatus {

using envoy::service::auth::v3::CheckRequest;
using envoy::service::auth::v3::CheckResponse;

ExtAuthzService::ExtAuthzService(SidecarService& verifier, ExtAuthzOptions options)
    : verifier_(verifier), options_(std::move(options)) {}

grpc::ServerUnaryReactor* ExtAuthzService::Check(grpc::CallbackServerContext* context,
                                                 const CheckRequest* request,
                                                 CheckResponse* response) {
  return ServeUnary(
      context, UnloggedCall(), AdmitLocal, NothingToValidate,
      [&](UnaryCall<UnloggedCall> call) {
        absl::StatusOr<std::string> secret = ExtAuthzCredential(*request, options_);
        if (!secret.ok()) {
          *response = ExtAuthzAnswer(*request, secret.status(), options_);
          verifier_.CountDecision("Check", false);
          std::move(call).Finish(absl::OkStatus());
          return;
        }
        verifier_.VerifySecret(*context, *std::move(secret),
                               [this, call = std::move(call), request,
                                response](absl::StatusOr<VerifyResult> verified) mutable {
                                 *response = ExtAuthzAnswer(*request, verified, options_);
                                 verifier_.CountDecision("Check", response->status().code() == 0);
                                 std::move(call).Finish(absl::OkStatus());
                               });
      },
      verifier_.Measured(envoy::service::auth::v3::Authorization::service_full_name(), "Check"));
}

}  // namespace tokenstatus
