#pragma once

#include <optional>
#include <string>
#include <vector>

#include "grpcpp/server_context.h"
#include "server/auth/authenticator.h"

namespace tokenstatus {

// The credentials a gRPC call presents: its `authorization` metadata or, without one, on a
// mutual-TLS connection, its client certificate's principal (the Authenticator prefers the
// bearer credential, so the certificate's properties are not read on every call). Thread-safe
// (reads the call's context).
CallCredentials CallCredentialsOf(const grpc::ServerContextBase& context);

// The principal of a client certificate from the peer properties gRPC reports: the first
// subject alternative name (in certificate order, `sans`) that is a DNS name (`dns_names`) or
// a URI (`uris`), else the common name `common_name`; nullopt if none (no client certificate).
// Pure.
std::optional<std::string> CertificatePrincipal(const std::vector<std::string>& sans,
                                                const std::vector<std::string>& dns_names,
                                                const std::vector<std::string>& uris,
                                                const std::optional<std::string>& common_name);

}  // namespace tokenstatus
