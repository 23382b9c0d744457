#pragma once

#include <memory>
#include <string>

#include "grpcpp/channel.h"

namespace tokenstatus::tokenctl {

// The server tokenctl talks to when neither --server nor TOKENSTATUS_SERVER is given: the
// default --listen of tokenstatus-server (server/service/server_config.h).
inline constexpr char kDefaultServerAddress[] = "127.0.0.1:50051";

// The one place where tokenctl opens its channel to `address` ("host:port", or any gRPC
// target such as "unix:/path"). Plaintext for now; credentials and TLS belong here when the
// server gets them. Thread-safe.
std::shared_ptr<grpc::Channel> OpenServerChannel(const std::string& address);

}  // namespace tokenstatus::tokenctl
