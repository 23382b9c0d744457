// TokenCache over a fake WatchSource: the test scripts the stream's messages and sees the
// requests the cache sends. No network.

#include "client/token_cache.h"

#include <atomic>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "client/token_cache_metrics.h"
#include "core/metrics/registry.h"
#include "core/status_util.h"
#include "core/token_secret.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"

namespace tokenstatus {
namespace {

using apitoken::v1::Token;
using apitoken::v1::TokenEvent;
using apitoken::v1::VerifyTokenResponse;
using apitoken::v1::WatchTokensRequest;
using apitoken::v1::WatchTokensResponse;
using ::testing::HasSubstr;

constexpr absl::Duration kTimeout = absl::Seconds(10);
constexpr char kAccount[] = "ACC-0000-0001";
constexpr char kEpoch[] = "epoch-a";

// The test's side of the fake streams: what the cache asked for, and a way to send it messages
// and end its stream. Thread-safe.
class FakeServer {
 public:
  // One stream's queue.
  struct Stream {
    absl::Mutex mu;
    std::deque<WatchTokensResponse> queue ABSL_GUARDED_BY(mu);
    bool ended ABSL_GUARDED_BY(mu) = false;  // End(): the queue drains, then Read is false
    bool cancelled ABSL_GUARDED_BY(mu) = false;
    absl::Status status ABSL_GUARDED_BY(mu);
  };

  // Called by the cache's thread (through FakeSource).
  std::shared_ptr<Stream> Open(const WatchTokensRequest& request) {
    auto stream = std::make_shared<Stream>();
    absl::MutexLock lock(&mu_);
    requests_.push_back(request);
    streams_.push_back(stream);
    opened_.push_back(absl::Now());
    return stream;
  }

  // When stream number `index` (0-based) was opened.
  absl::Time OpenedAt(int index) const {
    absl::MutexLock lock(&mu_);
    return opened_.at(index);
  }

  // Waits until the cache has opened `count` streams in all.
  bool WaitForStreams(int count, absl::Duration timeout = kTimeout) {
    absl::MutexLock lock(&mu_);
    auto opened = [this, count]() {
      mu_.AssertReaderHeld();
      return static_cast<int>(streams_.size()) >= count;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&opened), timeout);
  }

  // Queues `message` on the latest stream (waiting for the first one to open).
  void Send(WatchTokensResponse message) {
    std::shared_ptr<Stream> stream = Latest();
    absl::MutexLock lock(&stream->mu);
    stream->queue.push_back(std::move(message));
  }

  // Ends the latest stream with `status` once the cache has read what is queued.
  void End(absl::Status status) {
    std::shared_ptr<Stream> stream = Latest();
    absl::MutexLock lock(&stream->mu);
    stream->ended = true;
    stream->status = std::move(status);
  }

  std::vector<WatchTokensRequest> requests() const {
    absl::MutexLock lock(&mu_);
    return requests_;
  }

  // Whether stream number `index` (0-based) was cancelled by the cache.
  bool Cancelled(int index) const {
    std::shared_ptr<Stream> stream;
    {
      absl::MutexLock lock(&mu_);
      stream = streams_.at(index);
    }
    absl::MutexLock lock(&stream->mu);
    return stream->cancelled;
  }

 private:
  std::shared_ptr<Stream> Latest() {
    EXPECT_TRUE(WaitForStreams(1));
    absl::MutexLock lock(&mu_);
    return streams_.back();
  }

  mutable absl::Mutex mu_;
  std::vector<WatchTokensRequest> requests_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<Stream>> streams_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Time> opened_ ABSL_GUARDED_BY(mu_);
};

class FakeStream : public WatchStream {
 public:
  explicit FakeStream(std::shared_ptr<FakeServer::Stream> stream) : stream_(std::move(stream)) {}

  bool Read(WatchTokensResponse* response) override {
    FakeServer::Stream& s = *stream_;
    absl::MutexLock lock(&s.mu);
    auto readable = [&s]() {
      s.mu.AssertReaderHeld();
      return s.cancelled || s.ended || !s.queue.empty();
    };
    s.mu.Await(absl::Condition(&readable));
    if (s.cancelled || s.queue.empty()) return false;
    *response = std::move(s.queue.front());
    s.queue.pop_front();
    return true;
  }

  void Cancel() override {
    absl::MutexLock lock(&stream_->mu);
    stream_->cancelled = true;
  }

  absl::Status Finish() override {
    absl::MutexLock lock(&stream_->mu);
    if (stream_->cancelled) return absl::CancelledError("cancelled");
    return stream_->status;
  }

 private:
  std::shared_ptr<FakeServer::Stream> stream_;
};

class FakeSource : public WatchSource {
 public:
  explicit FakeSource(std::shared_ptr<FakeServer> server) : server_(std::move(server)) {}
  std::unique_ptr<WatchStream> Open(const WatchTokensRequest& request) override {
    return std::make_unique<FakeStream>(server_->Open(request));
  }

