#include "server/mirror/thread_priority.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/log.h"

namespace tokenstatus {

void LowerThisThreadPriority(int increment) {
  const auto thread = static_cast<id_t>(::syscall(SYS_gettid));
  errno = 0;
  const int current = ::getpriority(PRIO_PROCESS, thread);
  if ((current == -1 && errno != 0) ||
      ::setpriority(PRIO_PROCESS, thread, current + increment) != 0) {
    Log(LogLevel::kWarning,
        absl::StrCat("event=thread_priority_unchanged error=\"", std::strerror(errno), "\""));
  }
}

}  // namespace tokenstatus
