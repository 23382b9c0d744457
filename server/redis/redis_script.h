#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "server/redis/redis_client.h"

namespace tokenstatus {

// A Lua script for EVALSHA: its source and the SHA-1 Redis caches it under.
//
// Run() sends EVALSHA; when Redis answers NOSCRIPT (after a restart, a failover or SCRIPT
// FLUSH) it re-sends the same call as EVAL, which also caches the script again, so callers
// never see NOSCRIPT. Immutable and thread-safe.
class RedisScript {
 public:
  explicit RedisScript(std::string source);

  const std::string& source() const { return source_; }
  // Lowercase hex SHA-1 of source().
  const std::string& sha1() const { return sha1_; }

  // Runs the script with `keys` (KEYS) and `args` (ARGV) on `client`. `done` is called exactly
  // once, on the client's I/O thread, as for RedisClient::Command: with the script's reply
  // (script errors are REDIS_REPLY_ERROR replies) or UNAVAILABLE. `client` must outlive the call.
  void Run(RedisClient& client, std::vector<std::string> keys, std::vector<std::string> args,
           absl::Time deadline, RedisClient::ReplyCallback done) const;

 private:
  std::string source_;
  std::string sha1_;
};

}  // namespace tokenstatus
