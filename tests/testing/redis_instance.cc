#include "tests/testing/redis_instance.h"

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace tokenstatus::testing {
namespace {

constexpr char kLocalhost[] = "127.0.0.1";
constexpr absl::Duration kReadyTimeout = absl::Seconds(20);
constexpr absl::Duration kShutdownTimeout = absl::Seconds(5);
constexpr timeval kConnectTimeout = {.tv_sec = 5, .tv_usec = 0};
constexpr timeval kCommandTimeout = {.tv_sec = 10, .tv_usec = 0};
constexpr int kStartAttempts = 5;

absl::Status ErrnoError(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// A loopback TCP port that nothing listens on right now (the kernel's pick for port 0). Another
// process may take it before redis-server binds it; Start() retries in that case.
absl::StatusOr<int> PickFreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoError("socket");
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  absl::Status status;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    status = ErrnoError("bind");
  } else if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    status = ErrnoError("getsockname");
  }
  ::close(fd);
  if (!status.ok()) return status;
  return static_cast<int>(ntohs(addr.sin_port));
}

absl::StatusOr<std::string> MakeTempDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/tokenstatus-redis-XXXXXX");
  if (::mkdtemp(pattern.data()) == nullptr) return ErrnoError("mkdtemp");
  return pattern;
}

// A datagram socket bound to `path` on which redis-server (--supervised systemd, with
// NOTIFY_SOCKET=path) announces "READY=1" once it has loaded its data and accepts clients.
absl::StatusOr<int> BindNotifySocket(const std::string& path) {
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("socket path too long (set TMPDIR): ", path));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  ::unlink(path.c_str());
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoError("socket(AF_UNIX)");
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    absl::Status status = ErrnoError(absl::StrCat("bind ", path));
    ::close(fd);
    return status;
  }
  return fd;
}

absl::StatusOr<RedisReply> ConvertReply(const redisReply& reply) {
  RedisReply out;
  switch (reply.type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kString;
      out.str.assign(reply.str, reply.len);
      return out;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.str = absl::StrCat(reply.integer);
      return out;
    case REDIS_REPLY_NIL:
      return out;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      for (size_t i = 0; i < reply.elements; ++i) {
        absl::StatusOr<RedisReply> element = ConvertReply(*reply.element[i]);
        if (!element.ok()) return element.status();
        out.elements.push_back(*std::move(element));
      }
      return out;
    case REDIS_REPLY_ERROR:
      return absl::InternalError(absl::StrCat("redis: ", absl::string_view(reply.str, reply.len)));
    default:
      return absl::InternalError(absl::StrCat("redis: unexpected reply type ", reply.type));
  }
}

void Flatten(const RedisReply& reply, std::vector<std::string>& out) {
  if (reply.type == RedisReply::Type::kArray) {
    for (const RedisReply& element : reply.elements) Flatten(element, out);
  } else {
    out.push_back(reply.str);
  }
}

}  // namespace

void RedisInstance::ContextDeleter::operator()(redisContext* context) const { redisFree(context); }

RedisInstance::RedisInstance(std::string host, int port, std::string dir,
                             RedisInstanceOptions options)
    : host_(std::move(host)), port_(port), dir_(std::move(dir)), options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<RedisInstance>> RedisInstance::Start(RedisInstanceOptions options) {
  absl::StatusOr<std::string> dir = MakeTempDir();
  if (!dir.ok()) return dir.status();
  std::unique_ptr<RedisInstance> instance(
      new RedisInstance(kLocalhost, 0, *dir, std::move(options)));
  absl::Status status;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    absl::StatusOr<int> port = PickFreePort();
    if (!port.ok()) return port.status();
    instance->port_ = *port;
    std::filesystem::remove(instance->dir_ + "/redis.log");
    status = instance->StartProcess();
    if (status.ok() && !instance->options_.replica_of.empty() &&
        instance->options_.sentinel_config.empty()) {
      status = instance->AwaitSync();
    }
    if (status.ok()) return instance;
    // Only a lost race for the port is worth another try.
    if (!absl::StrContains(status.message(), "Address already in use")) break;
  }
  return status;
}

