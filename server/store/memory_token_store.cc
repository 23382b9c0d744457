#include "server/store/memory_token_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/status_util.h"
#include "core/token_secret.h"
#include "core/validation.h"

namespace tokenstatus {
namespace {

// Sets `timestamp` to now, at the millisecond precision the Redis store keeps.
void SetNow(google::protobuf::Timestamp* timestamp) {
  const int64_t millis = absl::ToUnixMillis(absl::Now());
  timestamp->set_seconds(millis / 1000);
  timestamp->set_nanos(static_cast<int32_t>(millis % 1000) * 1000000);
}

absl::Status NotFound(absl::string_view token_id) {
  return MakeError(absl::StatusCode::kNotFound, reason::kTokenNotFound,
                   absl::StrCat("token ", token_id, " not found"));
}

// The state a transition leads to, its event type, and the refusal reason for a token that is
// already in that state.
struct TransitionRule {
  Token::State to;
  TokenEvent::Type event;
  const char* already_reason;
};

TransitionRule RuleOf(Transition transition) {
  switch (transition) {
    case Transition::kEnable:
      return {Token::STATE_ACTIVE, TokenEvent::TYPE_ENABLED, reason::kTokenAlreadyActive};
    case Transition::kDisable:
      return {Token::STATE_DISABLED, TokenEvent::TYPE_DISABLED, reason::kTokenAlreadyDisabled};
    case Transition::kDelete:
      break;
  }
  return {Token::STATE_DELETED, TokenEvent::TYPE_DELETED, reason::kTokenDeleted};
}

}  // namespace

MemoryTokenStore::MemoryTokenStore(MemoryTokenStoreOptions options) : options_(options) {}

void MemoryTokenStore::Create(CreateTokenParams params, absl::Time deadline,
                              StoreCallback<Token> done) {
  absl::StatusOr<Token> result;
  {
    absl::MutexLock lock(&mu_);
    result = CreateLocked(std::move(params));
  }
  done(std::move(result));
}

void MemoryTokenStore::Apply(TransitionParams params, absl::Time deadline,
                             StoreCallback<AppliedTransition> done) {
  absl::StatusOr<AppliedTransition> result;
  {
    absl::MutexLock lock(&mu_);
    result = ApplyLocked(params);
  }
  done(std::move(result));
}

void MemoryTokenStore::Get(std::string token_id, absl::Time deadline,
                           StoreCallback<TokenAtRevision> done) {
  absl::StatusOr<TokenAtRevision> result;
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = tokens_.find(token_id);
    if (it == tokens_.end()) {
      result = NotFound(token_id);
    } else {
      result = TokenAtRevision{it->second, revision_};
    }
  }
  done(std::move(result));
}

void MemoryTokenStore::List(ListParams params, absl::Time deadline, StoreCallback<TokenPage> done) {
  TokenPage page;
  {
    absl::ReaderMutexLock lock(&mu_);
    page = ListLocked(params);
  }
  done(std::move(page));
}

void MemoryTokenStore::Scan(ScanParams params, absl::Time deadline, StoreCallback<TokenPage> done) {
  // One consistent state: more than Scan promises.
  const size_t limit = static_cast<size_t>(std::clamp(params.limit, 1, kMaxScanSize));
  TokenPage page;
  {
    absl::ReaderMutexLock lock(&mu_);
    page = EmptyPageLocked();
    auto it = tokens_.upper_bound(params.after_id);
    auto end = params.last_id.empty() ? tokens_.end() : tokens_.upper_bound(params.last_id);
    if (!params.last_id.empty() && params.last_id <= params.after_id) end = it;  // empty range
    for (; it != end && page.tokens.size() < limit; ++it) page.tokens.push_back(it->second);
    if (it != end) page.next_after_id = page.tokens.back().id();
  }
  done(std::move(page));
}

void MemoryTokenStore::SplitIds(int parts, absl::Time deadline,
                                StoreCallback<std::vector<std::string>> done) {
  const size_t cuts = static_cast<size_t>(std::clamp(parts, 1, kMaxScanParts));
  std::vector<std::string> ids;
  {
    absl::ReaderMutexLock lock(&mu_);
    // The token at rank n * i / parts - 1 ends part i, as RedisTokenStore picks them.
    const size_t count = tokens_.size();
    auto it = tokens_.begin();
    size_t rank = 0;
    for (size_t i = 1; i < cuts; ++i) {
      const size_t end = count * i / cuts;
      if (end == 0) continue;
      std::advance(it, static_cast<std::ptrdiff_t>(end - 1 - rank));
      rank = end - 1;
      if (ids.empty() || ids.back() != it->first) ids.push_back(it->first);
    }
  }
  done(std::move(ids));
}

