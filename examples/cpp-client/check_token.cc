// check_token: is this API token valid? Answered by a TokenCache, a local copy of every token's
// status that tokenstatus-server keeps up to date over one WatchTokens stream, so each check is
// a lookup in memory and a disable reaches it within milliseconds.
//
// Usage: check_token <server address>   (the secret on stdin: never on a command line)
// The bearer credential of a principal with the verifier role comes from TOKENSTATUS_CREDENTIALS.
// Exit 0 if the token is valid, 1 if not, 2 on an error.

#include <iostream>
#include <string>

#include "absl/time/time.h"
#include "client/connection.h"
#include "client/token_cache.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: check_token <server address> < secret\n";
    return 2;
  }
  absl::StatusOr<tokenstatus::ConnectionOptions> connection =
      tokenstatus::LoadConnectionOptions({.address = argv[1]});
  if (!connection.ok()) {
    std::cerr << connection.status().message() << "\n";
    return 2;
  }
  tokenstatus::TokenCacheOptions options;  // watches every account, with secret hashes
  absl::StatusOr<std::unique_ptr<tokenstatus::TokenCache>> cache = tokenstatus::TokenCache::Create(
      tokenstatus::OpenChannel(*connection, tokenstatus::TokenCache::ChannelArguments(options)),
      options);
  if (!cache.ok()) {
    std::cerr << cache.status().message() << "\n";
    return 2;
  }
  if (!(*cache)->WaitForRevision(0, absl::Seconds(10))) {  // the first snapshot
    std::cerr << "no snapshot from " << argv[1] << " within 10s\n";
    return 2;
  }
  std::string secret;
  std::getline(std::cin, secret);
  const tokenstatus::VerifyResult result = (*cache)->Verify(secret);
  std::cout << apitoken::v1::VerifyTokenResponse::Result_Name(result.result);
  if (!result.token_id.empty()) std::cout << " token=" << result.token_id;
  std::cout << "\n";
  return result.allowed ? 0 : 1;
}
