// tokenctl as an operator runs it: the binary as a subprocess, against a real tokenstatus-server
// on a real Redis; its output, JSON, confirmation, exit codes, and the secret shown only once.

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/integration/integration_test_util.h"
#include "tests/testing/subprocess.h"

namespace tokenstatus::integration {
namespace {

using apitoken::v1::TokenEvent;
using testing::CommandResult;

constexpr absl::Duration kCommandTimeout = absl::Seconds(30);

// Makes `text` the test process's stdin (a pipe holding it, then EOF) for the object's
// lifetime; children spawned meanwhile inherit it. `text` must fit a pipe (64 KiB).
class StdinFrom {
 public:
  explicit StdinFrom(const std::string& text) : saved_(::dup(STDIN_FILENO)) {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    EXPECT_EQ(::write(fds[1], text.data(), text.size()), static_cast<ssize_t>(text.size()));
    ::close(fds[1]);
    ::dup2(fds[0], STDIN_FILENO);  // dup2 clears close-on-exec on the copy
    ::close(fds[0]);
  }
  ~StdinFrom() {
    ::dup2(saved_, STDIN_FILENO);
    ::close(saved_);
  }
  StdinFrom(const StdinFrom&) = delete;
  StdinFrom& operator=(const StdinFrom&) = delete;

 private:
  const int saved_;
};

// A loopback port that nothing listens on (bound, then closed again).
int ClosedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// The lines of `text` without the empty last one.
std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

// Parses `json` (protobuf JSON) into a message of type M; fails the test if it does not parse.
template <typename M>
M ParseJson(const std::string& json) {
  M message;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &message).ok()) << json;
  return message;
}

// "exit code 1; stdout: ...; stderr: ...", for failure messages.
std::string Describe(const CommandResult& result) {
  return absl::StrCat("exit code ", result.exit_code, "; stdout: ", result.out,
                      "; stderr: ", result.err);
}

// Reads a child's stdout pipe line by line, with a timeout per line.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}
  ~LineReader() { ::close(fd_); }
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // The next line, or nullopt at EOF or after `timeout`.
  std::optional<std::string> Next(absl::Duration timeout = absl::Seconds(30)) {
    const absl::Time deadline = absl::Now() + timeout;
    size_t newline;
    while ((newline = buffer_.find('\n')) == std::string::npos) {
      pollfd pfd = {.fd = fd_, .events = POLLIN, .revents = 0};
      const int left = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
      if (left <= 0 || ::poll(&pfd, 1, left) <= 0) return std::nullopt;
      char chunk[4096];
      const ssize_t n = ::read(fd_, chunk, sizeof(chunk));
      if (n <= 0) return std::nullopt;
      buffer_.append(chunk, static_cast<size_t>(n));
    }
    std::string line = buffer_.substr(0, newline);
    buffer_.erase(0, newline + 1);
    return line;
  }

  // The next line containing `needle`; nullopt if none comes.
  std::optional<std::string> NextContaining(absl::string_view needle) {
    while (std::optional<std::string> line = Next()) {
      if (absl::StrContains(*line, needle)) return line;
    }
    return std::nullopt;
  }

 private:
  const int fd_;
  std::string buffer_;
};

class TokenctlTest : public ServerTest {
 protected:
  // Runs tokenctl against the suite's server with `args` and `input` on its stdin.
  static CommandResult Run(const std::vector<std::string>& args, const std::string& input = "") {
    return RunAt(server().address(), args, input);
  }

  // Runs tokenctl with --server `address` (none if empty).
  static CommandResult RunAt(const std::string& address, const std::vector<std::string>& args,
                             const std::string& input = "") {
    std::vector<std::string> argv = {TOKENSTATUS_TOKENCTL_BINARY};
    if (!address.empty()) argv.insert(argv.end(), {"--server", address});
    argv.insert(argv.end(), args.begin(), args.end());
    StdinFrom stdin_from(input);
    absl::StatusOr<CommandResult> result = testing::RunCommand(argv, kCommandTimeout);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : CommandResult{};
  }