void MemoryTokenStore::ReadEvents(int64_t after_revision, int max_count, absl::Time deadline,
                                  StoreCallback<std::vector<TokenEvent>> done) {
  std::vector<TokenEvent> events;
  {
    absl::ReaderMutexLock lock(&mu_);
    events = EventsAfterLocked(after_revision, max_count);
  }
  done(std::move(events));
}

void MemoryTokenStore::ReadHistory(std::string token_id, int64_t before_revision, int limit,
                                   absl::Time deadline, StoreCallback<TokenHistoryPage> done) {
  absl::StatusOr<TokenHistoryPage> page;
  {
    absl::ReaderMutexLock lock(&mu_);
    page = HistoryLocked(token_id, before_revision, limit);
  }
  done(std::move(page));
}

void MemoryTokenStore::ReadHead(absl::Time deadline, StoreCallback<StoreHead> done) {
  StoreHead head;
  {
    absl::ReaderMutexLock lock(&mu_);
    head = StoreHead{revision_, epoch_, chain_};
  }
  done(std::move(head));
}

void MemoryTokenStore::WaitEvents(int64_t after_revision, int max_count, absl::Duration block,
                                  absl::Time deadline, StoreCallback<EventBatch> done) {
  EventBatch batch;
  {
    absl::MutexLock lock(&mu_);
    auto changed = [this, after_revision]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return revision_ > after_revision; };
    mu_.AwaitWithDeadline(absl::Condition(&changed), std::min(deadline, absl::Now() + block));
    batch.events = EventsAfterLocked(after_revision, max_count);
    if (!batch.events.empty()) {
      batch.prev_chain = prev_chains_[EventIndexLocked(batch.events.front().token().revision())];
    }
    batch.head = StoreHead{revision_, epoch_, chain_};
  }
  done(std::move(batch));
}

std::vector<TokenEvent> MemoryTokenStore::EventsAfterLocked(int64_t after_revision,
                                                            int max_count) const {
  std::vector<TokenEvent> events;
  auto it = std::upper_bound(events_.begin(), events_.end(), after_revision,
                             [](int64_t revision, const TokenEvent& event) {
                               return revision < event.token().revision();
                             });
  for (; it != events_.end() && static_cast<int>(events.size()) < max_count; ++it) {
    events.push_back(*it);
  }
  return events;
}

size_t MemoryTokenStore::EventIndexLocked(int64_t revision) const {
  return static_cast<size_t>(std::lower_bound(events_.begin(), events_.end(), revision,
                                              [](const TokenEvent& event, int64_t revision) {
                                                return event.token().revision() < revision;
                                              }) -
                             events_.begin());
}

const TokenEvent* MemoryTokenStore::EventAtLocked(int64_t revision) const {
  const size_t index = EventIndexLocked(revision);
  return index < events_.size() && events_[index].token().revision() == revision ? &events_[index]
                                                                                 : nullptr;
}

absl::StatusOr<TokenHistoryPage> MemoryTokenStore::HistoryLocked(const std::string& token_id,
                                                                 int64_t before_revision,
                                                                 int limit) const {
  if (!tokens_.contains(token_id)) return NotFound(token_id);
  TokenHistoryPage page;
  auto history = history_.find(token_id);
  if (history == history_.end()) return page;
  const std::deque<int64_t>& revisions = history->second;
  // The newest indexed revision below before_revision (0 = the newest), then older ones.
  auto it = before_revision > 0
                ? std::lower_bound(revisions.begin(), revisions.end(), before_revision)
                : revisions.end();
  const size_t page_size = static_cast<size_t>(std::clamp(limit, 1, kMaxPageSize));
  while (it != revisions.begin()) {
    const TokenEvent* event = EventAtLocked(*--it);
    if (event == nullptr) break;  // beyond the retention, and so is every older one
    if (page.events.size() == page_size) {
      page.more = true;
      break;
    }
    page.events.push_back(*event);
  }
  return page;
}