RedisInstance::~RedisInstance() {
  if (process_ != nullptr && !options_.sentinel_config.empty()) {
    process_->Kill();  // nothing of a sentinel's is worth a clean shutdown
  } else if (process_ != nullptr && !process_->Wait(absl::ZeroDuration()).ok()) {
    // The connection drops when the server exits, so the reply is always an error. NOW: a
    // primary does not wait (up to 10 s) for replicas that are gone.
    CommandReply({"SHUTDOWN", "NOSAVE", "NOW"}).IgnoreError();
    if (!process_->Wait(kShutdownTimeout).ok()) process_->Kill();
  }
  Disconnect();
  process_.reset();
  if (!dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

int RedisInstance::port() const { return port_; }

std::string RedisInstance::address() const { return absl::StrCat(host_, ":", port_); }

void RedisInstance::Kill() {
  if (process_ == nullptr) {
    ADD_FAILURE() << "RedisInstance::Kill: the external Redis at " << address()
                  << " (TOKENSTATUS_TEST_REDIS) cannot be killed; use RedisInstance::Start()";
    return;
  }
  Disconnect();
  process_->Kill();
}

void RedisInstance::Signal(int signo) {
  if (process_ == nullptr) {
    ADD_FAILURE() << "RedisInstance::Signal: the external Redis at " << address()
                  << " (TOKENSTATUS_TEST_REDIS) cannot be signalled; use RedisInstance::Start()";
    return;
  }
  process_->Signal(signo);
}

absl::Status RedisInstance::Restart() {
  if (dir_.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the external Redis at ", address(), " cannot be restarted"));
  }
  if (process_ != nullptr && !process_->Wait(absl::ZeroDuration()).ok()) {
    return absl::FailedPreconditionError("redis-server is still running; Kill() it first");
  }
  Disconnect();
  return StartProcess();
}

absl::Status RedisInstance::StartProcess() {
  const std::string notify_path = dir_ + "/notify.sock";
  absl::StatusOr<int> notify_fd = BindNotifySocket(notify_path);
  if (!notify_fd.ok()) return notify_fd.status();
  struct CloseOnExit {
    int fd;
    ~CloseOnExit() { ::close(fd); }
  } close_notify{*notify_fd};

  SpawnOptions options;
  const bool sentinel = !options_.sentinel_config.empty();
  if (sentinel) {
    const std::string config_path = dir_ + "/sentinel.conf";
    if (!std::filesystem::exists(config_path)) {  // a restart keeps what the sentinel learnt
      std::ofstream config(config_path);
      config << options_.sentinel_config << "\n";
      if (!config.good()) return ErrnoError(absl::StrCat("write ", config_path));
    }
    options.argv = {"redis-sentinel", config_path};
  } else {
    // A replica's full sync starts at once, not after the default 5 s of waiting for others.
    options.argv = {"redis-server",
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "always",
                    "--save",
                    "",
                    "--repl-diskless-sync-delay",
                    "0"};
    if (!options_.replica_of.empty()) {
      const std::pair<std::string, std::string> host_port =
          absl::StrSplit(options_.replica_of, absl::MaxSplits(':', 1));
      options.argv.insert(options.argv.end(), {"--replicaof", host_port.first, host_port.second});
    }
  }
  options.argv.insert(options.argv.end(),
                      {"--port", absl::StrCat(port_), "--bind", kLocalhost, "--dir", dir_,
                       "--logfile", dir_ + "/redis.log", "--supervised", "systemd"});
  options.extra_env = {absl::StrCat("NOTIFY_SOCKET=", notify_path)};
  absl::StatusOr<std::unique_ptr<Subprocess>> process = Subprocess::Spawn(options);
  if (!process.ok()) return process.status();
  process_ = *std::move(process);

  const absl::Time deadline = absl::Now() + kReadyTimeout;
  pollfd fds[2] = {{.fd = *notify_fd, .events = POLLIN, .revents = 0},
                   {.fd = process_->exit_fd(), .events = POLLIN, .revents = 0}};
  while (true) {
    const int timeout_ms = static_cast<int>(
        absl::ToInt64Milliseconds(std::max(deadline - absl::Now(), absl::ZeroDuration())));
    const int ready = ::poll(fds, 2, timeout_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return ErrnoError("poll");
    if (ready == 0) {
      process_->Kill();
      return absl::DeadlineExceededError(
          absl::StrCat("redis-server on port ", port_, " not ready within ",
                       absl::FormatDuration(kReadyTimeout), "; log:\n", LogTail()));
    }
    if (fds[0].revents != 0) {
      char message[512];
      const ssize_t n = ::recv(*notify_fd, message, sizeof(message), 0);
      if (n > 0 && absl::StrContains(absl::string_view(message, n), "READY=1")) {
        return absl::OkStatus();
      }
    }
    if (fds[1].revents != 0) {
      absl::StatusOr<int> wait_status = process_->Wait(absl::ZeroDuration());
      return absl::UnavailableError(absl::StrCat(
          "redis-server on port ", port_, " exited before it was ready (",
          wait_status.ok() ? DescribeWaitStatus(*wait_status) : wait_status.status().ToString(),
          "); log:\n", LogTail()));
    }
  }
}

absl::Status RedisInstance::AwaitSync() {
  const absl::Time deadline = absl::Now() + kReadyTimeout;
  while (true) {
    absl::StatusOr<std::vector<std::string>> info = Command({"INFO", "replication"});
    if (info.ok() && !info->empty() && absl::StrContains(info->front(), "master_link_status:up")) {
      return absl::OkStatus();
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("replica on port ", port_, " not in sync with ", options_.replica_of,
                       " within ", absl::FormatDuration(kReadyTimeout), "; log:\n", LogTail()));
    }
    absl::SleepFor(absl::Milliseconds(20));  // polling: Redis announces no sync event
  }
}

std::string RedisInstance::LogTail(size_t max_lines) const {
  if (dir_.empty()) return "";
  std::ifstream file(dir_ + "/redis.log");
  std::stringstream content;
  content << file.rdbuf();
  std::vector<std::string> lines = absl::StrSplit(content.str(), '\n', absl::SkipEmpty());
  if (lines.size() > max_lines) lines.erase(lines.begin(), lines.end() - max_lines);
  return absl::StrJoin(lines, "\n");
}

void RedisInstance::Disconnect() {
  absl::MutexLock lock(&mu_);
  context_.reset();
}

absl::StatusOr<std::vector<std::string>> RedisInstance::Command(
    const std::vector<std::string>& args) {
  absl::StatusOr<RedisReply> reply = CommandReply(args);
  if (!reply.ok()) return reply.status();
  std::vector<std::string> flat;
  Flatten(*reply, flat);
  return flat;
}

absl::StatusOr<RedisReply> RedisInstance::CommandReply(const std::vector<std::string>& args) {
  if (args.empty()) return absl::InvalidArgumentError("empty command");
  absl::MutexLock lock(&mu_);
  if (context_ == nullptr) {
    std::unique_ptr<redisContext, ContextDeleter> context(
        redisConnectWithTimeout(host_.c_str(), port_, kConnectTimeout));
    if (context == nullptr) return absl::ResourceExhaustedError("redisConnect: out of memory");
    if (context->err != 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot connect to Redis at ", address(), ": ", context->errstr));
    }
    redisSetTimeout(context.get(), kCommandTimeout);
    context_ = std::move(context);
  }
  std::vector<const char*> argv;
  std::vector<size_t> argv_len;
  for (const std::string& arg : args) {
    argv.push_back(arg.data());
    argv_len.push_back(arg.size());
  }
  auto* reply = static_cast<redisReply*>(redisCommandArgv(
      context_.get(), static_cast<int>(argv.size()), argv.data(), argv_len.data()));
  if (reply == nullptr) {
    // The connection is unusable after an I/O error or a timeout; the next call reconnects.
    absl::Status status = absl::UnavailableError(
        absl::StrCat("Redis at ", address(), ": ", args[0], ": ", context_->errstr));
    context_.reset();
    return status;
  }
  absl::StatusOr<RedisReply> converted = ConvertReply(*reply);
  freeReplyObject(reply);
  return converted;
}

RedisInstance& SharedRedis() {
  static const std::unique_ptr<RedisInstance> shared = []() -> std::unique_ptr<RedisInstance> {
    const char* external = std::getenv("TOKENSTATUS_TEST_REDIS");
    if (external != nullptr && *external != '\0') {
      std::pair<std::string, std::string> host_port = absl::StrSplit(external, ':');
      int port = 0;
      if (host_port.first.empty() || !absl::SimpleAtoi(host_port.second, &port) || port <= 0) {
        std::fprintf(stderr, "FATAL: TOKENSTATUS_TEST_REDIS=%s is not host:port\n", external);
        std::abort();
      }
      return std::unique_ptr<RedisInstance>(new RedisInstance(host_port.first, port, ""));
    }
    // The server dies with the thread that starts it (see Subprocess): only the main thread
    // lives as long as this static.
    if (::gettid() != ::getpid()) {
      std::fprintf(stderr,
                   "FATAL: the first call of SharedRedis() must come from the main thread "
                   "(e.g. SetUpTestSuite)\n");
      std::abort();
    }
    absl::StatusOr<std::unique_ptr<RedisInstance>> started = RedisInstance::Start();
    if (!started.ok()) {
      std::fprintf(stderr, "FATAL: cannot start the shared redis-server: %s\n",
                   started.status().ToString().c_str());
      std::abort();
    }
    return *std::move(started);
  }();
  return *shared;
}

std::string UniqueKeyPrefix() {
  static const uint32_t process_random = absl::Uniform<uint32_t>(absl::BitGen(), 0, 0x10000);
  static std::atomic<int> counter{0};
  return absl::StrFormat("{t-%d-%04x-%d}", ::getpid(), process_random, ++counter);
}

}  // namespace tokenstatus::testing