 private:
  std::shared_ptr<FakeServer> server_;
};

std::string Id(int n) { return absl::StrFormat("TKN-0000-%04d", n); }

Token MakeToken(const std::string& id, Token::State state, int64_t revision,
                const std::string& secret_sha256 = "") {
  Token token;
  token.set_id(id);
  token.set_account_id(kAccount);
  token.set_name(absl::StrCat("name of ", id));
  token.set_state(state);
  token.set_revision(revision);
  token.set_secret_sha256(secret_sha256);
  return token;
}

WatchTokensResponse Message(WatchTokensResponse::Kind kind, int64_t revision,
                            const std::string& epoch = kEpoch) {
  WatchTokensResponse message;
  message.set_kind(kind);
  message.set_revision(revision);
  message.set_epoch(epoch);
  return message;
}

// Sends `tokens` as a snapshot at `revision` in chunks of `chunk`, then SYNCED.
void SendSnapshot(FakeServer& server, int64_t revision, const std::vector<Token>& tokens,
                  const std::string& epoch = kEpoch, size_t chunk = 100) {
  for (size_t i = 0; i < tokens.size(); i += chunk) {
    WatchTokensResponse message = Message(WatchTokensResponse::KIND_SNAPSHOT, revision, epoch);
    for (size_t j = i; j < std::min(tokens.size(), i + chunk); ++j) {
      *message.add_tokens() = tokens[j];
    }
    server.Send(std::move(message));
  }
  server.Send(Message(WatchTokensResponse::KIND_SYNCED, revision, epoch));
}

TokenEvent::Type TypeOf(Token::State state) {
  switch (state) {
    case Token::STATE_DISABLED:
      return TokenEvent::TYPE_DISABLED;
    case Token::STATE_DELETED:
      return TokenEvent::TYPE_DELETED;
    default:
      return TokenEvent::TYPE_ENABLED;
  }
}

// One CHANGES message with the events for `tokens` (in the given order); its revision is the
// highest token revision.
WatchTokensResponse Changes(const std::vector<Token>& tokens) {
  int64_t revision = 0;
  WatchTokensResponse message = Message(WatchTokensResponse::KIND_CHANGES, 0);
  for (const Token& token : tokens) {
    TokenEvent* event = message.add_events();
    event->set_type(TypeOf(token.state()));
    *event->mutable_token() = token;
    revision = std::max(revision, token.revision());
  }
  message.set_revision(revision);
  return message;
}

// Records the notifications of a listener. Thread-safe.
class Recorder {
 public:
  struct Entry {
    CacheChange::Kind kind;
    int64_t revision;
    std::string token_id;  // kEvent
    bool has_secret_hash;  // kEvent
    bool fresh;
  };

  void Add(const CacheChange& change) {
    absl::MutexLock lock(&mu_);
    entries_.push_back(
        {change.kind, change.revision, change.event != nullptr ? change.event->token().id() : "",
         change.event != nullptr && !change.event->token().secret_sha256().empty(), change.fresh});
  }

  // The entries of `kind` so far.
  std::vector<Entry> Of(CacheChange::Kind kind) const {
    absl::MutexLock lock(&mu_);
    std::vector<Entry> out;
    for (const Entry& entry : entries_) {
      if (entry.kind == kind) out.push_back(entry);
    }
    return out;
  }

