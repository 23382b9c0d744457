#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/channel.h"
#include "grpcpp/support/channel_arguments.h"

namespace tokenstatus {

// Where a client connects and how it proves who it is: TLS (trusting a CA bundle), an optional
// client certificate (mutual TLS), an optional bearer credential. Used by tokenctl, the
// sidecar's upstream connection and any program that links the client library.
struct ConnectionOptions {
  // A gRPC target: "host:port" or "unix:/path".
  std::string address;
  // PEM CA bundle to verify the server with; non-empty means TLS.
  std::string tls_ca_pem;
  // PEM client certificate chain and its key (mutual TLS); both or neither, with TLS only.
  std::string tls_cert_pem;
  std::string tls_key_pem;
  // Sent as `authorization: Bearer <secret>` on every call. Never logged.
  std::string bearer_secret;
};

// Where ConnectionOptions come from: file paths (flags such as tokenctl's --ca, --cert, --key)
// and the credential, which is never a flag value: from `credentials_file` (its first line),
// else from the environment variable TOKENSTATUS_CREDENTIALS, else none.
struct ConnectionSources {
  std::string address;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string credentials_file;
};

// The name of the environment variable that may hold the bearer credential.
inline constexpr char kCredentialsEnv[] = "TOKENSTATUS_CREDENTIALS";

// Reads the files of `sources`. INVALID_ARGUMENT naming the flag-like field for an unreadable
// or empty file, a certificate without its key (or the reverse), a client certificate without
// --ca (TLS), or a bearer credential that would cross the network in clear (plaintext to an
// address that is not loopback or a unix socket). Messages never contain the credential.
absl::StatusOr<ConnectionOptions> LoadConnectionOptions(const ConnectionSources& sources);

// A channel to options.address secured as `options` says, with `arguments`. Thread-safe.
std::shared_ptr<grpc::Channel> OpenChannel(const ConnectionOptions& options,
                                           const grpc::ChannelArguments& arguments = {});

}  // namespace tokenstatus
