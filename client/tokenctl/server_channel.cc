#include "client/tokenctl/server_channel.h"

#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

namespace tokenstatus::tokenctl {

std::shared_ptr<grpc::Channel> OpenServerChannel(const std::string& address) {
  return grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
}

}  // namespace tokenstatus::tokenctl