  // Waits until `count` entries of `kind` have arrived.
  bool WaitFor(CacheChange::Kind kind, int count, absl::Duration timeout = kTimeout) const {
    absl::MutexLock lock(&mu_);
    auto enough = [this, kind, count]() {
      mu_.AssertReaderHeld();
      int n = 0;
      for (const Entry& entry : entries_) n += entry.kind == kind;
      return n >= count;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }

  // Waits until the latest kFreshness entry says `fresh`.
  bool WaitForFreshness(bool fresh, absl::Duration timeout = kTimeout) const {
    absl::MutexLock lock(&mu_);
    auto reached = [this, fresh]() {
      mu_.AssertReaderHeld();
      for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
        if (it->kind == CacheChange::Kind::kFreshness) return it->fresh == fresh;
      }
      return false;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<Entry> entries_ ABSL_GUARDED_BY(mu_);
};

class TokenCacheTest : public ::testing::Test {
 protected:
  // Starts the cache over the fake with `options` (fast reconnects unless set).
  void Start(TokenCacheOptions options = {}) {
    options.initial_backoff = absl::Milliseconds(1);
    options.max_backoff = absl::Milliseconds(5);
    absl::StatusOr<std::unique_ptr<TokenCache>> cache =
        TokenCache::Create(std::make_unique<FakeSource>(server_), std::move(options));
    ASSERT_TRUE(cache.ok()) << cache.status();
    cache_ = *std::move(cache);
    cache_->OnChange([this](const CacheChange& change) { recorder_.Add(change); });
  }

  std::shared_ptr<FakeServer> server_ = std::make_shared<FakeServer>();
  Recorder recorder_;
  std::unique_ptr<TokenCache> cache_;  // last: destroyed first
};

TEST_F(TokenCacheTest, UnknownBeforeSync) {
  Start();
  ASSERT_TRUE(server_->WaitForStreams(1));
  const CheckResult check = cache_->Check(Id(1));
  EXPECT_EQ(check.state, Token::STATE_UNSPECIFIED);
  EXPECT_FALSE(check.fresh);
  EXPECT_FALSE(check.allowed);
  EXPECT_FALSE(cache_->synced());
  EXPECT_FALSE(cache_->WaitForRevision(0, absl::Milliseconds(10)));
}

TEST_F(TokenCacheTest, FirstRequestAsksForSnapshotWithOptions) {
  TokenCacheOptions options;
  options.account_id = kAccount;
  options.max_staleness = absl::Seconds(2);
  Start(options);
  ASSERT_TRUE(server_->WaitForStreams(1));
  const WatchTokensRequest request = server_->requests()[0];
  EXPECT_TRUE(request.send_initial_state());
  EXPECT_EQ(request.since_revision(), 0);
  EXPECT_EQ(request.epoch(), "");
  EXPECT_EQ(request.account_id(), kAccount);
  EXPECT_TRUE(request.include_secret_hash());
  EXPECT_EQ(request.progress_interval().seconds(), 0);
  EXPECT_EQ(request.progress_interval().nanos(), 500'000'000);
}

TEST_F(TokenCacheTest, SnapshotThenChangesApplied) {
  Start();
  SendSnapshot(
      *server_, 10,
      {MakeToken(Id(1), Token::STATE_ACTIVE, 3, "hash1"),
       MakeToken(Id(2), Token::STATE_DISABLED, 7), MakeToken(Id(3), Token::STATE_ACTIVE, 9)},
      kEpoch, /*chunk=*/2);
  ASSERT_TRUE(cache_->WaitForRevision(10, kTimeout));
  EXPECT_TRUE(cache_->synced());
  EXPECT_EQ(cache_->epoch(), kEpoch);

  CheckResult check = cache_->Check(Id(1));
  EXPECT_EQ(check.state, Token::STATE_ACTIVE);
  EXPECT_EQ(check.token_revision, 3);
  EXPECT_EQ(check.cache_revision, 10);
  EXPECT_TRUE(check.fresh);
  EXPECT_TRUE(check.allowed);
  check = cache_->Check(Id(2));
  EXPECT_EQ(check.state, Token::STATE_DISABLED);
  EXPECT_FALSE(check.allowed);

  server_->Send(Changes({MakeToken(Id(1), Token::STATE_DISABLED, 11, "hash1"),
                         MakeToken(Id(4), Token::STATE_ACTIVE, 12, "hash4")}));
  ASSERT_TRUE(cache_->WaitForRevision(12, kTimeout));
  check = cache_->Check(Id(1));
  EXPECT_EQ(check.state, Token::STATE_DISABLED);
  EXPECT_EQ(check.token_revision, 11);
  EXPECT_FALSE(check.allowed);
  EXPECT_EQ(cache_->Check(Id(4)).state, Token::STATE_ACTIVE);
  EXPECT_EQ(cache_->Check(Id(5)).state, Token::STATE_UNSPECIFIED);

  // Get and List never show the secret's hash.
  const GetResult got = cache_->Get(Id(4));
  ASSERT_TRUE(got.token.has_value());
  EXPECT_EQ(got.token->id(), Id(4));
  EXPECT_EQ(got.token->name(), absl::StrCat("name of ", Id(4)));
  EXPECT_EQ(got.token->secret_sha256(), "");
  EXPECT_EQ(got.cache_revision, 12);
  EXPECT_FALSE(cache_->Get(Id(5)).token.has_value());

  ListParams params;
  params.page_size = 10;
  const ListResult listed = cache_->List(params);
  ASSERT_EQ(listed.page.tokens.size(), 4u);  // DISABLED tokens are listed too
  for (int i = 0; i < 4; ++i) EXPECT_EQ(listed.page.tokens[i].id(), Id(i + 1));
  EXPECT_EQ(listed.page.revision, 12);
  EXPECT_EQ(listed.page.epoch, kEpoch);
  for (const Token& token : listed.page.tokens) EXPECT_EQ(token.secret_sha256(), "");

  const TokenCacheStats stats = cache_->stats();
  EXPECT_EQ(stats.snapshots_loaded, 1);
  EXPECT_EQ(stats.events_applied, 2);
  EXPECT_EQ(stats.events_ignored, 0);
  EXPECT_EQ(stats.resumes, 0);
  EXPECT_EQ(stats.streams_opened, 1);
}

TEST_F(TokenCacheTest, MetricsShowTheStateAndThePropagationOfEveryChange) {
  Start();
  metrics::Registry registry;
  TokenCacheMetrics cache_metrics(*cache_, registry);
  // Registered after the metrics' listener, so it hears of each change after it did.
  absl::Notification applied;
  cache_->OnChange([&](const CacheChange& change) {
    if (change.kind == CacheChange::Kind::kEvent && change.revision == 12) applied.Notify();
  });
  SendSnapshot(
      *server_, 10,
      {MakeToken(Id(1), Token::STATE_ACTIVE, 3), MakeToken(Id(2), Token::STATE_ACTIVE, 7)});
  // Committed 2 s ago, and (a clock ahead of ours) a minute from now.
  Token two_seconds_ago = MakeToken(Id(1), Token::STATE_DISABLED, 11);
  *two_seconds_ago.mutable_update_time() = google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
      absl::ToUnixNanos(absl::Now() - absl::Seconds(2)));
  Token from_the_future = MakeToken(Id(3), Token::STATE_ACTIVE, 12);
  *from_the_future.mutable_update_time() = google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
      absl::ToUnixNanos(absl::Now() + absl::Minutes(1)));
  server_->Send(Changes({two_seconds_ago, from_the_future}));
  ASSERT_TRUE(applied.WaitForNotificationWithTimeout(kTimeout));

