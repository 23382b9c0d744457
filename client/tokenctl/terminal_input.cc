#include "client/tokenctl/terminal_input.h"

#include <termios.h>
#include <unistd.h>

#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace tokenstatus::tokenctl {
namespace {

// One line of stdin without surrounding blanks; nullopt at EOF with nothing read.
std::optional<std::string> ReadLine() {
  std::string line;
  if (!std::getline(std::cin, line) && line.empty()) return std::nullopt;
  return std::string(absl::StripAsciiWhitespace(line));
}

// Turns off the terminal's echo on stdin for its lifetime (a no-op if stdin is no terminal).
class EchoOff {
 public:
  EchoOff() : active_(::tcgetattr(STDIN_FILENO, &saved_) == 0) {
    if (!active_) return;
    termios quiet = saved_;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  ~EchoOff() {
    if (!active_) return;
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_);
    std::cerr << std::endl;  // the Enter key was not echoed
  }
  EchoOff(const EchoOff&) = delete;
  EchoOff& operator=(const EchoOff&) = delete;

 private:
  termios saved_{};
  const bool active_;
};

}  // namespace

bool Confirm(absl::string_view question) {
  std::cerr << question << " [y/N] " << std::flush;
  std::optional<std::string> answer = ReadLine();
  if (!::isatty(STDIN_FILENO)) std::cerr << std::endl;  // no echoed Enter ends the prompt line
  return answer.has_value() &&
         (absl::EqualsIgnoreCase(*answer, "y") || absl::EqualsIgnoreCase(*answer, "yes"));
}

std::optional<std::string> ReadSecret() {
  if (::isatty(STDIN_FILENO)) std::cerr << "Secret: " << std::flush;
  EchoOff echo_off;
  std::optional<std::string> secret = ReadLine();
  if (!secret.has_value() || secret->empty()) return std::nullopt;
  return secret;
}

}  // namespace tokenstatus::tokenctl