  // A new ACTIVE token (imported, so the test knows its secret) of a new account.
  struct Known {
    Token token;
    std::string secret;
  };
  static Known NewKnownToken(std::string account_id = NewAccountId()) {
    const std::string id = NewTokenId();
    Known known{.token = {}, .secret = NewSecret(id)};
    Rpc<CreateTokenResponse> created = api().Create(ImportRequest(id, known.secret, account_id));
    EXPECT_TRUE(created.ok()) << integration::Describe(created.status);
    known.token = created.response.token();
    return known;
  }

  static Token Current(const std::string& token_id) {
    Rpc<GetTokenResponse> got = api().Get(token_id);
    EXPECT_TRUE(got.ok()) << integration::Describe(got.status);
    return got.response.token();
  }
};

TEST_F(TokenctlTest, CreatePrintsTheIdAndTheSecretOnce) {
  const std::string account = NewAccountId();
  CommandResult result =
      Run({"create", "--account", account, "--name", "ci deploy", "--description", "for CI"});
  ASSERT_EQ(result.exit_code, 0) << Describe(result);
  std::smatch id_match, secret_match;
  ASSERT_TRUE(
      std::regex_search(result.out, id_match, std::regex("Token (TKN-[0-9]{4}-[0-9]{4}) created")))
      << result.out;
  ASSERT_TRUE(std::regex_search(result.out, secret_match, std::regex("Secret: (idt:\\S+)")));
  EXPECT_TRUE(absl::StrContains(result.out, "only time the secret is shown"));
  const std::string id = id_match[1];
  const Token token = Current(id);
  EXPECT_EQ(token.account_id(), account);
  EXPECT_EQ(token.name(), "ci deploy");
  EXPECT_EQ(token.description(), "for CI");
  EXPECT_EQ(token.state(), Token::STATE_ACTIVE);
  Rpc<VerifyTokenResponse> verified = api().Verify(secret_match[1]);
  ASSERT_TRUE(verified.ok());
  EXPECT_EQ(verified.response.result(), VerifyTokenResponse::RESULT_VALID);
  EXPECT_EQ(verified.response.token_id(), id);
}

TEST_F(TokenctlTest, CreateJsonIsTheCreateTokenResponse) {
  const std::string account = NewAccountId();
  CommandResult result = Run({"--json", "create", "--account", account, "--name", "n1"});
  ASSERT_EQ(result.exit_code, 0) << Describe(result);
  ASSERT_EQ(Lines(result.out).size(), 1u) << result.out;
  const auto created = ParseJson<CreateTokenResponse>(result.out);
  EXPECT_EQ(created.token().account_id(), account);
  EXPECT_EQ(created.token().name(), "n1");
  EXPECT_TRUE(absl::StartsWith(created.secret(), "idt:" + created.token().id() + ":"));
  EXPECT_EQ(Current(created.token().id()).revision(), created.token().revision());
}

TEST_F(TokenctlTest, TheSecretAppearsInNoOtherOutput) {
  CommandResult created = Run({"--json", "create", "--account", NewAccountId(), "--name", "s"});
  ASSERT_EQ(created.exit_code, 0) << Describe(created);
  const auto response = ParseJson<CreateTokenResponse>(created.out);
  const std::string id = response.token().id();
  const std::string secret = response.secret();
  const std::string opaque = secret.substr(secret.rfind(':') + 1);
  const std::string account = response.token().account_id();
  const std::vector<std::pair<std::vector<std::string>, std::string>> runs = {
      {{"get", id}, ""},
      {{"--json", "get", id}, ""},
      {{"list", "--account", account}, ""},
      {{"--json", "list", "--account", account}, ""},
      {{"verify"}, secret + "\n"},
      {{"--json", "verify"}, secret + "\n"},
      {{"disable", id}, "y\n"},
      {{"--json", "enable", id}, ""},
      {{"delete", id, "--yes"}, ""},
      {{"--json", "verify"}, secret + "\n"},
  };
  for (const auto& [args, input] : runs) {
    CommandResult result = Run(args, input);
    EXPECT_EQ(result.exit_code, 0) << args[0] << " " << Describe(result);
    EXPECT_FALSE(absl::StrContains(result.out + result.err, opaque)) << Describe(result);
  }
}

