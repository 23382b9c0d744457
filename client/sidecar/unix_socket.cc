#include "client/sidecar/unix_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/log.h"
#include "core/status_util.h"

namespace tokenstatus {
namespace {

absl::Status CannotUse(absl::string_view message) {
  return MakeError(absl::StatusCode::kFailedPrecondition, reason::kInvalidArgument, message);
}

bool IsSocket(const std::string& path) {
  struct stat info {};
  return ::lstat(path.c_str(), &info) == 0 && S_ISSOCK(info.st_mode);
}

}  // namespace

absl::Status PrepareUnixSocket(const std::string& path) {
  struct stat info {};
  if (::lstat(path.c_str(), &info) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return CannotUse(absl::StrCat("cannot inspect ", path, ": ", std::strerror(errno)));
  }
  if (!S_ISSOCK(info.st_mode)) {
    return CannotUse(absl::StrCat(path, " exists and is not a socket; not removing it"));
  }
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof(address.sun_path)) {
    return CannotUse(absl::StrCat("unix socket path too long: ", path));
  }
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe < 0) return CannotUse(absl::StrCat("socket: ", std::strerror(errno)));
  const bool live =
      ::connect(probe, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0;
  const int connect_errno = errno;
  ::close(probe);
  if (live) return CannotUse(absl::StrCat(path, " is in use by another process"));
  if (connect_errno != ECONNREFUSED) {
    return CannotUse(absl::StrCat("cannot probe ", path, ": ", std::strerror(connect_errno)));
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return CannotUse(
        absl::StrCat("cannot remove the stale socket ", path, ": ", std::strerror(errno)));
  }
  Log(LogLevel::kInfo, absl::StrCat("event=stale_socket_removed path=", path));
  return absl::OkStatus();
}

void RemoveUnixSocket(const std::string& path) {
  if (IsSocket(path)) ::unlink(path.c_str());
}

}  // namespace tokenstatus
