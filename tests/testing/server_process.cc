#include "tests/testing/server_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

#ifndef TOKENSTATUS_SERVER_BINARY
#error "TOKENSTATUS_SERVER_BINARY must name the tokenstatus-server executable"
#endif

namespace tokenstatus::testing {
namespace {

constexpr char kListeningOn[] = "listening on ";
constexpr absl::Duration kStartTimeout = absl::Seconds(20);
// Writes `line` of the process `name` to the test's stderr with one write(2), so echoed lines
// never interleave.
void Echo(absl::string_view name, absl::string_view line) {
  std::string out = absl::StrCat("[", name, "] ", line, "\n");
  ssize_t ignored = ::write(STDERR_FILENO, out.data(), out.size());
  (void)ignored;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(ServerOptions options) {
  // Unauthenticated calls are allowed (on loopback); extra_flags may turn that off again
  // (--insecure_allow_unauthenticated=false: the last value of a flag wins).
  std::vector<std::string> argv = {
      TOKENSTATUS_SERVER_BINARY,
      absl::StrCat("--listen=",
                   options.listen_address.empty() ? "127.0.0.1:0" : options.listen_address),
      "--insecure_allow_unauthenticated"};
  if (!options.redis_address.empty()) {
    argv.push_back(absl::StrCat("--redis=", options.redis_address));
  }
  if (!options.key_prefix.empty()) {
    argv.push_back(absl::StrCat("--redis_key_prefix=", options.key_prefix));
  }
  argv.insert(argv.end(), options.extra_flags.begin(), options.extra_flags.end());
  return StartCommand(std::move(argv), "server");
}

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::StartCommand(
    std::vector<std::string> argv, std::string name) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe2: ", std::strerror(errno)));
  }
  SpawnOptions spawn;
  spawn.argv = std::move(argv);
  const std::string binary = spawn.argv.front();
  spawn.stdout_fd = fds[1];
  spawn.stderr_fd = fds[1];
  absl::StatusOr<std::unique_ptr<Subprocess>> process = Subprocess::Spawn(spawn);
  ::close(fds[1]);
  if (!process.ok()) {
    ::close(fds[0]);
    return process.status();
  }
  std::unique_ptr<ServerProcess> server(
      new ServerProcess(*std::move(process), std::move(name), fds[0]));

  bool exited = false;
  std::string log;
  {
    absl::MutexLock lock(&server->mu_);
    auto listening_or_exited = [&server]() {
      server->mu_.AssertReaderHeld();
      return !server->address_.empty() || server->log_closed_;
    };
    server->mu_.AwaitWithTimeout(absl::Condition(&listening_or_exited), kStartTimeout);
    if (!server->address_.empty()) return server;
    exited = server->log_closed_;
    log = absl::StrJoin(server->lines_, "\n");
  }
  if (exited) {
    absl::StatusOr<int> status = server->process_->Wait(absl::Seconds(5));
    return absl::UnavailableError(absl::StrCat(
        binary, " exited before listening (",
        status.ok() ? DescribeWaitStatus(*status) : status.status().ToString(), "); log:\n", log));
  }
  return absl::DeadlineExceededError(
      absl::StrCat(binary, " did not log \"", kListeningOn, "<address>\" within ",
                   absl::FormatDuration(kStartTimeout), "; log:\n", log));
}

ServerProcess::ServerProcess(std::unique_ptr<Subprocess> process, std::string name, int log_fd)
    : process_(std::move(process)),
      name_(std::move(name)),
      reader_([this, log_fd] { ReadLog(log_fd); }) {}

ServerProcess::~ServerProcess() {
  process_->Kill();
  // The pipe's only writer is gone, so the reader sees EOF and ends.
  reader_.join();
}

std::string ServerProcess::address() const {
  absl::MutexLock lock(&mu_);
  return address_;
}

std::shared_ptr<grpc::Channel> ServerProcess::NewChannel() const {
  return grpc::CreateChannel(address(), grpc::InsecureChannelCredentials());
}

int ServerProcess::pid() const { return process_->pid(); }

absl::StatusOr<int> ServerProcess::Stop(int signo, absl::Duration timeout) {
  process_->Signal(signo);
  absl::StatusOr<int> status = process_->Wait(timeout);
  if (!status.ok()) {
    process_->Kill();
    return absl::DeadlineExceededError(absl::StrCat(name_, " did not exit within ",
                                                    absl::FormatDuration(timeout), " of signal ",
                                                    signo, "; killed"));
  }
  return *status;
}

absl::StatusOr<int> ServerProcess::Terminate(absl::Duration timeout) {
  absl::StatusOr<int> status = Stop(SIGTERM, timeout);
  if (!status.ok()) return status.status();
  if (!WIFEXITED(*status)) {
    return absl::InternalError(
        absl::StrCat(name_, " did not exit normally: ", DescribeWaitStatus(*status)));
  }
  return WEXITSTATUS(*status);
}

void ServerProcess::Kill() { process_->Kill(); }

std::vector<std::string> ServerProcess::LogLines() const {
  absl::MutexLock lock(&mu_);
  return lines_;
}

bool ServerProcess::WaitForLogLine(const std::string& needle, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto found = [this, &needle]() {
    mu_.AssertReaderHeld();
    return HasLine(needle);
  };
  return mu_.AwaitWithTimeout(absl::Condition(&found), timeout);
}

void ServerProcess::ReadLog(int fd) {
  std::string pending;
  char buffer[4096];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buffer, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t end; (end = pending.find('\n', start)) != std::string::npos; start = end + 1) {
      std::string line = pending.substr(start, end - start);
      Echo(name_, line);
      absl::MutexLock lock(&mu_);
      AddLine(std::move(line));
    }
    pending.erase(0, start);
  }
  ::close(fd);
  absl::MutexLock lock(&mu_);
  if (!pending.empty()) {
    Echo(name_, pending);
    AddLine(std::move(pending));
  }
  log_closed_ = true;
}

void ServerProcess::AddLine(std::string line) {
  const size_t at = line.find(kListeningOn);
  if (address_.empty() && at != std::string::npos) {
    const size_t begin = at + std::strlen(kListeningOn);
    const size_t end = line.find_first_of(" \t\r", begin);
    address_ = line.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
  }
  lines_.push_back(std::move(line));
}

bool ServerProcess::HasLine(absl::string_view needle) const {
  for (const std::string& line : lines_) {
    if (absl::StrContains(line, needle)) return true;
  }
  return false;
}

}  // namespace tokenstatus::testing