TEST_F(TokenctlTest, GetPrintsTheTokenAsTableAndJson) {
  const Known known = NewKnownToken();
  const Token& token = known.token;
  CommandResult table = Run({"get", token.id()});
  ASSERT_EQ(table.exit_code, 0) << Describe(table);
  EXPECT_TRUE(absl::StrContains(table.out, "ID:           " + token.id())) << table.out;
  EXPECT_TRUE(absl::StrContains(table.out, "Account:      " + token.account_id()));
  EXPECT_TRUE(absl::StrContains(table.out, "State:        ACTIVE"));
  EXPECT_TRUE(absl::StrContains(table.out, absl::StrCat("Revision:     ", token.revision())));

  CommandResult json = Run({"get", token.id(), "--json"});  // --json after the command too
  ASSERT_EQ(json.exit_code, 0) << Describe(json);
  const auto got = ParseJson<GetTokenResponse>(json.out);
  EXPECT_EQ(got.token().id(), token.id());
  EXPECT_EQ(got.token().account_id(), token.account_id());
  EXPECT_EQ(got.token().state(), Token::STATE_ACTIVE);
  EXPECT_EQ(got.token().revision(), token.revision());
  EXPECT_GE(got.revision(), token.revision());
}

TEST_F(TokenctlTest, GetOfAnUnknownTokenIsRefused) {
  CommandResult result = Run({"get", NewTokenId()});
  EXPECT_EQ(result.exit_code, 1) << Describe(result);
  EXPECT_TRUE(absl::StrContains(result.err, "TOKEN_NOT_FOUND")) << result.err;
}

TEST_F(TokenctlTest, ListFollowsPageTokensToTheEnd) {
  const std::string account = NewAccountId();
  std::set<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.insert(NewKnownToken(account).token.id());

  CommandResult json = Run({"--json", "list", "--account", account, "--page-size", "2"});
  ASSERT_EQ(json.exit_code, 0) << Describe(json);
  const std::vector<std::string> pages = Lines(json.out);
  ASSERT_EQ(pages.size(), 3u) << json.out;  // 2 + 2 + 1, one JSON document per page
  std::set<std::string> listed;
  for (const std::string& page : pages) {
    const auto response = ParseJson<ListTokensResponse>(page);
    for (const Token& token : response.tokens()) {
      EXPECT_EQ(token.account_id(), account);
      listed.insert(token.id());
    }
  }
  EXPECT_EQ(listed, ids);
  EXPECT_TRUE(ParseJson<ListTokensResponse>(pages.back()).next_page_token().empty());

  CommandResult table = Run({"list", "--account", account, "--page-size", "2"});
  ASSERT_EQ(table.exit_code, 0) << Describe(table);
  const std::vector<std::string> rows = Lines(table.out);
  ASSERT_EQ(rows.size(), 6u) << table.out;  // header + 5
  EXPECT_TRUE(absl::StartsWith(rows[0], "ID")) << rows[0];
  for (const std::string& id : ids) EXPECT_TRUE(absl::StrContains(table.out, id));
}

