#include "server/auth/call_credentials.h"

#include <algorithm>
#include <memory>

#include "grpc/grpc_security_constants.h"
#include "grpcpp/security/auth_context.h"

namespace tokenstatus {
namespace {

std::vector<std::string> PropertyValues(const grpc::AuthContext& auth, const char* name) {
  std::vector<std::string> values;
  for (const grpc::string_ref& value : auth.FindPropertyValues(name)) {
    values.emplace_back(value.data(), value.size());
  }
  return values;
}

bool Contains(const std::vector<std::string>& values, const std::string& value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

}  // namespace

std::optional<std::string> CertificatePrincipal(const std::vector<std::string>& sans,
                                                const std::vector<std::string>& dns_names,
                                                const std::vector<std::string>& uris,
                                                const std::optional<std::string>& common_name) {
  for (const std::string& san : sans) {
    if (Contains(dns_names, san) || Contains(uris, san)) return san;
  }
  if (common_name.has_value() && !common_name->empty()) return common_name;
  return std::nullopt;
}

CallCredentials CallCredentialsOf(const grpc::ServerContextBase& context) {
  CallCredentials credentials;
  const auto& metadata = context.client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    credentials.authorization = std::string(it->second.data(), it->second.size());
    return credentials;
  }
  const std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  // Peer properties exist only when the client presented a certificate the server verified.
  if (auth != nullptr && auth->IsPeerAuthenticated()) {
    const std::vector<std::string> common_names = PropertyValues(*auth, GRPC_X509_CN_PROPERTY_NAME);
    credentials.certificate_principal = CertificatePrincipal(
        PropertyValues(*auth, GRPC_X509_SAN_PROPERTY_NAME),
        PropertyValues(*auth, GRPC_PEER_DNS_PROPERTY_NAME),
        PropertyValues(*auth, GRPC_PEER_URI_PROPERTY_NAME),
        common_names.empty() ? std::nullopt : std::optional<std::string>(common_names.front()));
  }
  return credentials;
}

}  // namespace tokenstatus
