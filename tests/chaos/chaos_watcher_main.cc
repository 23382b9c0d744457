// tokenstatus-chaos-watcher: one WatchLoop in a process of its own, so that a chaos scenario can
// SIGSTOP and SIGCONT a watcher. Every record goes to --out as it arrives (FormatRecord, flushed
// per record); SIGTERM or SIGINT stops it (exit 0).
//
//   tokenstatus-chaos-watcher --server=127.0.0.1:PORT --out=FILE [--account=ACC-...]
//                             [--stale_after_ms=2000] [--narrow]
// --narrow: a channel that reads as little ahead as HTTP/2 allows (NewNarrowChaosChannel).

#include <signal.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "tests/chaos/watch_loop.h"

int main(int argc, char** argv) {
  std::string server, out, account;
  int64_t stale_after_ms = 2000;
  bool narrow = false;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (absl::ConsumePrefix(&arg, "--server=")) {
      server = std::string(arg);
    } else if (absl::ConsumePrefix(&arg, "--out=")) {
      out = std::string(arg);
    } else if (absl::ConsumePrefix(&arg, "--account=")) {
      account = std::string(arg);
    } else if (arg == "--narrow") {
      narrow = true;
    } else if (absl::ConsumePrefix(&arg, "--stale_after_ms=") &&
               absl::SimpleAtoi(arg, &stale_after_ms)) {
    } else {
      std::fprintf(stderr, "unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  if (server.empty() || out.empty()) {
    std::fprintf(stderr, "usage: %s --server=HOST:PORT --out=FILE [--account=ACC-...]\n", argv[0]);
    return 2;
  }
  std::FILE* file = std::fopen(out.c_str(), "we");
  if (file == nullptr) {
    std::fprintf(stderr, "cannot open %s: %s\n", out.c_str(), std::strerror(errno));
    return 1;
  }
  // The signals to wait for are blocked before any thread starts, so every thread inherits it.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  {
    tokenstatus::chaos::WatchLoopOptions options;
    options.account = account;
    options.stale_after = absl::Milliseconds(stale_after_ms);
    tokenstatus::chaos::WatchLoop loop(
        narrow ? tokenstatus::chaos::NewNarrowChaosChannel(server)
               : tokenstatus::chaos::NewChaosChannel(server),
        options, [file](const tokenstatus::chaos::WatchRecord& record) {
          const std::string text = tokenstatus::chaos::FormatRecord(record);
          std::fwrite(text.data(), 1, text.size(), file);
          std::fflush(file);
        });
    std::fprintf(stderr, "watching %s\n", server.c_str());
    int signal = 0;
    sigwait(&signals, &signal);
  }
  std::fclose(file);
  return 0;
}