TEST_F(TokenctlTest, ListFiltersByState) {
  const std::string account = NewAccountId();
  const Known active = NewKnownToken(account);
  const Known disabled = NewKnownToken(account);
  ASSERT_TRUE(api().Disable(disabled.token.id()).ok());

  CommandResult result = Run({"--json", "list", "--account", account, "--state", "disabled"});
  ASSERT_EQ(result.exit_code, 0) << Describe(result);
  const auto page = ParseJson<ListTokensResponse>(result.out);
  ASSERT_EQ(page.tokens_size(), 1) << result.out;
  EXPECT_EQ(page.tokens(0).id(), disabled.token.id());
  EXPECT_EQ(page.tokens(0).state(), Token::STATE_DISABLED);

  CommandResult table = Run({"list", "--account", account, "--state", "ACTIVE"});
  ASSERT_EQ(table.exit_code, 0) << Describe(table);
  EXPECT_TRUE(absl::StrContains(table.out, active.token.id()));
  EXPECT_FALSE(absl::StrContains(table.out, disabled.token.id()));
}

TEST_F(TokenctlTest, DisableWithoutYesRefusesUnlessTheAnswerIsYes) {
  const Known known = NewKnownToken();
  const std::string id = known.token.id();
  for (const std::string input : {"n\n", "", "\n", "yess\n", "no\n"}) {
    CommandResult refused = Run({"disable", id}, input);
    EXPECT_EQ(refused.exit_code, 2) << "input '" << input << "': " << Describe(refused);
    EXPECT_TRUE(absl::StrContains(refused.err, "Disable token " + id + "? [y/N]"));
    EXPECT_TRUE(absl::StrContains(refused.err, "pass --yes to skip the confirmation"));
    EXPECT_EQ(Current(id).state(), Token::STATE_ACTIVE);
  }

  CommandResult done = Run({"disable", id, "--reason", "leaked"}, "y\n");
  ASSERT_EQ(done.exit_code, 0) << Describe(done);
  const Token token = Current(id);
  EXPECT_EQ(token.state(), Token::STATE_DISABLED);
  EXPECT_EQ(token.state_reason(), "leaked");
  EXPECT_EQ(done.out, absl::StrCat("Token ", id, " disabled (revision ", token.revision(), ")\n"));
}

TEST_F(TokenctlTest, DisableTwiceIsRefusedByTheServer) {
  const std::string id = NewKnownToken().token.id();
  CommandResult first = Run({"disable", id, "--yes"});
  ASSERT_EQ(first.exit_code, 0) << Describe(first);
  CommandResult second = Run({"disable", id, "--yes"});
  EXPECT_EQ(second.exit_code, 1) << Describe(second);
  EXPECT_TRUE(absl::StrContains(second.err, "TOKEN_ALREADY_DISABLED")) << second.err;
  EXPECT_TRUE(absl::StrContains(second.err, "FAILED_PRECONDITION")) << second.err;
}

TEST_F(TokenctlTest, HistoryShowsTheChangesNewestFirst) {
  const std::string id = NewKnownToken().token.id();
  ASSERT_EQ(Run({"disable", id, "--yes", "--reason", "leaked in a log"}).exit_code, 0);
  ASSERT_EQ(Run({"enable", id, "--reason", "rotated"}).exit_code, 0);
  CommandResult table = Run({"history", id});
  ASSERT_EQ(table.exit_code, 0) << Describe(table);
  const std::vector<std::string> lines = absl::StrSplit(table.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3) << table.out;
  EXPECT_TRUE(absl::StrContains(lines[0], "event=ENABLED")) << lines[0];
  EXPECT_TRUE(absl::StrContains(lines[0], "reason=\"rotated\"")) << lines[0];
  EXPECT_TRUE(absl::StrContains(lines[1], "event=DISABLED")) << lines[1];
  EXPECT_TRUE(absl::StrContains(lines[1], "reason=\"leaked in a log\"")) << lines[1];
  EXPECT_TRUE(absl::StrContains(lines[2], "event=CREATED")) << lines[2];

  // --json: one ListTokenEventsResponse per page.
  CommandResult json = Run({"--json", "history", id, "--page-size", "2"});
  ASSERT_EQ(json.exit_code, 0) << Describe(json);
  const std::vector<std::string> pages = absl::StrSplit(json.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(pages.size(), 2) << json.out;
  apitoken::v1::ListTokenEventsResponse first;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(pages[0], &first).ok()) << pages[0];
  ASSERT_EQ(first.events_size(), 2);
  EXPECT_EQ(first.events(0).type(), apitoken::v1::TokenEvent::TYPE_ENABLED);
  EXPECT_GT(first.events(0).token().revision(), first.events(1).token().revision());

  EXPECT_EQ(Run({"history", NewTokenId()}).exit_code, 1);
}

