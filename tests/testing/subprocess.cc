#include "tests/testing/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

extern char** environ;

namespace tokenstatus::testing {
namespace {

absl::Status ErrnoError(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// Owns one file descriptor.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    Reset();
    fd_ = std::exchange(other.fd_, -1);
    return *this;
  }

  int get() const { return fd_; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// A pipe whose both ends are close-on-exec.
absl::Status MakePipe(UniqueFd& read_end, UniqueFd& write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoError("pipe2");
  read_end = UniqueFd(fds[0]);
  write_end = UniqueFd(fds[1]);
  return absl::OkStatus();
}

// Milliseconds for poll(2) until `deadline`: -1 for an infinite deadline, else >= 0.
int PollTimeoutMs(absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) return -1;
  absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  return static_cast<int>(absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1))));
}

// The inherited environment with `extra` ("NAME=value") added, later entries winning.
std::vector<std::string> MergedEnvironment(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    absl::string_view current(*entry);
    absl::string_view name = current.substr(0, current.find('='));
    bool overridden = false;
    for (const std::string& e : extra) {
      if (absl::string_view(e).substr(0, e.find('=')) == name) overridden = true;
    }
    if (!overridden) env.emplace_back(current);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

std::vector<char*> CStringArray(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  pointers.reserve(strings.size() + 1);
  for (std::string& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

// Runs in the forked child of a multithreaded parent: async-signal-safe calls only.
[[noreturn]] void ExecChild(pid_t parent, const char* path, char* const argv[], char* const envp[],
                            int stdout_fd, int stderr_fd) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);  // the parent thread is already gone
  if (stdout_fd >= 0 && ::dup2(stdout_fd, STDOUT_FILENO) < 0) ::_exit(127);
  if (stderr_fd >= 0 && ::dup2(stderr_fd, STDERR_FILENO) < 0) ::_exit(127);
  ::close_range(3, ~0U, 0);
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction default_action = {};
  default_action.sa_handler = SIG_DFL;
  ::sigaction(SIGPIPE, &default_action, nullptr);
  ::execve(path, argv, envp);
  static constexpr char kMessage[] = "subprocess: execve failed\n";
  ssize_t ignored = ::write(STDERR_FILENO, kMessage, sizeof(kMessage) - 1);
  (void)ignored;
  ::_exit(127);
}

}  // namespace

absl::StatusOr<std::string> FindExecutable(absl::string_view name) {
  auto is_executable = [](const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
           ::access(path.c_str(), X_OK) == 0;
  };
  if (name.find('/') != absl::string_view::npos) {
    std::string path(name);
    if (is_executable(path)) return path;
    return absl::NotFoundError(absl::StrCat("not an executable file: ", name));
  }
  const char* path_env = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path_env == nullptr ? "" : path_env, ':')) {
    if (dir.empty()) continue;
    std::string candidate = absl::StrCat(dir, "/", name);
    if (is_executable(candidate)) return candidate;
  }
  return absl::NotFoundError(absl::StrCat(name, " not found on PATH"));
}

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Spawn(const SpawnOptions& options) {
  if (options.argv.empty()) return absl::InvalidArgumentError("empty argv");
  absl::StatusOr<std::string> path = FindExecutable(options.argv[0]);
  if (!path.ok()) return path.status();

  // Everything the child needs is prepared before fork: it may not allocate.
  std::vector<std::string> argv_strings = options.argv;
  std::vector<std::string> env_strings = MergedEnvironment(options.extra_env);
  std::vector<char*> argv = CStringArray(argv_strings);
  std::vector<char*> envp = CStringArray(env_strings);
  const pid_t parent = ::getpid();

  const pid_t pid = ::fork();
  if (pid < 0) return ErrnoError("fork");
  if (pid == 0) {
    ExecChild(parent, path->c_str(), argv.data(), envp.data(), options.stdout_fd,
              options.stderr_fd);
  }
  // glibc 2.36's <sys/pidfd.h> lacks extern "C", so call the system call directly.
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    absl::Status error = ErrnoError("pidfd_open");
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return error;
  }
  return std::unique_ptr<Subprocess>(new Subprocess(pid, pidfd));
}

Subprocess::~Subprocess() {
  Kill();
  ::close(pidfd_);
}

void Subprocess::Signal(int signo) {
  // Until it is reaped, the child's pid cannot be reused, so this never hits another process.
  if (!reaped_) ::kill(pid_, signo);
}

absl::StatusOr<int> Subprocess::Wait(absl::Duration timeout) {
  if (reaped_) return wait_status_;
  const absl::Time deadline = absl::Now() + timeout;
  pollfd pfd = {.fd = pidfd_, .events = POLLIN, .revents = 0};
  while (true) {
    int ready = ::poll(&pfd, 1, PollTimeoutMs(deadline));
    if (ready > 0) break;
    if (ready == 0) {
      return absl::DeadlineExceededError(
          absl::StrCat("process ", pid_, " still running after ", absl::FormatDuration(timeout)));
    }
    if (errno != EINTR) return ErrnoError("poll(pidfd)");
  }
  while (::waitpid(pid_, &wait_status_, 0) < 0) {
    if (errno != EINTR) return ErrnoError("waitpid");
  }
  reaped_ = true;
  return wait_status_;
}

void Subprocess::Kill() {
  if (reaped_) return;
  ::kill(pid_, SIGKILL);
  while (::waitpid(pid_, &wait_status_, 0) < 0 && errno == EINTR) {
  }
  reaped_ = true;
}

std::string DescribeWaitStatus(int wait_status) {
  if (WIFEXITED(wait_status)) return absl::StrCat("exit code ", WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) {
    const int signo = WTERMSIG(wait_status);
    return absl::StrCat("killed by signal ", signo, " (", ::strsignal(signo), ")");
  }
  return absl::StrCat("wait status ", wait_status);
}

absl::StatusOr<CommandResult> RunCommand(std::vector<std::string> argv, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  UniqueFd out_read, out_write, err_read, err_write;
  if (absl::Status s = MakePipe(out_read, out_write); !s.ok()) return s;
  if (absl::Status s = MakePipe(err_read, err_write); !s.ok()) return s;
  SpawnOptions options;
  options.argv = std::move(argv);
  options.stdout_fd = out_write.get();
  options.stderr_fd = err_write.get();
  absl::StatusOr<std::unique_ptr<Subprocess>> child = Subprocess::Spawn(options);
  if (!child.ok()) return child.status();
  out_write.Reset();
  err_write.Reset();

  CommandResult result;
  pollfd fds[2] = {{.fd = out_read.get(), .events = POLLIN, .revents = 0},
                   {.fd = err_read.get(), .events = POLLIN, .revents = 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  while (fds[0].fd >= 0 || fds[1].fd >= 0) {
    int ready = ::poll(fds, 2, PollTimeoutMs(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return ErrnoError("poll");
    if (ready == 0) {
      (*child)->Kill();
      return absl::DeadlineExceededError(
          absl::StrCat(options.argv[0], " did not finish within ", absl::FormatDuration(timeout),
                       "; stdout: ", result.out, "; stderr: ", result.err));
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buffer[4096];
      ssize_t n = ::read(fds[i].fd, buffer, sizeof(buffer));
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        fds[i].fd = -1;  // EOF (or a broken pipe): poll ignores negative descriptors
      }
    }
  }
  absl::StatusOr<int> status =
      (*child)->Wait(std::max(deadline - absl::Now(), absl::ZeroDuration()));
  if (!status.ok()) return status.status();  // its child is killed by ~Subprocess
  result.exit_code = WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
  return result;
}

}  // namespace tokenstatus::testing
