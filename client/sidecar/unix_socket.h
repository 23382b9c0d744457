#pragma once

#include <string>

#include "absl/status/status.h"

namespace tokenstatus {

// Makes `path` free for a new unix socket: nothing there is fine; a socket nobody listens on (left
// by a process that died) is removed. A socket somebody listens on, or anything that is not a
// socket, is left alone: FAILED_PRECONDITION saying so. Thread-safe (file system calls only).
absl::Status PrepareUnixSocket(const std::string& path);

// Removes `path` if it is a socket (a server's own, after it stopped); anything else is left.
void RemoveUnixSocket(const std::string& path);

}  // namespace tokenstatus
