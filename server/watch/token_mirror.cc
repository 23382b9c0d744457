#include "server/watch/token_mirror.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/common/status_util.h"
#include "server/domain/validation.h"

namespace tokenstatus {
namespace {

absl::Status NotReady() {
  return MakeError(absl::StatusCode::kUnavailable, reason::kMirrorNotReady,
                   "the token mirror has not loaded yet");
}

// DEADLINE_EXCEEDED / REVISION_NOT_REACHED for a waiter of `wanted` when the mirror is at
// `reached` (-1: not loaded).
absl::Status NotReached(int64_t wanted, int64_t reached) {
  return MakeError(
      absl::StatusCode::kDeadlineExceeded, reason::kRevisionNotReached,
      reached < 0
          ? absl::StrCat("revision ", wanted,
                         " not reached by the deadline: the mirror has not loaded")
          : absl::StrCat("revision ", wanted,
                         " not reached by the deadline: the mirror is at revision ", reached));
}

// Fills `page` from the tokens in [it, end) (id order) that match `params`, as TokenStore::List
// does: a full page with one more match after it gets the cursor of its last id.
template <typename It, typename TokenOf>
void FillPage(It it, It end, TokenOf token_of, const ListParams& params, TokenPage& page) {
  const size_t page_size = static_cast<size_t>(std::clamp(params.page_size, 1, kMaxPageSize));
  for (; it != end; ++it) {
    const Token& token = token_of(*it);
    if (!MatchesListFilter(token, params)) continue;
    if (page.tokens.size() == page_size) {
      page.next_after_id = page.tokens.back().id();
      return;
    }
    page.tokens.push_back(token);
  }
}

}  // namespace

// The MirrorView of ReadConsistent: the mirror's state, read under its reader lock.
class TokenMirror::View : public MirrorView {
 public:
  View(const TokenMap& tokens, const AccountIndex& accounts, int64_t revision,
       const std::string& epoch)
      : tokens_(tokens), accounts_(accounts), revision_(revision), epoch_(epoch) {}

  int64_t revision() const override { return revision_; }
  const std::string& epoch() const override { return epoch_; }
  void ForEachToken(absl::string_view account_id,
                    absl::FunctionRef<void(const Token&)> fn) const override {
    if (account_id.empty()) {
      for (const auto& [id, token] : tokens_) fn(*token);
      return;
    }
    auto account = accounts_.find(account_id);
    if (account == accounts_.end()) return;
    for (const auto& [id, it] : account->second) fn(*it->second);
  }

