#include "core/file_change_watcher.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace tokenstatus {
namespace {

constexpr absl::Duration kInterval = absl::Milliseconds(20);
constexpr absl::Duration kTimeout = absl::Seconds(10);

void Write(const std::string& path, const std::string& contents) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << contents;
}

// A temporary directory with one file in it.
class FileChangeWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/file-change-watcher-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/watched";
    Write(path_, "first");
  }
  void TearDown() override {
    std::remove(path_.c_str());
    std::remove((path_ + ".next").c_str());
    ::rmdir(dir_.c_str());
  }

  // Records the file's contents at each of the watcher's calls; AwaitCalls waits for a number
  // of them.
  void OnChange() {
    std::ifstream in(path_, std::ios::binary);
    std::string contents((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    absl::MutexLock lock(&mu_);
    ++calls_;
    seen_.push_back(std::move(contents));
  }
  bool AwaitCalls(int count) {
    absl::MutexLock lock(&mu_);
    auto reached = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return calls_ >= count; };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), kTimeout);
  }

  std::string dir_;
  std::string path_;
  absl::Mutex mu_;
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> seen_ ABSL_GUARDED_BY(mu_);
};

// One call per new contents, none for the contents at construction, none for the same contents
// written again.
TEST_F(FileChangeWatcherTest, CallsOncePerNewContentsHoweverTheFileWasReplaced) {
  FileChangeWatcher watcher(path_, kInterval, [this] { OnChange(); });
  Write(path_, "second");  // in place
  ASSERT_TRUE(AwaitCalls(1));
  Write(path_ + ".next", "third");  // renamed over
  ASSERT_EQ(std::rename((path_ + ".next").c_str(), path_.c_str()), 0);
  ASSERT_TRUE(AwaitCalls(2));
  // The same contents written again are no change: the next call is for "fourth".
  Write(path_, "third");
  Write(path_, "fourth");
  ASSERT_TRUE(AwaitCalls(3));
  absl::MutexLock lock(&mu_);
  EXPECT_EQ(seen_, (std::vector<std::string>{"second", "third", "fourth"}));
}

// A file that cannot be read has no contents: once it can be read again, that is a change.
TEST_F(FileChangeWatcherTest, AFileThatAppearsIsAChange) {
  ASSERT_EQ(std::remove(path_.c_str()), 0);
  FileChangeWatcher watcher(path_, kInterval, [this] { OnChange(); });
  Write(path_, "first");
  ASSERT_TRUE(AwaitCalls(1));
  absl::MutexLock lock(&mu_);
  EXPECT_EQ(seen_, (std::vector<std::string>{"first"}));
}

}  // namespace
}  // namespace tokenstatus