TEST_F(TokenctlTest, EnableNeedsNoConfirmation) {
  const std::string id = NewKnownToken().token.id();
  ASSERT_TRUE(api().Disable(id).ok());
  CommandResult result = Run({"enable", id});  // stdin at EOF: nothing is asked
  ASSERT_EQ(result.exit_code, 0) << Describe(result);
  const Token token = Current(id);
  EXPECT_EQ(token.state(), Token::STATE_ACTIVE);
  EXPECT_EQ(result.out, absl::StrCat("Token ", id, " enabled (revision ", token.revision(), ")\n"));

  ASSERT_TRUE(api().Disable(id).ok());
  CommandResult json = Run({"--json", "enable", id, "--yes"});
  ASSERT_EQ(json.exit_code, 0) << Describe(json);
  const auto enabled = ParseJson<EnableTokenResponse>(json.out);
  EXPECT_EQ(enabled.token().id(), id);
  EXPECT_EQ(enabled.token().state(), Token::STATE_ACTIVE);
  EXPECT_EQ(enabled.token().revision(), Current(id).revision());
}

TEST_F(TokenctlTest, DeleteAsksThenDeletes) {
  const std::string id = NewKnownToken().token.id();
  CommandResult refused = Run({"delete", id}, "N\n");
  EXPECT_EQ(refused.exit_code, 2) << Describe(refused);
  EXPECT_TRUE(absl::StrContains(refused.err, "Delete token " + id + "? [y/N]"));
  EXPECT_EQ(Current(id).state(), Token::STATE_ACTIVE);

  CommandResult done = Run({"--json", "delete", id}, "yes\n");
  ASSERT_EQ(done.exit_code, 0) << Describe(done);
  const auto deleted = ParseJson<DeleteTokenResponse>(done.out);
  EXPECT_EQ(deleted.token().state(), Token::STATE_DELETED);
  EXPECT_EQ(Current(id).state(), Token::STATE_DELETED);

  CommandResult again = Run({"delete", id, "--yes"});
  EXPECT_EQ(again.exit_code, 1) << Describe(again);
  EXPECT_TRUE(absl::StrContains(again.err, "TOKEN_DELETED")) << again.err;
}

TEST_F(TokenctlTest, VerifyReadsTheSecretFromStdin) {
  const Known known = NewKnownToken();
  const std::string id = known.token.id();
  CommandResult valid = Run({"verify"}, known.secret + "\n");
  ASSERT_EQ(valid.exit_code, 0) << Describe(valid);
  EXPECT_TRUE(absl::StartsWith(valid.out, "VALID token=" + id)) << valid.out;

  ASSERT_TRUE(api().Disable(id).ok());
  CommandResult disabled = Run({"verify"}, known.secret);  // no newline at the end
  ASSERT_EQ(disabled.exit_code, 0) << Describe(disabled);
  EXPECT_TRUE(absl::StartsWith(disabled.out, "DISABLED token=" + id)) << disabled.out;

  CommandResult json = Run({"--json", "verify"}, known.secret + "\n");
  ASSERT_EQ(json.exit_code, 0) << Describe(json);
  const auto answer = ParseJson<VerifyTokenResponse>(json.out);
  EXPECT_EQ(answer.result(), VerifyTokenResponse::RESULT_DISABLED);
  EXPECT_EQ(answer.token_id(), id);
  EXPECT_EQ(answer.account_id(), known.token.account_id());

  CommandResult malformed = Run({"verify"}, "not-a-secret\n");
  ASSERT_EQ(malformed.exit_code, 0) << Describe(malformed);
  EXPECT_TRUE(absl::StartsWith(malformed.out, "MALFORMED")) << malformed.out;

  CommandResult empty = Run({"verify"}, "");
  EXPECT_EQ(empty.exit_code, 2) << Describe(empty);
}

