// tokenstatus-mirrorbench: the mirror's initial load and memory per token. Fills an empty key
// prefix with N tokens through RedisTokenStore::Create (pipelined; so the records, indexes, event
// stream and revision are exactly what the server writes), then, in this same process, starts a
// TokenMirror and its EventTailer on a second store with fresh Redis clients (as the server
// does), waits until the mirror has loaded the head revision, and prints one key=value line:
//   tokens fill_s fill_per_s settle_s load_s revision rss_before_mib rss_after_mib bytes_per_token
// Between the fill and the load it waits (settle_s) until Redis runs no AOF rewrite or
// background save, has none scheduled, and is not rehashing its key table: the fill's writes
// start AOF rewrites, and one still running would take a core from the load it does not belong
// to; a fill that takes the key count past a power of two starts a rehash, during which every
// lookup searches two tables (HGETALL 3.2 µs against 2.0 µs). It asks DEBUG HTSTATS, so the Redis
// must allow DEBUG on local connections (--enable-debug-command local; make bench's does), or
// --await_rehash=false skips that wait.
// RSS is VmRSS of this process, each time after returning tcmalloc's free pages to the system
// (so neither the fill's freed memory nor the load's transient buffers count); bytes_per_token =
// (after - before) / tokens: the mirror (tokens, id map, account index) plus the Redis clients'
// and the tailer's steady-state memory. Exit code 0 on success, 1 if a step failed, 2 for bad
// flags or a key prefix that already holds tokens.

#include <gperftools/malloc_extension.h>

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/log.h"
#include "server/mirror/event_tailer.h"
#include "server/mirror/token_mirror.h"
#include "server/redis/redis_client.h"
#include "server/redis/redis_reply.h"
#include "server/store/redis_token_store.h"
#include "tests/testing/sync_store.h"

ABSL_FLAG(std::string, redis, "127.0.0.1:6379", "host:port of the Redis to fill and load from");
ABSL_FLAG(std::string, key_prefix, "{mirrorbench}",
          "key prefix (with a {hash tag}); must hold no tokens yet");
ABSL_FLAG(int, tokens, 1000000, "tokens to create, then load");
ABSL_FLAG(int, accounts, 1000, "accounts the tokens are spread over, round-robin");
ABSL_FLAG(int, in_flight, 256, "Create calls in flight while filling");
ABSL_FLAG(absl::Duration, load_timeout, absl::Minutes(5), "how long to wait for the mirror");
ABSL_FLAG(bool, await_rehash, true,
          "wait after the fill until Redis has finished rehashing its key table (asks DEBUG "
          "HTSTATS: the Redis must allow DEBUG on local connections); false for a Redis that "
          "refuses DEBUG, where a load during a rehash is slower");
ABSL_FLAG(absl::Duration, settle_timeout, absl::Minutes(5),
          "how long to wait after the fill for Redis's AOF rewrites, background saves and key "
          "table rehashing");

