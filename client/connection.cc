#include "client/connection.h"

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/loopback.h"
#include "core/status_util.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/client_interceptor.h"
#include "grpcpp/support/interceptor.h"

namespace tokenstatus {
namespace {

absl::Status InvalidConnection(absl::string_view message) {
  return MakeError(absl::StatusCode::kInvalidArgument, reason::kInvalidArgument, message);
}

// The content of `path` (named `what` in errors), or INVALID_ARGUMENT.
absl::StatusOr<std::string> ReadFile(absl::string_view what, const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream content;
  if (file) content << file.rdbuf();
  if (!file || content.str().empty()) {
    return InvalidConnection(absl::StrCat(what, ": cannot read \"", path, "\" (or it is empty)"));
  }
  return content.str();
}

// The credential in `text`: its first line, without surrounding blanks.
std::string FirstLine(absl::string_view text) {
  return std::string(absl::StripAsciiWhitespace(text.substr(0, text.find('\n'))));
}

// Adds `authorization: Bearer <secret>` to every call of a channel. (gRPC's call credentials
// would refuse a plaintext channel, even to a local address; LoadConnectionOptions decides
// where the credential may go.)
class BearerInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit BearerInterceptor(const std::string& header) : header_(header) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->emplace("authorization", header_);
    }
    methods->Proceed();
  }

 private:
  const std::string& header_;  // owned by the factory, which outlives the channel's calls
};

class BearerInterceptorFactory final
    : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit BearerInterceptorFactory(absl::string_view secret)
      : header_(absl::StrCat("Bearer ", secret)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo* /*info*/) override {
    return new BearerInterceptor(header_);
  }

 private:
  const std::string header_;
};

}  // namespace

absl::StatusOr<ConnectionOptions> LoadConnectionOptions(const ConnectionSources& sources) {
  ConnectionOptions options;
  options.address = sources.address;
  if (sources.cert_file.empty() != sources.key_file.empty()) {
    return InvalidConnection("--cert and --key go together: set both or neither");
  }
  if (!sources.cert_file.empty() && sources.ca_file.empty()) {
    return InvalidConnection("--cert needs --ca: a client certificate is only sent over TLS");
  }
  for (auto [what, path, pem] : {std::tuple("--ca", &sources.ca_file, &options.tls_ca_pem),
                                 std::tuple("--cert", &sources.cert_file, &options.tls_cert_pem),
                                 std::tuple("--key", &sources.key_file, &options.tls_key_pem)}) {
    if (path->empty()) continue;
    absl::StatusOr<std::string> content = ReadFile(what, *path);
    if (!content.ok()) return content.status();
    *pem = *std::move(content);
  }
  if (!sources.credentials_file.empty()) {
    absl::StatusOr<std::string> content = ReadFile("--credentials", sources.credentials_file);
    if (!content.ok()) return content.status();
    options.bearer_secret = FirstLine(*content);
  } else if (const char* env = std::getenv(kCredentialsEnv); env != nullptr) {
    options.bearer_secret = FirstLine(env);
  }
  if (!options.bearer_secret.empty() && options.tls_ca_pem.empty() &&
      !IsLoopbackAddress(options.address)) {
    return InvalidConnection(absl::StrCat("refusing to send the bearer credential in clear to ",
                                          options.address,
                                          ": use TLS (--ca) or a loopback or unix: address"));
  }
  return options;
}

std::shared_ptr<grpc::Channel> OpenChannel(const ConnectionOptions& options,
                                           const grpc::ChannelArguments& arguments) {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (options.tls_ca_pem.empty()) {
    credentials = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions tls;
    tls.pem_root_certs = options.tls_ca_pem;
    tls.pem_cert_chain = options.tls_cert_pem;
    tls.pem_private_key = options.tls_key_pem;
    credentials = grpc::SslCredentials(tls);
  }
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  if (!options.bearer_secret.empty()) {
    interceptors.push_back(std::make_unique<BearerInterceptorFactory>(options.bearer_secret));
  }
  return grpc::experimental::CreateCustomChannelWithInterceptors(
      options.address, credentials, arguments, std::move(interceptors));
}

}  // namespace tokenstatus