TEST_F(TokenctlTest, UsageErrorsExitWith2) {
  const std::vector<std::vector<std::string>> usages = {
      {},
      {"frobnicate"},
      {"get"},
      {"get", "TKN-12"},
      {"list", "--state", "sleeping"},
      {"list", "--page-size", "0"},
      {"create", "--account", NewAccountId()},
      {"create", "--account", "nobody", "--name", "x"},
      {"watch", "--since", "-1"},
  };
  for (const std::vector<std::string>& args : usages) {
    CommandResult result = Run(args);
    EXPECT_EQ(result.exit_code, 2) << absl::StrJoin(args, " ") << ": " << Describe(result);
  }
}

TEST_F(TokenctlTest, VerifyRefusesASecretArgumentWithoutEchoingIt) {
  const std::string secret = NewSecret(NewTokenId());
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"verify", secret}, {"verify", "--secret", secret}}) {
    CommandResult result = Run(args);
    EXPECT_EQ(result.exit_code, 2) << Describe(result);
    EXPECT_TRUE(absl::StrContains(result.err, "stdin")) << result.err;
    EXPECT_FALSE(absl::StrContains(result.out + result.err, secret)) << Describe(result);
  }
}

TEST_F(TokenctlTest, UnreachableServerExitsWith3) {
  const std::string closed = absl::StrCat("127.0.0.1:", ClosedPort());
  CommandResult get = RunAt(closed, {"get", NewTokenId()});
  EXPECT_EQ(get.exit_code, 3) << Describe(get);
  EXPECT_TRUE(absl::StrContains(get.err, "cannot reach the server at " + closed)) << get.err;
  CommandResult disable = RunAt(closed, {"disable", NewTokenId(), "--yes"});
  EXPECT_EQ(disable.exit_code, 3) << Describe(disable);

  // Without --server, TOKENSTATUS_SERVER names the server (the child inherits it).
  ASSERT_EQ(::setenv("TOKENSTATUS_SERVER", closed.c_str(), 1), 0);
  CommandResult from_env = RunAt("", {"list"});
  ::unsetenv("TOKENSTATUS_SERVER");
  EXPECT_EQ(from_env.exit_code, 3) << Describe(from_env);
  EXPECT_TRUE(absl::StrContains(from_env.err, closed)) << from_env.err;
}

TEST_F(TokenctlTest, HealthPrintsTheServingStatusAndExits0OnlyWhenServing) {
  ASSERT_TRUE(server().WaitForLogLine("event=mirror_loaded", absl::Seconds(20)));
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"health"}, {"health", "--service", "apitoken.v1.TokenService"}}) {
    CommandResult serving = Run(args);
    EXPECT_EQ(serving.exit_code, 0) << Describe(serving);
    EXPECT_EQ(serving.out, "SERVING\n") << Describe(serving);
  }
  // A service the server does not know: refused by the health service (NOT_FOUND), exit 1.
  CommandResult unknown = Run({"health", "--service", "no.such.Service"});
  EXPECT_EQ(unknown.exit_code, 1) << Describe(unknown);
  EXPECT_TRUE(absl::StrContains(unknown.err, "NOT_FOUND")) << unknown.err;
  CommandResult unreachable = RunAt(absl::StrCat("127.0.0.1:", ClosedPort()), {"health"});
  EXPECT_EQ(unreachable.exit_code, 3) << Describe(unreachable);
}