absl::StatusOr<Token> MemoryTokenStore::CreateLocked(CreateTokenParams params) {
  if (tokens_.contains(params.token_id)) {
    return MakeError(absl::StatusCode::kAlreadyExists, reason::kTokenAlreadyExists,
                     absl::StrCat("token ", params.token_id, " already exists"));
  }
  Token token;
  token.set_id(std::move(params.token_id));
  token.set_account_id(std::move(params.account_id));
  token.set_name(std::move(params.name));
  token.set_description(std::move(params.description));
  token.set_state(Token::STATE_ACTIVE);
  token.set_updated_by(std::move(params.actor));
  token.set_secret_sha256(std::move(params.secret_sha256));
  SetNow(token.mutable_create_time());
  return CommitLocked(std::move(token), TokenEvent::TYPE_CREATED);
}

absl::StatusOr<AppliedTransition> MemoryTokenStore::ApplyLocked(const TransitionParams& params) {
  auto it = tokens_.find(params.token_id);
  if (it == tokens_.end()) return NotFound(params.token_id);
  const Token& current = it->second;
  if (current.state() == Token::STATE_DELETED) {
    return MakeError(absl::StatusCode::kFailedPrecondition, reason::kTokenDeleted,
                     absl::StrCat("token ", params.token_id, " is deleted"));
  }
  const TransitionRule rule = RuleOf(params.transition);
  if (current.state() == rule.to) {
    return MakeError(
        absl::StatusCode::kFailedPrecondition, rule.already_reason,
        absl::StrCat("token ", params.token_id, " is already ", Token::State_Name(rule.to)));
  }
  if (params.expected_revision > 0 && params.expected_revision != current.revision()) {
    const std::string actual = absl::StrCat(current.revision());
    return MakeError(absl::StatusCode::kAborted, reason::kRevisionMismatch,
                     absl::StrCat("token ", params.token_id, " is at revision ", actual,
                                  ", not the expected ", params.expected_revision),
                     {{"current_revision", actual}});
  }
  const Token::State previous_state = current.state();
  Token token = current;
  token.set_state(rule.to);
  token.set_updated_by(params.actor);
  token.set_state_reason(params.reason);
  absl::StatusOr<Token> committed = CommitLocked(std::move(token), rule.event);
  if (!committed.ok()) return committed.status();
  return AppliedTransition{*std::move(committed), previous_state};
}

absl::StatusOr<Token> MemoryTokenStore::CommitLocked(Token token, TokenEvent::Type type) {
  if (epoch_.empty()) {
    absl::StatusOr<std::string> epoch = GenerateEpoch();
    if (!epoch.ok()) return epoch.status();
    epoch_ = *std::move(epoch);
  }
  token.set_revision(++revision_);
  if (type == TokenEvent::TYPE_CREATED) {
    *token.mutable_update_time() = token.create_time();
  } else {
    SetNow(token.mutable_update_time());
  }
  tokens_[token.id()] = token;
  absl::StatusOr<std::string> nonce = GenerateEpoch();
  if (!nonce.ok()) return nonce.status();
  prev_chains_.push_back(chain_);
  chain_ = absl::BytesToHexString(Sha256(absl::StrCat(chain_, ":", *nonce, ":", revision_)))
               .substr(0, 16);
  TokenEvent& event = events_.emplace_back();
  event.set_type(type);
  *event.mutable_token() = token;
  event.set_chain(chain_);
  while (static_cast<int64_t>(events_.size()) > options_.event_retention) {
    events_.pop_front();
    prev_chains_.pop_front();
  }
  std::deque<int64_t>& history = history_[token.id()];
  history.push_back(token.revision());
  if (history.size() > static_cast<size_t>(kMaxHistoryPerToken)) history.pop_front();
  return token;
}

TokenPage MemoryTokenStore::EmptyPageLocked() const {
  TokenPage page;
  page.revision = revision_;
  page.epoch = epoch_;
  page.chain = chain_;
  return page;
}

TokenPage MemoryTokenStore::ListLocked(const ListParams& params) const {
  TokenPage page = EmptyPageLocked();
  const size_t page_size = static_cast<size_t>(std::max(params.page_size, 1));
  for (auto it = tokens_.upper_bound(params.after_id); it != tokens_.end(); ++it) {
    if (!MatchesListFilter(it->second, params)) continue;
    if (page.tokens.size() == page_size) {
      // One more match exists past the full page: the listing goes on after its last id.
      page.next_after_id = page.tokens.back().id();
      break;
    }
    page.tokens.push_back(it->second);
  }
  return page;
}

}  // namespace tokenstatus