  const std::string text = registry.Render();
  EXPECT_THAT(text, HasSubstr("\ntokenstatus_cache_revision 12\n"));
  EXPECT_THAT(text, HasSubstr("\ntokenstatus_cache_tokens 3\n"));
  EXPECT_THAT(text, HasSubstr("\ntokenstatus_cache_fresh 1\n"));
  EXPECT_THAT(text, HasSubstr("\ntokenstatus_cache_resyncs_total{reason=\"snapshot\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\ntokenstatus_cache_resyncs_total{reason=\"resume\"} 0\n"));
  // The future one counts as 0 (first bucket) and as negative; the other lands above 1 s.
  EXPECT_THAT(text, HasSubstr("\ntokenstatus_cache_propagation_seconds_bucket{le=\"0.0001\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\ntokenstatus_cache_propagation_seconds_bucket{le=\"1\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\ntokenstatus_cache_propagation_seconds_bucket{le=\"2.5\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("\ntokenstatus_cache_propagation_seconds_count 2\n"));
  EXPECT_THAT(text, HasSubstr("\ntokenstatus_cache_propagation_negative_total 1\n"));
}

TEST_F(TokenCacheTest, ListPagesWithFilters) {
  Start();
  std::vector<Token> tokens;
  for (int i = 1; i <= 6; ++i) {
    const Token::State state = i % 3 == 0   ? Token::STATE_DELETED
                               : i % 3 == 1 ? Token::STATE_ACTIVE
                                            : Token::STATE_DISABLED;
    tokens.push_back(MakeToken(Id(i), state, i));
  }
  tokens[5].set_account_id("ACC-0000-0002");  // Id(6), DELETED
  SendSnapshot(*server_, 6, tokens);
  ASSERT_TRUE(cache_->WaitForRevision(6, kTimeout));

  ListParams params;
  params.page_size = 2;
  ListResult page = cache_->List(params);  // ACTIVE and DISABLED: 1, 2, 4, 5
  ASSERT_EQ(page.page.tokens.size(), 2u);
  EXPECT_EQ(page.page.tokens[1].id(), Id(2));
  EXPECT_EQ(page.page.next_after_id, Id(2));
  params.after_id = page.page.next_after_id;
  page = cache_->List(params);
  ASSERT_EQ(page.page.tokens.size(), 2u);
  EXPECT_EQ(page.page.tokens[0].id(), Id(4));
  EXPECT_EQ(page.page.tokens[1].id(), Id(5));
  EXPECT_EQ(page.page.next_after_id, "") << "nothing matches after Id(5)";

  params = ListParams{};
  params.state = Token::STATE_DELETED;
  page = cache_->List(params);
  ASSERT_EQ(page.page.tokens.size(), 2u);
  EXPECT_EQ(page.page.tokens[0].id(), Id(3));
  EXPECT_EQ(page.page.tokens[1].id(), Id(6));

  params = ListParams{};
  params.show_deleted = true;
  params.account_id = "ACC-0000-0002";
  page = cache_->List(params);
  ASSERT_EQ(page.page.tokens.size(), 1u);
  EXPECT_EQ(page.page.tokens[0].id(), Id(6));
}

// The rule: an event never overwrites a newer revision.
TEST_F(TokenCacheTest, OlderEventNeverOverwritesNewerState) {
  Start();
  SendSnapshot(
      *server_, 20,
      {MakeToken(Id(1), Token::STATE_DISABLED, 20), MakeToken(Id(2), Token::STATE_ACTIVE, 5)});
  ASSERT_TRUE(cache_->WaitForRevision(20, kTimeout));

  // An event older than the snapshot's token, one of the same revision, and an out-of-order
  // pair within one batch.
  server_->Send(Changes({MakeToken(Id(1), Token::STATE_ACTIVE, 15)}));
  server_->Send(Changes({MakeToken(Id(1), Token::STATE_ACTIVE, 20)}));
  server_->Send(Changes(
      {MakeToken(Id(2), Token::STATE_DISABLED, 22), MakeToken(Id(2), Token::STATE_ACTIVE, 21)}));
  server_->Send(Message(WatchTokensResponse::KIND_PROGRESS, 23));  // after the whole batch
  ASSERT_TRUE(cache_->WaitForRevision(23, kTimeout));

  CheckResult check = cache_->Check(Id(1));
  EXPECT_EQ(check.state, Token::STATE_DISABLED);
  EXPECT_EQ(check.token_revision, 20);
  check = cache_->Check(Id(2));
  EXPECT_EQ(check.state, Token::STATE_DISABLED);
  EXPECT_EQ(check.token_revision, 22);
  EXPECT_FALSE(check.allowed);
  EXPECT_EQ(cache_->Get(Id(2)).token->state(), Token::STATE_DISABLED);
  ListParams params;
  params.state = Token::STATE_DISABLED;
  EXPECT_EQ(cache_->List(params).page.tokens.size(), 2u);

  const TokenCacheStats stats = cache_->stats();
  EXPECT_EQ(stats.events_applied, 1);
  EXPECT_EQ(stats.events_ignored, 3);
  EXPECT_EQ(recorder_.Of(CacheChange::Kind::kEvent).size(), 1u) << "ignored events notify nobody";
}

TEST_F(TokenCacheTest, DisabledAndDeletedLeftOnlyByNewerEvent) {
  Start();
  SendSnapshot(*server_, 5, {MakeToken(Id(1), Token::STATE_ACTIVE, 5)});
  ASSERT_TRUE(cache_->WaitForRevision(5, kTimeout));

  server_->Send(Changes({MakeToken(Id(1), Token::STATE_DISABLED, 7)}));
  server_->Send(Changes({MakeToken(Id(1), Token::STATE_ACTIVE, 6)}));  // older ENABLED
  ASSERT_TRUE(cache_->WaitForRevision(7, kTimeout));
  EXPECT_EQ(cache_->Check(Id(1)).state, Token::STATE_DISABLED);

  server_->Send(Changes({MakeToken(Id(1), Token::STATE_DELETED, 9)}));
  server_->Send(Changes({MakeToken(Id(1), Token::STATE_DISABLED, 8)}));  // older
  ASSERT_TRUE(cache_->WaitForRevision(9, kTimeout));
  EXPECT_EQ(cache_->Check(Id(1)).state, Token::STATE_DELETED);

  server_->Send(Changes({MakeToken(Id(1), Token::STATE_ACTIVE, 10)}));  // newer: applied
  ASSERT_TRUE(cache_->WaitForRevision(10, kTimeout));
  EXPECT_EQ(cache_->Check(Id(1)).state, Token::STATE_ACTIVE);
}

TEST_F(TokenCacheTest, ListenersFireOncePerEventInOrderAndOnReset) {
  Start();
  SendSnapshot(*server_, 10, {MakeToken(Id(1), Token::STATE_ACTIVE, 10, "hash")});
  server_->Send(Changes({MakeToken(Id(1), Token::STATE_DISABLED, 11, "hash"),
                         MakeToken(Id(2), Token::STATE_ACTIVE, 12)}));
  server_->Send(Changes({MakeToken(Id(1), Token::STATE_ACTIVE, 11)}));  // ignored
  server_->Send(Changes({MakeToken(Id(3), Token::STATE_ACTIVE, 13)}));
  server_->Send(Message(WatchTokensResponse::KIND_PROGRESS, 14));
  ASSERT_TRUE(cache_->WaitForRevision(14, kTimeout));

  // WaitForRevision may return before the listener of that revision has run: wait for it.
  ASSERT_TRUE(recorder_.WaitFor(CacheChange::Kind::kEvent, 3));
  std::vector<Recorder::Entry> events = recorder_.Of(CacheChange::Kind::kEvent);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].token_id, Id(1));
  EXPECT_EQ(events[0].revision, 11);
  EXPECT_FALSE(events[0].has_secret_hash) << "listeners never see the hash";
  EXPECT_EQ(events[1].token_id, Id(2));
  EXPECT_EQ(events[1].revision, 12);
  EXPECT_EQ(events[2].token_id, Id(3));
  EXPECT_EQ(events[2].revision, 13);
  ASSERT_EQ(recorder_.Of(CacheChange::Kind::kReset).size(), 1u);  // the first sync
  EXPECT_EQ(recorder_.Of(CacheChange::Kind::kReset)[0].revision, 10);

