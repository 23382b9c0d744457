#include "tests/testing/process_usage.h"

#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace tokenstatus::testing {

absl::Duration OwnCpu() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return absl::DurationFromTimeval(usage.ru_utime) + absl::DurationFromTimeval(usage.ru_stime);
}

absl::StatusOr<absl::Duration> ProcessCpu(int pid) {
  const std::string path = absl::StrCat("/proc/", pid, "/stat");
  std::ifstream stat(path);
  const std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // The command name (field 2) may hold spaces: count the fields after its ")".
  const size_t name_end = text.rfind(')');
  if (name_end == std::string::npos || name_end + 2 > text.size()) {
    return absl::NotFoundError(absl::StrCat("no process line in ", path));
  }
  const std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(text).substr(name_end + 2), ' ');
  // utime and stime are fields 14 and 15 of the line: the 12th and 13th after the name.
  int64_t user = 0;
  int64_t system = 0;
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &user) ||
      !absl::SimpleAtoi(fields[12], &system)) {
    return absl::NotFoundError(absl::StrCat("no utime and stime in ", path));
  }
  return absl::Seconds(static_cast<double>(user + system) / sysconf(_SC_CLK_TCK));
}

absl::Duration ProcessCpuMeter::Elapsed() const {
  absl::StatusOr<absl::Duration> now = ProcessCpu(pid_);
  if (!start_.ok() || !now.ok()) return absl::ZeroDuration();
  return *now - *start_;
}

absl::StatusOr<int64_t> ResidentKiB(int pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    absl::string_view rest = line;
    if (!absl::ConsumePrefix(&rest, "VmRSS:")) continue;
    rest = absl::StripAsciiWhitespace(rest);
    absl::ConsumeSuffix(&rest, " kB");
    int64_t kib = 0;
    if (!absl::SimpleAtoi(rest, &kib)) break;
    return kib;
  }
  return absl::NotFoundError(absl::StrCat("no VmRSS line in /proc/", pid, "/status"));
}

}  // namespace tokenstatus::testing
