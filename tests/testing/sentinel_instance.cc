#include "tests/testing/sentinel_instance.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace tokenstatus::testing {

absl::StatusOr<std::unique_ptr<SentinelInstance>> SentinelInstance::Start(
    const std::string& primary, SentinelOptions options) {
  const std::pair<std::string, std::string> host_port =
      absl::StrSplit(primary, absl::MaxSplits(':', 1));
  const std::string& name = options.master_name;
  const std::string config =
      absl::StrCat("sentinel monitor ", name, " ", host_port.first, " ", host_port.second, " ",
                   options.quorum, "\nsentinel down-after-milliseconds ", name, " ",
                   absl::ToInt64Milliseconds(options.down_after), "\nsentinel failover-timeout ",
                   name, " ", absl::ToInt64Milliseconds(options.failover_timeout),
                   "\nsentinel parallel-syncs ", name, " 1\n");
  absl::StatusOr<std::unique_ptr<RedisInstance>> process =
      RedisInstance::Start({.sentinel_config = config});
  if (!process.ok()) return process.status();
  return std::unique_ptr<SentinelInstance>(
      new SentinelInstance(*std::move(process), std::move(options)));
}

absl::StatusOr<std::string> SentinelInstance::PrimaryAddress() {
  absl::StatusOr<std::vector<std::string>> reply =
      process_->Command({"SENTINEL", "get-master-addr-by-name", options_.master_name});
  if (!reply.ok()) return reply.status();
  if (reply->size() != 2) return absl::NotFoundError("the sentinel knows no primary");
  return absl::StrCat((*reply)[0], ":", (*reply)[1]);
}

absl::StatusOr<int> SentinelInstance::KnownReplicas() { return CountOf("replicas"); }

absl::StatusOr<int> SentinelInstance::KnownSentinels() { return CountOf("sentinels"); }

absl::StatusOr<int> SentinelInstance::CountOf(const std::string& what) {
  absl::StatusOr<RedisReply> reply =
      process_->CommandReply({"SENTINEL", what, options_.master_name});
  if (!reply.ok()) return reply.status();
  return static_cast<int>(reply->elements.size());
}

}  // namespace tokenstatus::testing