  // RESET and a fresh snapshot of another epoch: one more kReset, after the swap.
  server_->Send(Message(WatchTokensResponse::KIND_RESET, 3, "epoch-b"));
  SendSnapshot(*server_, 3, {MakeToken(Id(7), Token::STATE_ACTIVE, 3)}, "epoch-b");
  ASSERT_TRUE(recorder_.WaitFor(CacheChange::Kind::kReset, 2));
  const std::vector<Recorder::Entry> resets = recorder_.Of(CacheChange::Kind::kReset);
  EXPECT_EQ(resets[1].revision, 3);
  EXPECT_EQ(cache_->epoch(), "epoch-b");
  EXPECT_EQ(cache_->Check(Id(1)).state, Token::STATE_UNSPECIFIED) << "the old state is gone";
  EXPECT_EQ(cache_->Check(Id(7)).state, Token::STATE_ACTIVE);
  EXPECT_EQ(cache_->stats().resets, 1);
  EXPECT_EQ(cache_->stats().snapshots_loaded, 2);

  // A second listener added now sees only what follows; a removed one sees nothing more.
  Recorder second;
  const TokenCache::ListenerId id =
      cache_->OnChange([&second](const CacheChange& change) { second.Add(change); });
  server_->Send(Changes({MakeToken(Id(7), Token::STATE_DISABLED, 4)}));
  ASSERT_TRUE(second.WaitFor(CacheChange::Kind::kEvent, 1));
  cache_->RemoveListener(id);
  server_->Send(Changes({MakeToken(Id(7), Token::STATE_ACTIVE, 5)}));
  ASSERT_TRUE(recorder_.WaitFor(CacheChange::Kind::kEvent, 5));
  EXPECT_EQ(second.Of(CacheChange::Kind::kEvent).size(), 1u);
  events = recorder_.Of(CacheChange::Kind::kEvent);
  EXPECT_EQ(events[3].revision, 4);
  EXPECT_EQ(events[4].revision, 5);
}

TEST_F(TokenCacheTest, StaleFailsClosedAndRecovers) {
  TokenCacheOptions options;
  options.max_staleness = absl::Milliseconds(200);
  Start(options);
  const absl::Time before_last_message = absl::Now();
  SendSnapshot(
      *server_, 10,
      {MakeToken(Id(1), Token::STATE_ACTIVE, 10), MakeToken(Id(2), Token::STATE_DISABLED, 9)});
  ASSERT_TRUE(recorder_.WaitForFreshness(true));
  EXPECT_TRUE(cache_->Check(Id(1)).allowed);

  // Nothing arrives for max_staleness: stale (not earlier), and the silent stream is dropped.
  ASSERT_TRUE(recorder_.WaitForFreshness(false));
  EXPECT_GE(absl::Now() - before_last_message, options.max_staleness);
  const CheckResult check = cache_->Check(Id(1));
  EXPECT_EQ(check.state, Token::STATE_ACTIVE) << "the last known state is still reported";
  EXPECT_FALSE(check.fresh);
  EXPECT_FALSE(check.allowed);
  EXPECT_FALSE(cache_->fresh());
  EXPECT_EQ(cache_->Verify("idt:garbage").allowed, false);

  // The cache reconnects, resuming from revision 10; a PROGRESS makes it fresh again.
  ASSERT_TRUE(server_->WaitForStreams(2));
  EXPECT_TRUE(server_->Cancelled(0));
  EXPECT_EQ(server_->requests()[1].since_revision(), 10);
  server_->Send(Message(WatchTokensResponse::KIND_PROGRESS, 11));
  ASSERT_TRUE(recorder_.WaitForFreshness(true));
  EXPECT_TRUE(cache_->Check(Id(1)).allowed);
  EXPECT_EQ(cache_->Check(Id(1)).cache_revision, 11);
  EXPECT_EQ(cache_->stats().resumes, 1);
}

TEST_F(TokenCacheTest, StaleServesLastKnownUnderThatPolicy) {
  TokenCacheOptions options;
  options.max_staleness = absl::Milliseconds(100);
  options.stale_policy = StalePolicy::kServeLastKnown;
  Start(options);
  const std::string secret = *GenerateSecret(Id(1));
  SendSnapshot(*server_, 10,
               {MakeToken(Id(1), Token::STATE_ACTIVE, 10, Sha256(secret)),
                MakeToken(Id(2), Token::STATE_DISABLED, 9)});
  ASSERT_TRUE(recorder_.WaitForFreshness(true));
  ASSERT_TRUE(recorder_.WaitForFreshness(false));
  CheckResult check = cache_->Check(Id(1));
  EXPECT_FALSE(check.fresh);
  EXPECT_TRUE(check.allowed);
  check = cache_->Check(Id(2));
  EXPECT_FALSE(check.allowed) << "a DISABLED token is never allowed";
  const VerifyResult verified = cache_->Verify(secret);
  EXPECT_EQ(verified.result, VerifyTokenResponse::RESULT_VALID);
  EXPECT_FALSE(verified.fresh);
  EXPECT_TRUE(verified.allowed);
}

// A stream on which nothing ever arrives (a hung server, a dead connection) is dropped after
// max_staleness, before the first sync too.
TEST_F(TokenCacheTest, SilentStreamIsDroppedAndReopened) {
  TokenCacheOptions options;
  options.max_staleness = absl::Milliseconds(100);
  Start(options);
  ASSERT_TRUE(server_->WaitForStreams(3));
  EXPECT_TRUE(server_->Cancelled(0));
  EXPECT_TRUE(server_->Cancelled(1));
  EXPECT_FALSE(cache_->synced());
  EXPECT_EQ(server_->requests()[2].since_revision(), 0);
}

TEST_F(TokenCacheTest, ReconnectNamesTheHistoryMarkOfItsRevision) {
  Start();
  SendSnapshot(*server_, 10, {MakeToken(Id(1), Token::STATE_ACTIVE, 10)});
  WatchTokensResponse changes = Changes({MakeToken(Id(1), Token::STATE_DISABLED, 11)});
  changes.set_chain("00000000000000aa");
  server_->Send(changes);
  WatchTokensResponse progress = Message(WatchTokensResponse::KIND_PROGRESS, 12);
  progress.set_chain("00000000000000bb");
  server_->Send(progress);
  ASSERT_TRUE(cache_->WaitForRevision(12, kTimeout));
  server_->End(absl::UnavailableError("server went away"));
  ASSERT_TRUE(server_->WaitForStreams(2));
  const WatchTokensRequest resume = server_->requests()[1];
  EXPECT_EQ(resume.since_revision(), 12);
  EXPECT_EQ(resume.since_chain(), "00000000000000bb") << "the mark of revision 12, not of 11";
}

// A stream the server refused with a retry hint (its snapshot found no room in the budget) is
// not reopened before the hint, though the cache's own backoff here is a few milliseconds.
TEST_F(TokenCacheTest, ReconnectWaitsForTheServersRetryHint) {
  Start();
  ASSERT_TRUE(server_->WaitForStreams(1));
  const absl::Time ended = absl::Now();
  server_->End(MakeError(absl::StatusCode::kResourceExhausted, reason::kSnapshotBudgetExhausted,
                         "no room for this stream's snapshot", {{kRetryAfterMsKey, "300"}}));
  ASSERT_TRUE(server_->WaitForStreams(2));
  EXPECT_GE(server_->OpenedAt(1) - ended, absl::Milliseconds(300));
}

TEST_F(TokenCacheTest, ReconnectResumesFromLastAppliedRevision) {
  Start();
  SendSnapshot(*server_, 10, {MakeToken(Id(1), Token::STATE_ACTIVE, 10)});
  server_->Send(Changes({MakeToken(Id(1), Token::STATE_DISABLED, 11)}));
  ASSERT_TRUE(cache_->WaitForRevision(11, kTimeout));
  server_->End(absl::UnavailableError("server went away"));

  ASSERT_TRUE(server_->WaitForStreams(2));
  std::vector<WatchTokensRequest> requests = server_->requests();
  EXPECT_EQ(requests[0].since_revision(), 0);
  EXPECT_EQ(requests[1].since_revision(), 11);
  EXPECT_EQ(requests[1].epoch(), kEpoch);
  EXPECT_TRUE(requests[1].send_initial_state());
  EXPECT_EQ(cache_->Check(Id(1)).state, Token::STATE_DISABLED) << "served while reconnecting";

  server_->Send(Changes({MakeToken(Id(1), Token::STATE_ACTIVE, 12)}));
  ASSERT_TRUE(cache_->WaitForRevision(12, kTimeout));
  EXPECT_EQ(cache_->Check(Id(1)).state, Token::STATE_ACTIVE);
  TokenCacheStats stats = cache_->stats();
  EXPECT_EQ(stats.snapshots_loaded, 1);
  EXPECT_EQ(stats.resumes, 1);
  EXPECT_EQ(stats.streams_opened, 2);

  // A RESET whose snapshot is cut short: the next stream asks for a snapshot, not a resume.
  server_->Send(Message(WatchTokensResponse::KIND_RESET, 2, "epoch-b"));
  WatchTokensResponse chunk = Message(WatchTokensResponse::KIND_SNAPSHOT, 2, "epoch-b");
  *chunk.add_tokens() = MakeToken(Id(9), Token::STATE_ACTIVE, 2);
  server_->Send(chunk);
  server_->End(absl::UnavailableError("gone again"));
  ASSERT_TRUE(server_->WaitForStreams(3));
  requests = server_->requests();
  EXPECT_EQ(requests[2].since_revision(), 0);
  EXPECT_EQ(requests[2].epoch(), "");
  EXPECT_EQ(cache_->Check(Id(1)).state, Token::STATE_ACTIVE) << "old state until the swap";
  EXPECT_EQ(cache_->Check(Id(9)).state, Token::STATE_UNSPECIFIED) << "no half snapshot";
  SendSnapshot(*server_, 2, {MakeToken(Id(9), Token::STATE_ACTIVE, 2)}, "epoch-b");
  ASSERT_TRUE(recorder_.WaitFor(CacheChange::Kind::kReset, 2));
  EXPECT_EQ(cache_->Check(Id(9)).state, Token::STATE_ACTIVE);
  stats = cache_->stats();
  EXPECT_EQ(stats.resets, 1);
  EXPECT_EQ(stats.snapshots_loaded, 2);
  EXPECT_EQ(stats.resumes, 1);
}

// A reader checks continuously that a token present in every snapshot is always found while
// the cache swaps in many resyncs.
TEST_F(TokenCacheTest, ResetSwapIsAtomicForReaders) {
  Start();
  constexpr int kTokens = 2000;
  constexpr int kSwaps = 50;
  auto snapshot = [](int generation) {
    std::vector<Token> tokens;
    for (int i = 1; i <= kTokens; ++i) {
      tokens.push_back(MakeToken(Id(i), Token::STATE_ACTIVE, 1000 + generation));
    }
    return tokens;
  };
  SendSnapshot(*server_, 1000, snapshot(0));
  ASSERT_TRUE(cache_->WaitForRevision(1000, kTimeout));

  std::atomic<bool> stop{false};
  std::atomic<int64_t> lookups{0};
  std::atomic<int64_t> misses{0};
  std::thread reader([&] {
    int i = 0;
    while (!stop.load()) {
      const CheckResult check = cache_->Check(Id(1 + i++ % kTokens));
      if (check.state != Token::STATE_ACTIVE) misses.fetch_add(1);
      lookups.fetch_add(1);
    }
  });
  for (int generation = 1; generation <= kSwaps; ++generation) {
    const std::string epoch = absl::StrCat("epoch-", generation);
    server_->Send(Message(WatchTokensResponse::KIND_RESET, 1000 + generation, epoch));
    SendSnapshot(*server_, 1000 + generation, snapshot(generation), epoch, /*chunk=*/500);
    ASSERT_TRUE(recorder_.WaitFor(CacheChange::Kind::kReset, 1 + generation));
  }
  stop.store(true);
  reader.join();
  EXPECT_EQ(misses.load(), 0) << "of " << lookups.load() << " lookups";
  EXPECT_GT(lookups.load(), kSwaps);
  EXPECT_EQ(cache_->Check(Id(1)).token_revision, 1000 + kSwaps);
  EXPECT_EQ(cache_->stats().snapshots_loaded, 1 + kSwaps);
  EXPECT_EQ(cache_->stats().resets, kSwaps);
}

// Readers on several threads while events are applied: every answer is one the writer stored
// (state and revision of the same event) and a reader never sees a revision go back.
TEST_F(TokenCacheTest, ConcurrentReadersSeeWholeEntriesInOrder) {
  Start();
  constexpr int kTokens = 4;
  constexpr int kEvents = 3000;
  std::vector<Token> tokens;
  for (int i = 1; i <= kTokens; ++i) tokens.push_back(MakeToken(Id(i), Token::STATE_ACTIVE, 1));
  SendSnapshot(*server_, 1, tokens);
  ASSERT_TRUE(cache_->WaitForRevision(1, kTimeout));

  std::atomic<bool> stop{false};
  std::atomic<int64_t> torn{0};
  std::atomic<int64_t> backwards{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      std::vector<int64_t> seen(kTokens + 1, 0);
      while (!stop.load()) {
        for (int i = 1; i <= kTokens; ++i) {
          const CheckResult check = cache_->Check(Id(i));
          // Odd revisions are ACTIVE, even ones DISABLED (see the events below).
          if ((check.token_revision % 2 == 0) != (check.state == Token::STATE_DISABLED)) {
            torn.fetch_add(1);
          }
          if (check.token_revision < seen[i]) backwards.fetch_add(1);
          seen[i] = check.token_revision;
        }
      }
    });
  }
  for (int revision = 2; revision <= kEvents + 1; ++revision) {
    const Token::State state = revision % 2 == 0 ? Token::STATE_DISABLED : Token::STATE_ACTIVE;
    server_->Send(Changes({MakeToken(Id(1 + revision % kTokens), state, revision)}));
  }
  ASSERT_TRUE(cache_->WaitForRevision(kEvents + 1, kTimeout));
  stop.store(true);
  for (std::thread& reader : readers) reader.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_EQ(backwards.load(), 0);
  EXPECT_EQ(cache_->stats().events_applied, kEvents);
}