// Starts `tokenctl [--json] watch --since <since>` with its stdout on a pipe.
struct WatchProcess {
  std::unique_ptr<testing::Subprocess> process;
  std::unique_ptr<LineReader> lines;
};
WatchProcess StartWatch(const std::string& address, int64_t since, bool json) {
  int fds[2];
  EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  testing::SpawnOptions options;
  options.argv = {TOKENSTATUS_TOKENCTL_BINARY, "--server", address};
  if (json) options.argv.push_back("--json");
  options.argv.insert(options.argv.end(), {"watch", "--since", absl::StrCat(since)});
  options.stdout_fd = fds[1];
  absl::StatusOr<std::unique_ptr<testing::Subprocess>> process =
      testing::Subprocess::Spawn(options);
  ::close(fds[1]);
  EXPECT_TRUE(process.ok()) << process.status();
  return {process.ok() ? *std::move(process) : nullptr, std::make_unique<LineReader>(fds[0])};
}

// Succeeds if `process` exits with code 0 after `signo`.
::testing::AssertionResult StopsCleanlyOn(testing::Subprocess& process, int signo) {
  process.Signal(signo);
  absl::StatusOr<int> status = process.Wait(absl::Seconds(10));
  if (!status.ok()) return ::testing::AssertionFailure() << status.status();
  if (WIFEXITED(*status) && WEXITSTATUS(*status) == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << testing::DescribeWaitStatus(*status);
}

TEST_F(TokenctlTest, WatchSincePrintsEarlierAndLaterChangesUntilSigterm) {
  const std::string id = NewKnownToken().token.id();
  Rpc<DisableTokenResponse> disabled = api().Disable(id);
  ASSERT_TRUE(disabled.ok());
  const int64_t since = disabled.response.token().revision() - 1;
  WatchProcess watch = StartWatch(server().address(), since, /*json=*/false);
  ASSERT_NE(watch.process, nullptr);

  // The change before `since` + 1 is replayed; seeing it proves the stream is open.
  std::optional<std::string> replayed = watch.lines->NextContaining("token=" + id);
  ASSERT_TRUE(replayed.has_value());
  EXPECT_TRUE(absl::StartsWith(*replayed, absl::StrCat("revision=", since + 1, " event=DISABLED")))
      << *replayed;

  Rpc<EnableTokenResponse> enabled = api().Enable(id);  // made while the watch runs
  ASSERT_TRUE(enabled.ok());
  std::optional<std::string> live = watch.lines->NextContaining("token=" + id);
  ASSERT_TRUE(live.has_value());
  EXPECT_TRUE(absl::StrContains(
      *live, absl::StrCat("revision=", enabled.response.token().revision(), " event=ENABLED")))
      << *live;
  EXPECT_TRUE(absl::StrContains(*live, "state=ACTIVE")) << *live;
  EXPECT_TRUE(StopsCleanlyOn(*watch.process, SIGTERM));
}

TEST_F(TokenctlTest, WatchJsonPrintsOneTokenEventPerLineUntilSigint) {
  const std::string id = NewKnownToken().token.id();
  WatchProcess watch = StartWatch(server().address(), Current(id).revision(), /*json=*/true);
  ASSERT_NE(watch.process, nullptr);
  Rpc<DisableTokenResponse> disabled = api().Disable(id);
  ASSERT_TRUE(disabled.ok());
  std::optional<std::string> line = watch.lines->NextContaining(id);
  ASSERT_TRUE(line.has_value());
  const auto event = ParseJson<TokenEvent>(*line);
  EXPECT_EQ(event.type(), TokenEvent::TYPE_DISABLED);
  EXPECT_EQ(event.token().id(), id);
  EXPECT_EQ(event.token().revision(), disabled.response.token().revision());
  EXPECT_TRUE(event.token().secret_sha256().empty());
  EXPECT_TRUE(StopsCleanlyOn(*watch.process, SIGINT));
}

TEST_F(TokenctlTest, WatchOfAnUnreachableServerExitsWith3) {
  CommandResult result = RunAt(absl::StrCat("127.0.0.1:", ClosedPort()), {"watch"});
  EXPECT_EQ(result.exit_code, 3) << Describe(result);
}

}  // namespace
}  // namespace tokenstatus::integration
