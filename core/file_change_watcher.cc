#include "core/file_change_watcher.h"

#include <fstream>
#include <functional>
#include <sstream>
#include <string_view>
#include <utility>

namespace tokenstatus {

FileChangeWatcher::FileChangeWatcher(std::string path, absl::Duration interval,
                                     absl::AnyInvocable<void()> on_change)
    : path_(std::move(path)), interval_(interval), on_change_(std::move(on_change)) {
  last_ = Fingerprint();
  thread_ = std::thread([this] { Loop(); });
}

FileChangeWatcher::~FileChangeWatcher() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

std::optional<size_t> FileChangeWatcher::Fingerprint() const {
  std::ifstream in(path_, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return std::hash<std::string_view>()(contents.view());
}

void FileChangeWatcher::Loop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&stop_), interval_)) return;
    }
    std::optional<size_t> now = Fingerprint();
    if (now == last_) continue;
    last_ = now;
    if (now.has_value()) on_change_();
  }
}

}  // namespace tokenstatus
