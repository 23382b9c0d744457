#include "server/redis/redis_script.h"

#include <openssl/sha.h>

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "server/redis/redis_reply.h"

namespace tokenstatus {
namespace {

std::string Sha1Hex(absl::string_view data) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

}  // namespace

RedisScript::RedisScript(std::string source)
    : source_(std::move(source)), sha1_(Sha1Hex(source_)) {}

void RedisScript::Run(RedisClient& client, std::vector<std::string> keys,
                      std::vector<std::string> args, absl::Time deadline,
                      RedisClient::ReplyCallback done) const {
  // EVALSHA <sha1> <numkeys> <keys...> <args...>; the EVAL retry differs in the first two.
  std::vector<std::string> command;
  command.reserve(3 + keys.size() + args.size());
  command.push_back("EVALSHA");
  command.push_back(sha1_);
  command.push_back(absl::StrCat(keys.size()));
  for (std::string& key : keys) command.push_back(std::move(key));
  for (std::string& arg : args) command.push_back(std::move(arg));
  std::vector<std::string> retry = command;
  client.Command(std::move(command), deadline,
                 [this, &client, retry = std::move(retry), deadline,
                  done = std::move(done)](absl::StatusOr<const redisReply*> reply) mutable {
                   if (!reply.ok() || !IsErrorReply(**reply, "NOSCRIPT")) {
                     done(std::move(reply));
                     return;
                   }
                   retry[0] = "EVAL";
                   retry[1] = source_;
                   client.Command(std::move(retry), deadline, std::move(done));
                 });
}

}  // namespace tokenstatus
