#pragma once

#include <memory>
#include <string>
#include <vector>

#include "client/token_cache.h"
#include "grpcpp/security/auth_metadata_processor.h"

namespace tokenstatus {

// ({} initializers: designated initializers may omit any field without a GCC warning.)
struct TokenAuthOptions {
  // The metadata key (lower case, as gRPC delivers keys) that carries the token's secret:
  // "authorization" takes "Bearer <secret>"; any other key (e.g. "x-api-key") takes the bare
  // secret.
  std::string header{"authorization"};
  // Full method names (":path", e.g. "/grpc.health.v1.Health/Check") that need no token.
  std::vector<std::string> exempt_methods{
      "/grpc.health.v1.Health/Check",
      "/grpc.health.v1.Health/Watch",
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
  };
};

// Enforces tokenstatus API tokens on a C++ gRPC server, the way gRPC means it: an
// AuthMetadataProcessor, run by gRPC on every call before the handler. It reads the secret from
// the call's metadata (TokenAuthOptions::header), verifies it against a TokenCache (locally: it
// never waits for the network) and
//   - on success adds the AuthContext properties kTokenIdProperty and kAccountIdProperty,
//     which the handler reads with context->auth_context()->FindPropertyValues(...), and
//     removes the secret from the metadata the handler sees;
//   - otherwise ends the call before the handler runs: UNAUTHENTICATED when the secret is
//     missing, malformed, unknown (never saying whether an id exists) or of a deleted token;
//     PERMISSION_DENIED when the token is disabled; UNAVAILABLE when the cache is not fresh and
//     its policy is kFailClosed. The status message starts with the reason
//     ("TOKEN_DISABLED: ...", reasons of core/status_util.h): gRPC ignores the response metadata
//     of an AuthMetadataProcessor, so no ErrorInfo can travel with it.
// Calls to exempt_methods pass without a token.
//
// gRPC runs processors only on secure server credentials (TLS, or
// grpc::experimental::LocalServerCredentials on loopback or a unix socket), never on insecure
// ones: install it with ServerCredentials::SetAuthMetadataProcessor. Thread-safe; the cache must
// outlive the processor (it holds a shared_ptr).
class TokenAuthProcessor final : public grpc::AuthMetadataProcessor {
 public:
  static constexpr char kTokenIdProperty[] = "tokenstatus.token_id";
  static constexpr char kAccountIdProperty[] = "tokenstatus.account_id";

  TokenAuthProcessor(std::shared_ptr<const TokenCache> cache, TokenAuthOptions options = {});

  // Never blocks: gRPC may call Process on its own threads.
  bool IsBlocking() const override { return false; }

  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed_auth_metadata,
                       OutputMetadata* response_metadata) override;

 private:
  const std::shared_ptr<const TokenCache> cache_;
  const TokenAuthOptions options_;
};

}  // namespace tokenstatus
