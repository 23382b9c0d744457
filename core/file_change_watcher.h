#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace tokenstatus {

// Calls `on_change` whenever the contents of the file at `path` differ from the contents it saw
// last, reading the file every `interval` on a thread of its own. It compares contents, not
// times or inodes, so it sees every way a file is replaced: a Kubernetes Secret volume swapping
// its symlinked directory, an editor renaming a new file over the old one, an operator writing
// in place. A file that cannot be read has no contents: reading it again once it is back counts
// as a change. The contents at construction are the first seen (no call for them).
//
// `on_change` runs on the watcher's thread, one call at a time; it must not destroy the
// watcher. The destructor stops the thread (waiting for a call in progress).
class FileChangeWatcher {
 public:
  // `interval` > 0.
  FileChangeWatcher(std::string path, absl::Duration interval,
                    absl::AnyInvocable<void()> on_change);
  ~FileChangeWatcher();

  FileChangeWatcher(const FileChangeWatcher&) = delete;
  FileChangeWatcher& operator=(const FileChangeWatcher&) = delete;

 private:
  // A fingerprint of the file's contents now; nullopt if it cannot be read.
  std::optional<size_t> Fingerprint() const;
  void Loop();

  const std::string path_;
  const absl::Duration interval_;
  absl::AnyInvocable<void()> on_change_;
  std::optional<size_t> last_;  // only the watcher's thread uses it after construction
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace tokenstatus