TEST_F(TokenCacheTest, VerifyResultCodes) {
  Start();
  const std::string active = *GenerateSecret(Id(1));
  const std::string disabled = *GenerateSecret(Id(2));
  const std::string deleted = *GenerateSecret(Id(3));
  const std::string no_hash = *GenerateSecret(Id(4));
  SendSnapshot(*server_, 10,
               {MakeToken(Id(1), Token::STATE_ACTIVE, 5, Sha256(active)),
                MakeToken(Id(2), Token::STATE_DISABLED, 6, Sha256(disabled)),
                MakeToken(Id(3), Token::STATE_DELETED, 7, Sha256(deleted)),
                MakeToken(Id(4), Token::STATE_ACTIVE, 8)});
  ASSERT_TRUE(cache_->WaitForRevision(10, kTimeout));

  VerifyResult result = cache_->Verify(active);
  EXPECT_EQ(result.result, VerifyTokenResponse::RESULT_VALID);
  EXPECT_EQ(result.token_id, Id(1));
  EXPECT_EQ(result.account_id, kAccount);
  EXPECT_EQ(result.token_revision, 5);
  EXPECT_EQ(result.cache_revision, 10);
  EXPECT_TRUE(result.fresh);
  EXPECT_TRUE(result.allowed);

  result = cache_->Verify(disabled);
  EXPECT_EQ(result.result, VerifyTokenResponse::RESULT_DISABLED);
  EXPECT_EQ(result.token_id, Id(2));
  EXPECT_FALSE(result.allowed);
  result = cache_->Verify(deleted);
  EXPECT_EQ(result.result, VerifyTokenResponse::RESULT_DELETED);
  EXPECT_FALSE(result.allowed);

  // Another secret of an existing id, and a token without a hash: NOT_FOUND, nothing revealed.
  for (const std::string& secret : {*GenerateSecret(Id(1)), no_hash}) {
    result = cache_->Verify(secret);
    EXPECT_EQ(result.result, VerifyTokenResponse::RESULT_NOT_FOUND);
    EXPECT_EQ(result.token_id, "");
    EXPECT_EQ(result.account_id, "");
    EXPECT_FALSE(result.allowed);
  }
  EXPECT_EQ(cache_->Verify(*GenerateSecret(Id(99))).result, VerifyTokenResponse::RESULT_NOT_FOUND);
  for (const char* malformed : {"", "idt:", "TKN-0000-0001", "idt:TKN-0000-0001:", "idt:x:abc"}) {
    EXPECT_EQ(cache_->Verify(malformed).result, VerifyTokenResponse::RESULT_MALFORMED) << malformed;
  }

  // The state follows the events.
  server_->Send(Changes({MakeToken(Id(1), Token::STATE_DISABLED, 11, Sha256(active))}));
  ASSERT_TRUE(cache_->WaitForRevision(11, kTimeout));
  EXPECT_EQ(cache_->Verify(active).result, VerifyTokenResponse::RESULT_DISABLED);
}

TEST(TokenCacheOptionsTest, InvalidOptionsAreRefused) {
  auto create = [](TokenCacheOptions options) {
    return TokenCache::Create(std::make_unique<FakeSource>(std::make_shared<FakeServer>()),
                              std::move(options))
        .status();
  };
  TokenCacheOptions options;
  options.account_id = "ACC-1";
  absl::Status status = create(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(status), reason::kInvalidAccountId);

  options = TokenCacheOptions{};
  options.max_staleness = absl::Milliseconds(50);
  status = create(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorInfoOf(status).metadata().at("field"), "max_staleness");

  options = TokenCacheOptions{};
  options.initial_backoff = absl::Seconds(2);
  options.max_backoff = absl::Seconds(1);
  status = create(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorInfoOf(status).metadata().at("field"), "max_backoff");
}

}  // namespace
}  // namespace tokenstatus