namespace tokenstatus {
namespace {

// A RedisTokenStore with its two clients, as the server makes them (server/main.cc).
struct StoreWithClients {
  std::unique_ptr<RedisClient> client;
  std::unique_ptr<RedisClient> blocking_client;  // WaitEvents only
  std::unique_ptr<RedisTokenStore> store;
};

absl::StatusOr<StoreWithClients> MakeStore(const std::string& address,
                                           RedisTokenStoreOptions options) {
  StoreWithClients made;
  RedisClientOptions client_options;
  client_options.address = address;
  absl::StatusOr<std::unique_ptr<RedisClient>> client = RedisClient::Start(client_options);
  if (!client.ok()) return client.status();
  client_options.connections = 1;
  absl::StatusOr<std::unique_ptr<RedisClient>> blocking = RedisClient::Start(client_options);
  if (!blocking.ok()) return blocking.status();
  made.client = *std::move(client);
  made.blocking_client = *std::move(blocking);
  made.store =
      std::make_unique<RedisTokenStore>(*made.client, *made.blocking_client, std::move(options));
  return made;
}

absl::StatusOr<StoreHead> ReadHead(TokenStore& store) {
  return testing::AwaitStore<StoreHead>([&store](StoreCallback<StoreHead> done) {
    store.ReadHead(absl::Now() + absl::Seconds(10), std::move(done));
  });
}

// The N-th token's creation: ids TKN-NNNN-NNNN, accounts round-robin, a 32-byte digest.
CreateTokenParams TokenParams(int i, int accounts) {
  const int account = i % accounts;
  CreateTokenParams params;
  params.token_id = absl::StrFormat("TKN-%04d-%04d", i / 10000, i % 10000);
  params.account_id = absl::StrFormat("ACC-%04d-%04d", account / 10000, account % 10000);
  params.name = absl::StrCat("bench token ", i);
  params.secret_sha256 = absl::StrFormat("%032d", i);
  params.actor = "mirrorbench";
  return params;
}

// Creates `tokens` tokens through `store` with at most `in_flight` calls outstanding. The first
// error, if any call failed.
absl::Status Fill(TokenStore& store, int tokens, int accounts, int in_flight) {
  absl::Mutex mu;
  int outstanding = 0;  // guarded by mu
  int completed = 0;    // guarded by mu
  absl::Status first_error;
  absl::Notification all_done;
  for (int i = 0; i < tokens; ++i) {
    {
      absl::MutexLock lock(&mu);
      auto has_room = [&outstanding, in_flight] { return outstanding < in_flight; };
      mu.Await(absl::Condition(&has_room));
      ++outstanding;
    }
    store.Create(TokenParams(i, accounts), absl::InfiniteFuture(),
                 [&, tokens](absl::StatusOr<Token> created) {
                   absl::MutexLock lock(&mu);
                   --outstanding;
                   if (!created.ok() && first_error.ok()) first_error = created.status();
                   if (++completed == tokens) all_done.Notify();
                 });
  }
  if (tokens > 0) all_done.WaitForNotification();
  absl::MutexLock lock(&mu);
  return first_error;
}

// Runs one command on `client` and waits for its reply's text (ReplyText).
absl::StatusOr<std::string> CommandText(RedisClient& client, std::vector<std::string> args) {
  return testing::AwaitStore<std::string>([&](StoreCallback<std::string> done) {
    client.Command(
        std::move(args), absl::Now() + absl::Seconds(5),
        [done = std::move(done)](absl::StatusOr<const redisReply*> reply) mutable {
          absl::StatusOr<const redisReply*> checked = CheckReply(std::move(reply));
          done(checked.ok() ? absl::StatusOr<std::string>(ReplyText(**checked)) : checked.status());
        });
  });
}

// What Redis is still doing in the background after a fill, per INFO persistence and (if
// `rehash`) DEBUG HTSTATS 0; empty when it is doing nothing that would take a core or slow
// lookups.
absl::StatusOr<std::string> RedisBackgroundWork(RedisClient& client, bool rehash) {
  absl::StatusOr<std::string> persistence = CommandText(client, {"INFO", "persistence"});
  if (!persistence.ok()) return persistence.status();
  for (absl::string_view busy :
       {"rdb_bgsave_in_progress:1", "aof_rewrite_in_progress:1", "aof_rewrite_scheduled:1"}) {
    if (absl::StrContains(*persistence, busy)) return std::string(busy);
  }
  if (!rehash) return std::string();
  // Past a power of two keys Redis grows its key table in steps (one per command, and 1 ms ten
  // times a second); until it has moved every key, each lookup searches both tables.
  absl::StatusOr<std::string> table = CommandText(client, {"DEBUG", "HTSTATS", "0"});
  if (!table.ok()) {
    return absl::Status(table.status().code(),
                        absl::StrCat("DEBUG HTSTATS (start redis-server with "
                                     "--enable-debug-command local, or pass "
                                     "--await_rehash=false): ",
                                     table.status().message()));
  }
  if (absl::StrContains(*table, "rehashing target")) return std::string("key table rehashing");
  return std::string();
}

// Waits until Redis runs no background save or AOF rewrite, has none scheduled, and (if
// `rehash`) is not rehashing its key table, polling every 100 ms; the time it waited, or an
// error after `timeout`.
absl::StatusOr<absl::Duration> AwaitRedisSettled(RedisClient& client, bool rehash,
                                                 absl::Duration timeout) {
  const absl::Time start = absl::Now();
  while (true) {
    absl::StatusOr<std::string> work = RedisBackgroundWork(client, rehash);
    if (!work.ok()) return work.status();
    if (work->empty()) return absl::Now() - start;
    if (absl::Now() - start > timeout) {
      return absl::DeadlineExceededError(
          absl::StrCat("Redis was still busy (", *work, ") after ", absl::FormatDuration(timeout)));
    }
    absl::SleepFor(absl::Milliseconds(100));  // polling: Redis announces nothing
  }
}

// VmRSS of this process in KiB, after returning tcmalloc's free pages to the system.
absl::StatusOr<int64_t> RssKib() {
  MallocExtension::instance()->ReleaseFreeMemory();
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) != 0) continue;
    std::string value = line.substr(6);
    absl::StripAsciiWhitespace(&value);
    int64_t kib = 0;
    if (value.size() > 3 && absl::SimpleAtoi(value.substr(0, value.size() - 3), &kib)) return kib;
  }
  return absl::InternalError("no VmRSS line in /proc/self/status");
}

