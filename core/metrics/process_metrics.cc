#include "core/metrics/process_metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace tokenstatus::metrics {
namespace {

// The fields of /proc/self/stat after the command name (which may hold spaces): index 0 is
// field 3 (state) of proc(5).
std::vector<std::string> StatFields() {
  std::ifstream file("/proc/self/stat");
  std::string line;
  std::getline(file, line);
  const size_t end_of_name = line.rfind(')');
  if (end_of_name == std::string::npos) return {};
  return absl::StrSplit(line.substr(end_of_name + 2), ' ', absl::SkipEmpty());
}

double Field(const std::vector<std::string>& fields, int proc_field) {
  const size_t index = proc_field - 3;
  double value = 0;
  if (index >= fields.size() || !absl::SimpleAtod(fields[index], &value)) return -1;
  return value;
}

// Seconds since the epoch at which the machine booted (/proc/stat btime), or -1.
double BootTime() {
  std::ifstream file("/proc/stat");
  std::string line;
  while (std::getline(file, line)) {
    double value = 0;
    if (line.rfind("btime ", 0) == 0 && absl::SimpleAtod(line.substr(6), &value)) return value;
  }
  return -1;
}

double OpenFds() {
  std::error_code error;
  double count = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", error), end; !error && it != end;
       it.increment(error)) {
    ++count;
  }
  return error ? -1 : count - 1;  // less the descriptor the listing itself holds
}

}  // namespace

void AddProcessMetrics(Registry& registry, absl::string_view program) {
  Counter& cpu = registry
                     .AddCounter("process_cpu_seconds_total",
                                 "Total user and system CPU time spent in seconds.")
                     .Get();
  Gauge& resident =
      registry.AddGauge("process_resident_memory_bytes", "Resident memory size in bytes.").Get();
  Gauge& virtual_memory =
      registry.AddGauge("process_virtual_memory_bytes", "Virtual memory size in bytes.").Get();
  Gauge& open_fds = registry.AddGauge("process_open_fds", "Number of open file descriptors.").Get();
  Gauge& max_fds =
      registry.AddGauge("process_max_fds", "Maximum number of open file descriptors.").Get();
  Gauge& start_time = registry
                          .AddGauge("process_start_time_seconds",
                                    "Start time of the process since unix epoch in seconds.")
                          .Get();
  registry
      .AddGauge("tokenstatus_build_info",
                "Always 1; the labels name the program, its version and the git commit it was "
                "built from.",
                {"program", "version", "commit"})
      .With({std::string(program), TOKENSTATUS_VERSION, TOKENSTATUS_GIT_COMMIT})
      .Set(1);

  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page_size = static_cast<double>(sysconf(_SC_PAGESIZE));
  const double boot_time = BootTime();
  registry.OnScrape([=, &cpu, &resident, &virtual_memory, &open_fds, &max_fds, &start_time] {
    const std::vector<std::string> fields = StatFields();
    const double utime = Field(fields, 14);
    const double stime = Field(fields, 15);
    // A counter only goes up: add what was spent since the last scrape.
    if (utime >= 0 && stime >= 0) cpu.Increment((utime + stime) / ticks - cpu.Value());
    if (const double starttime = Field(fields, 22); starttime >= 0 && boot_time >= 0) {
      start_time.Set(boot_time + starttime / ticks);
    }
    if (const double vsize = Field(fields, 23); vsize >= 0) virtual_memory.Set(vsize);
    if (const double rss = Field(fields, 24); rss >= 0) resident.Set(rss * page_size);
    if (const double fds = OpenFds(); fds >= 0) open_fds.Set(fds);
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0) max_fds.Set(static_cast<double>(limit.rlim_cur));
  });
}

}  // namespace tokenstatus::metrics
