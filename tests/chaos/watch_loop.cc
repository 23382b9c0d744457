#include "tests/chaos/watch_loop.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace tokenstatus::chaos {
namespace {

using apitoken::v1::TokenService;
using apitoken::v1::WatchTokensRequest;

// "-" for an empty field of the text form.
std::string Field(const std::string& value) { return value.empty() ? "-" : value; }
std::string Unfield(absl::string_view value) {
  return value == "-" ? std::string() : std::string(value);
}

}  // namespace

std::shared_ptr<grpc::Channel> NewChaosChannel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

std::shared_ptr<grpc::Channel> NewNarrowChaosChannel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 16 * 1024);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

WatchLoop::WatchLoop(std::shared_ptr<grpc::Channel> channel, WatchLoopOptions options, Sink sink)
    : stub_(TokenService::NewStub(std::move(channel))),
      options_(std::move(options)),
      sink_(std::move(sink)) {
  thread_ = std::thread([this] { Run(); });
  watchdog_ = std::thread([this] { Watchdog(); });
}

WatchLoop::~WatchLoop() { Stop(); }

void WatchLoop::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (context_ != nullptr) context_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
  if (watchdog_.joinable()) watchdog_.join();
}

bool WatchLoop::AwaitRevision(int64_t revision, const std::string& epoch,
                              absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto reached = [&]() {
    mu_.AssertReaderHeld();
    return synced_ && revision_ >= revision && (epoch.empty() || epoch_ == epoch);
  };
  return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
}

int64_t WatchLoop::revision() const {
  absl::MutexLock lock(&mu_);
  return revision_;
}

std::string WatchLoop::epoch() const {
  absl::MutexLock lock(&mu_);
  return epoch_;
}

WatchTokensRequest WatchLoop::NextRequest() const {
  WatchTokensRequest request;
  request.set_send_initial_state(true);
  request.set_account_id(options_.account);
  const int64_t millis = absl::ToInt64Milliseconds(options_.progress_interval);
  request.mutable_progress_interval()->set_seconds(millis / 1000);
  request.mutable_progress_interval()->set_nanos(static_cast<int32_t>(millis % 1000) * 1000000);
  absl::MutexLock lock(&mu_);
  if (synced_) {
    request.set_since_revision(revision_);
    request.set_epoch(epoch_);
    request.set_since_chain(chain_);
  }
  return request;
}

void WatchLoop::Run() {
  while (true) {
    const WatchTokensRequest request = NextRequest();
    grpc::ClientContext context;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      context_ = &context;
      last_heard_ns_ = NowNs();
    }
    sink_(WatchRecord::Open(NowNs(), request.since_revision(), request.epoch(),
                            request.since_chain()));
    std::unique_ptr<grpc::ClientReader<WatchTokensResponse>> reader =
        stub_->WatchTokens(&context, request);
    WatchTokensResponse message;
    while (reader->Read(&message)) {
      sink_(WatchRecord::Message(NowNs(), message));
      absl::MutexLock lock(&mu_);
      last_heard_ns_ = NowNs();
      switch (message.kind()) {
        case WatchTokensResponse::KIND_RESET:
          synced_ = false;  // until the snapshot that follows is complete
          break;
        case WatchTokensResponse::KIND_SYNCED:
        case WatchTokensResponse::KIND_CHANGES:
        case WatchTokensResponse::KIND_PROGRESS:
          synced_ = true;
          revision_ = message.revision();
          epoch_ = message.epoch();
          chain_ = message.chain();
          break;
        default:
          break;
      }
    }
    const grpc::Status status = reader->Finish();
    sink_(WatchRecord::End(NowNs(), status.error_code(), status.error_message()));
    absl::MutexLock lock(&mu_);
    context_ = nullptr;
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.reconnect_delay)) return;
  }
}

void WatchLoop::Watchdog() {
  constexpr absl::Duration kTick = absl::Milliseconds(100);
  absl::MutexLock lock(&mu_);
  while (!mu_.AwaitWithTimeout(absl::Condition(&stopping_), kTick)) {
    if (context_ != nullptr &&
        NowNs() - last_heard_ns_ > absl::ToInt64Nanoseconds(options_.stale_after)) {
      context_->TryCancel();
      last_heard_ns_ = NowNs();
    }
  }
}