double Mib(int64_t kib) { return kib / 1024.0; }

int Run() {
  const std::string address = absl::GetFlag(FLAGS_redis);
  const int tokens = absl::GetFlag(FLAGS_tokens);
  const int accounts = absl::GetFlag(FLAGS_accounts);
  const int in_flight = absl::GetFlag(FLAGS_in_flight);
  if (tokens < 1 || tokens > 100000000 || accounts < 1 || accounts > 100000000 || in_flight < 1) {
    Log(LogLevel::kError, "need 1 <= --tokens, --accounts <= 100000000 and --in_flight >= 1");
    return 2;
  }
  RedisTokenStoreOptions store_options;
  store_options.key_prefix = absl::GetFlag(FLAGS_key_prefix);

  // Fill, then drop the filling clients, so the measured process holds only the mirror's.
  absl::Duration fill_time;
  absl::Duration settle_time;
  int64_t head_revision = 0;
  {
    absl::StatusOr<StoreWithClients> filler = MakeStore(address, store_options);
    if (!filler.ok()) {
      Log(LogLevel::kError, absl::StrCat("--redis: ", filler.status().ToString()));
      return 2;
    }
    absl::StatusOr<StoreHead> head = ReadHead(*filler->store);
    if (!head.ok()) {
      Log(LogLevel::kError, absl::StrCat("reading the head: ", head.status().ToString()));
      return 1;
    }
    if (head->revision != 0) {
      Log(LogLevel::kError, absl::StrCat("key prefix ", store_options.key_prefix,
                                         " is not empty (revision ", head->revision, ")"));
      return 2;
    }
    const absl::Time start = absl::Now();
    absl::Status filled = Fill(*filler->store, tokens, accounts, in_flight);
    fill_time = absl::Now() - start;
    if (!filled.ok()) {
      Log(LogLevel::kError, absl::StrCat("filling: ", filled.ToString()));
      return 1;
    }
    head = ReadHead(*filler->store);
    if (!head.ok()) {
      Log(LogLevel::kError, absl::StrCat("reading the head: ", head.status().ToString()));
      return 1;
    }
    head_revision = head->revision;
    absl::StatusOr<absl::Duration> settled = AwaitRedisSettled(
        *filler->client, absl::GetFlag(FLAGS_await_rehash), absl::GetFlag(FLAGS_settle_timeout));
    if (!settled.ok()) {
      Log(LogLevel::kError, absl::StrCat("after the fill: ", settled.status().ToString()));
      return 1;
    }
    settle_time = *settled;
  }

  absl::StatusOr<int64_t> rss_before = RssKib();
  if (!rss_before.ok()) {
    Log(LogLevel::kError, rss_before.status().ToString());
    return 1;
  }
  absl::StatusOr<StoreWithClients> loader = MakeStore(address, store_options);
  if (!loader.ok()) {
    Log(LogLevel::kError, absl::StrCat("--redis: ", loader.status().ToString()));
    return 2;
  }
  TokenMirror mirror;
  EventTailer tailer(*loader->store, mirror);
  const absl::Time start = absl::Now();
  tailer.Start();
  absl::Notification reached;
  absl::Status loaded;
  mirror.WhenRevisionReached(head_revision, start + absl::GetFlag(FLAGS_load_timeout),
                             [&](absl::Status status) {
                               loaded = std::move(status);
                               reached.Notify();
                             });
  reached.WaitForNotification();
  const absl::Duration load_time = absl::Now() - start;
  if (!loaded.ok()) {
    Log(LogLevel::kError, absl::StrCat("loading the mirror: ", loaded.ToString()));
    return 1;
  }
  absl::StatusOr<int64_t> rss_after = RssKib();
  if (!rss_after.ok()) {
    Log(LogLevel::kError, rss_after.status().ToString());
    return 1;
  }
  const double fill_s = absl::ToDoubleSeconds(fill_time);
  absl::PrintF(
      "tokens=%d fill_s=%.1f fill_per_s=%.0f settle_s=%.1f load_s=%.1f revision=%d "
      "rss_before_mib=%.0f rss_after_mib=%.0f bytes_per_token=%.0f\n",
      tokens, fill_s, tokens / fill_s, absl::ToDoubleSeconds(settle_time),
      absl::ToDoubleSeconds(load_time), mirror.revision(), Mib(*rss_before), Mib(*rss_after),
      (*rss_after - *rss_before) * 1024.0 / tokens);
  return 0;
}

}  // namespace
}  // namespace tokenstatus

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // Off, as in noop_server.cc: Debian's Abseil checks lock order on every absl::Mutex lock.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return tokenstatus::Run();
}