 private:
  const TokenMap& tokens_;
  const AccountIndex& accounts_;
  const int64_t revision_;
  const std::string& epoch_;
};

TokenMirror::TokenMirror() : deadline_thread_([this] { RunDeadlines(); }) {}

TokenMirror::~TokenMirror() {
  {
    absl::MutexLock lock(&waiters_mu_);
    stopping_ = true;
    waiters_cv_.Signal();
  }
  deadline_thread_.join();
  std::vector<Done> pending;
  {
    absl::MutexLock lock(&waiters_mu_);
    while (!waiters_.empty()) pending.push_back(TakeWaiter(waiters_.begin()->first));
  }
  for (Done& done : pending) {
    done(MakeError(absl::StatusCode::kUnavailable, reason::kMirrorNotReady,
                   "the token mirror is shutting down"));
  }
}

void TokenMirror::SetListener(MirrorListener* listener) {
  absl::MutexLock lock(&mu_);
  listener_ = listener;
}

bool TokenMirror::loaded() const {
  absl::ReaderMutexLock lock(&mu_);
  return loaded_;
}

int64_t TokenMirror::revision() const {
  absl::ReaderMutexLock lock(&mu_);
  return revision_;
}

std::string TokenMirror::epoch() const {
  absl::ReaderMutexLock lock(&mu_);
  return epoch_;
}

absl::StatusOr<TokenAtRevision> TokenMirror::Get(absl::string_view token_id) const {
  absl::ReaderMutexLock lock(&mu_);
  if (!loaded_) return NotReady();
  auto it = tokens_.find(token_id);
  if (it == tokens_.end()) {
    return MakeError(absl::StatusCode::kNotFound, reason::kTokenNotFound,
                     absl::StrCat("token ", token_id, " not found"));
  }
  return TokenAtRevision{*it->second, revision_};
}

absl::StatusOr<TokenPage> TokenMirror::List(const ListParams& params) const {
  absl::ReaderMutexLock lock(&mu_);
  if (!loaded_) return NotReady();
  TokenPage page;
  page.revision = revision_;
  page.epoch = epoch_;
  if (params.account_id.empty()) {
    FillPage(
        tokens_.upper_bound(params.after_id), tokens_.end(),
        [](const TokenMap::value_type& entry) -> const Token& { return *entry.second; }, params,
        page);
    return page;
  }
  auto account = accounts_.find(params.account_id);
  if (account == accounts_.end()) return page;
  const auto& ids = account->second;
  FillPage(
      ids.upper_bound(params.after_id), ids.end(),
      [](const auto& entry) -> const Token& { return *entry.second->second; }, params, page);
  return page;
}

void TokenMirror::WhenRevisionReached(int64_t min_revision, absl::Time deadline, Done done) {
  absl::Status now_status;
  {
    absl::MutexLock lock(&waiters_mu_);
    if (reached_ >= 0 && reached_ >= min_revision) {
      now_status = absl::OkStatus();
    } else if (deadline <= absl::Now()) {
      now_status = NotReached(min_revision, reached_);
    } else {
      const uint64_t id = next_waiter_id_++;
      const bool earliest = by_deadline_.empty() || deadline < by_deadline_.begin()->first;
      waiters_.emplace(id, Waiter{min_revision, deadline, std::move(done)});
      by_revision_.emplace(min_revision, id);
      by_deadline_.emplace(deadline, id);
      if (earliest) waiters_cv_.Signal();
      return;
    }
  }
  done(std::move(now_status));
}

absl::Status TokenMirror::ReadConsistent(absl::FunctionRef<void(const MirrorView&)> fn) const {
  absl::ReaderMutexLock lock(&mu_);
  if (!loaded_) return NotReady();
  fn(View(tokens_, accounts_, revision_, epoch_));
  return absl::OkStatus();
}

void TokenMirror::Reset(std::vector<Token> tokens, int64_t revision, std::string epoch) {
  // Built without the lock, swapped in under it; the old state is freed after it.
  TokenMap new_tokens;
  AccountIndex new_accounts;
  for (Token& token : tokens) {
    Put(std::make_shared<const Token>(std::move(token)), new_tokens, new_accounts);
  }
  tokens.clear();
  std::vector<Done> ready;
  {
    absl::MutexLock lock(&mu_);
    tokens_.swap(new_tokens);
    accounts_.swap(new_accounts);
    revision_ = revision;
    epoch_ = std::move(epoch);
    const bool first = !loaded_;
    loaded_ = true;
    if (!first && listener_ != nullptr) listener_->OnReset(epoch_, revision_);
    ready = Reached(revision_);
  }
  for (Done& done : ready) done(absl::OkStatus());
}

void TokenMirror::Apply(std::vector<TokenEvent> events, absl::string_view epoch) {
  if (events.empty()) return;
  std::vector<std::shared_ptr<const TokenEvent>> shared;
  shared.reserve(events.size());
  for (TokenEvent& event : events) {
    shared.push_back(std::make_shared<const TokenEvent>(std::move(event)));
  }
  std::vector<Done> ready;
  {
    absl::MutexLock lock(&mu_);
    for (const std::shared_ptr<const TokenEvent>& event : shared) {
      // The stored token shares the event's allocation: one copy per change.
      Put(std::shared_ptr<const Token>(event, &event->token()), tokens_, accounts_);
    }
    if (epoch_.empty() && revision_ == 0) epoch_ = std::string(epoch);
    revision_ = shared.back()->token().revision();
    if (listener_ != nullptr) listener_->OnChanges(shared, revision_, epoch_);
    ready = Reached(revision_);
  }
  for (Done& done : ready) done(absl::OkStatus());
}

void TokenMirror::Put(std::shared_ptr<const Token> token, TokenMap& tokens,
                      AccountIndex& accounts) {
  auto [it, inserted] = tokens.try_emplace(token->id());
  it->second = std::move(token);
  if (inserted) accounts[it->second->account_id()].emplace(it->first, it);
}

std::vector<TokenMirror::Done> TokenMirror::Reached(int64_t revision) {
  std::vector<Done> ready;
  absl::MutexLock lock(&waiters_mu_);
  reached_ = revision;
  while (!by_revision_.empty() && by_revision_.begin()->first <= revision) {
    ready.push_back(TakeWaiter(by_revision_.begin()->second));
  }
  return ready;
}

TokenMirror::Done TokenMirror::TakeWaiter(uint64_t id) {
  auto it = waiters_.find(id);
  Done done = std::move(it->second.done);
  by_revision_.erase({it->second.min_revision, id});
  by_deadline_.erase({it->second.deadline, id});
  waiters_.erase(it);
  return done;
}

void TokenMirror::RunDeadlines() {
  waiters_mu_.Lock();
  while (!stopping_) {
    if (by_deadline_.empty()) {
      waiters_cv_.Wait(&waiters_mu_);
      continue;
    }
    const absl::Time now = absl::Now();
    if (by_deadline_.begin()->first > now) {
      waiters_cv_.WaitWithDeadline(&waiters_mu_, by_deadline_.begin()->first);
      continue;
    }
    std::vector<std::pair<Done, absl::Status>> expired;
    while (!by_deadline_.empty() && by_deadline_.begin()->first <= now) {
      const uint64_t id = by_deadline_.begin()->second;
      absl::Status status = NotReached(waiters_.at(id).min_revision, reached_);
      expired.emplace_back(TakeWaiter(id), std::move(status));
    }
    waiters_mu_.Unlock();
    for (auto& [done, status] : expired) done(std::move(status));
    waiters_mu_.Lock();
  }
  waiters_mu_.Unlock();
}

}  // namespace tokenstatus