std::string FormatRecord(const WatchRecord& record) {
  switch (record.type) {
    case WatchRecord::Type::kOpen:
      return absl::StrCat("O ", record.t_ns, " ", record.since_revision, " ",
                          Field(record.since_epoch), " ", Field(record.since_chain), "\n");
    case WatchRecord::Type::kEnd:
      return absl::StrCat("X ", record.t_ns, " ", record.code, " ",
                          absl::StrReplaceAll(record.detail, {{"\n", " "}}), "\n");
    case WatchRecord::Type::kMessage:
      break;
  }
  std::string out =
      absl::StrCat("M ", record.t_ns, " ", static_cast<int>(record.kind), " ", record.revision, " ",
                   Field(record.epoch), " ", Field(record.chain), " ", record.tokens.size(), " ",
                   record.events.size(), "\n");
  for (const TokenState& token : record.tokens) {
    absl::StrAppend(&out, "T ", token.token_id, " ", token.account_id, " ",
                    static_cast<int>(token.state), " ", token.revision, "\n");
  }
  for (const Change& change : record.events) {
    absl::StrAppend(&out, "C ", change.revision, " ", change.token_id, " ", change.account_id, " ",
                    static_cast<int>(change.state), " ", static_cast<int>(change.type), " ",
                    Field(change.tag), " ", Field(change.chain), "\n");
  }
  return out;
}

absl::StatusOr<std::vector<WatchRecord>> ParseRecords(absl::string_view text) {
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  // Without a final newline the last line is incomplete.
  lines.pop_back();
  std::vector<WatchRecord> records;
  auto bad = [](absl::string_view line) {
    return absl::DataLossError(absl::StrCat("watcher record does not parse: ", line));
  };
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::vector<absl::string_view> f = absl::StrSplit(lines[i], ' ');
    WatchRecord record;
    if (f[0] == "O" && f.size() == 5) {
      record.type = WatchRecord::Type::kOpen;
      if (!absl::SimpleAtoi(f[1], &record.t_ns) || !absl::SimpleAtoi(f[2], &record.since_revision))
        return bad(lines[i]);
      record.since_epoch = Unfield(f[3]);
      record.since_chain = Unfield(f[4]);
    } else if (f[0] == "X" && f.size() >= 3) {
      record.type = WatchRecord::Type::kEnd;
      if (!absl::SimpleAtoi(f[1], &record.t_ns) || !absl::SimpleAtoi(f[2], &record.code))
        return bad(lines[i]);
      std::vector<absl::string_view> rest(f.begin() + 3, f.end());
      record.detail = absl::StrJoin(rest, " ");
    } else if (f[0] == "M" && f.size() == 8) {
      record.type = WatchRecord::Type::kMessage;
      int kind = 0;
      size_t tokens = 0, events = 0;
      if (!absl::SimpleAtoi(f[1], &record.t_ns) || !absl::SimpleAtoi(f[2], &kind) ||
          !absl::SimpleAtoi(f[3], &record.revision) || !absl::SimpleAtoi(f[6], &tokens) ||
          !absl::SimpleAtoi(f[7], &events)) {
        return bad(lines[i]);
      }
      record.kind = static_cast<WatchTokensResponse::Kind>(kind);
      record.epoch = Unfield(f[4]);
      record.chain = Unfield(f[5]);
      if (i + tokens + events >= lines.size()) break;  // truncated
      for (size_t t = 0; t < tokens; ++t) {
        const std::vector<absl::string_view> g = absl::StrSplit(lines[++i], ' ');
        TokenState token;
        int state = 0;
        if (g.size() != 5 || g[0] != "T" || !absl::SimpleAtoi(g[3], &state) ||
            !absl::SimpleAtoi(g[4], &token.revision)) {
          return bad(lines[i]);
        }
        token.token_id = std::string(g[1]);
        token.account_id = std::string(g[2]);
        token.state = static_cast<Token::State>(state);
        record.tokens.push_back(std::move(token));
      }
      for (size_t e = 0; e < events; ++e) {
        const std::vector<absl::string_view> g = absl::StrSplit(lines[++i], ' ');
        Change change;
        int state = 0, type = 0;
        if (g.size() != 8 || g[0] != "C" || !absl::SimpleAtoi(g[1], &change.revision) ||
            !absl::SimpleAtoi(g[4], &state) || !absl::SimpleAtoi(g[5], &type)) {
          return bad(lines[i]);
        }
        change.token_id = std::string(g[2]);
        change.account_id = std::string(g[3]);
        change.state = static_cast<Token::State>(state);
        change.type = static_cast<TokenEvent::Type>(type);
        change.tag = Unfield(g[6]);
        change.chain = Unfield(g[7]);
        record.events.push_back(std::move(change));
      }
    } else {
      return bad(lines[i]);
    }
    records.push_back(std::move(record));
  }
  return records;
}

}  // namespace tokenstatus::chaos
