#include "server/mirror/token_mirror.h"

#include <algorithm>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/commit_time.h"
#include "core/status_util.h"
#include "core/validation.h"

namespace tokenstatus {
namespace {

// A state's index in the stats' counts (an unknown value counts as unspecified).
size_t StateIndex(int state) { return state >= 0 && state < 4 ? static_cast<size_t>(state) : 0; }

absl::Status NotReady() {
  return MakeError(absl::StatusCode::kUnavailable, reason::kMirrorNotReady,
                   "the token mirror has not loaded yet");
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
       const std::string& epoch, const std::string& chain)
      : tokens_(tokens), accounts_(accounts), revision_(revision), epoch_(epoch), chain_(chain) {}

  int64_t revision() const override { return revision_; }
  const std::string& epoch() const override { return epoch_; }
  const std::string& chain() const override { return chain_; }
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
  size_t CountTokens(absl::string_view account_id) const override {
    if (account_id.empty()) return tokens_.size();
    auto account = accounts_.find(account_id);
    return account == accounts_.end() ? 0 : account->second.size();
  }
  std::vector<std::shared_ptr<const Token>> CaptureTokens(
      absl::string_view account_id) const override {
    std::vector<std::shared_ptr<const Token>> captured;
    captured.reserve(CountTokens(account_id));
    if (account_id.empty()) {
      for (const auto& [id, token] : tokens_) captured.push_back(token);
      return captured;
    }
    auto account = accounts_.find(account_id);
    if (account == accounts_.end()) return captured;
    for (const auto& [id, it] : account->second) captured.push_back(it->second);
    return captured;
  }

 private:
  const TokenMap& tokens_;
  const AccountIndex& accounts_;
  const int64_t revision_;
  const std::string& epoch_;
  const std::string& chain_;
};

TokenMirror::TokenMirror() : applied_(kAppliedEvents) {}

TokenMirror::~TokenMirror() = default;

void TokenMirror::SetListener(MirrorListener* listener) {
  absl::MutexLock lock(&mu_);
  listener_ = listener;
}

bool TokenMirror::loaded() const {
  absl::ReaderMutexLock lock(&mu_);
  return loaded_;
}

TokenMirror::Stats TokenMirror::stats() const {
  Stats stats;
  stats.revision = reached_.load(std::memory_order_relaxed);
  for (size_t i = 0; i < stats.tokens_by_state.size(); ++i) {
    stats.tokens_by_state[i] = tokens_by_state_[i].load(std::memory_order_relaxed);
  }
  const int64_t nanos = newest_commit_nanos_.load(std::memory_order_relaxed);
  if (nanos != std::numeric_limits<int64_t>::min())
    stats.newest_commit = absl::FromUnixNanos(nanos);
  return stats;
}

int64_t TokenMirror::revision() const {
  absl::ReaderMutexLock lock(&mu_);
  return revision_;
}

std::string TokenMirror::epoch() const {
  absl::ReaderMutexLock lock(&mu_);
  return epoch_;
}

std::string TokenMirror::chain() const {
  absl::ReaderMutexLock lock(&mu_);
  return chain_;
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

void TokenMirror::WhenRevisionReached(int64_t min_revision, absl::Time deadline,
                                      absl::AnyInvocable<void(absl::Status)> done) {
  waiters_.Add(min_revision, deadline, std::move(done));
}

void TokenMirror::WhenApplied(const Token& committed, absl::Time deadline,
                              absl::AnyInvocable<void(absl::Status)> done) {
  const uint64_t loads_before = loads_begun_.load();
  waiters_.Add(committed.revision(), deadline, std::move(done),
               [this, committed, fingerprint = FingerprintOf(committed), loads_before] {
                 return Applied(committed, fingerprint, loads_before);
               });
}

uint64_t TokenMirror::FingerprintOf(const Token& token) {
  return absl::HashOf(token.id(), token.revision(), static_cast<int>(token.state()),
                      token.update_time().seconds(), token.update_time().nanos(),
                      token.updated_by());
}

bool TokenMirror::Applied(const Token& committed, uint64_t fingerprint,
                          uint64_t loads_before) const {
  absl::ReaderMutexLock lock(&mu_);
  const AppliedEvent& event = applied_[static_cast<size_t>(committed.revision()) % kAppliedEvents];
  if (event.revision == committed.revision()) return event.fingerprint == fingerprint;
  if (loaded_by_ > loads_before && loaded_revision_ >= committed.revision()) return true;
  auto it = tokens_.find(committed.id());
  return it != tokens_.end() && FingerprintOf(*it->second) == fingerprint;
}

absl::Status TokenMirror::ReadConsistent(absl::FunctionRef<void(const MirrorView&)> fn) const {
  absl::ReaderMutexLock lock(&mu_);
  if (!loaded_) return NotReady();
  fn(View(tokens_, accounts_, revision_, epoch_, chain_));
  return absl::OkStatus();
}

void TokenMirror::BeginLoad() { loads_begun_.fetch_add(1); }

void TokenMirror::Reset(std::vector<Token> tokens, int64_t revision, std::string epoch,
                        std::string chain) {
  // Built without the lock, swapped in under it; the old state is freed after it.
  TokenMap new_tokens;
  AccountIndex new_accounts;
  std::array<int64_t, 4> by_state{};
  absl::Time newest_commit = absl::InfinitePast();
  for (Token& token : tokens) {
    auto shared = std::make_shared<const Token>(std::move(token));
    const int previous = Put(shared, new_tokens, new_accounts);
    if (previous >= 0) --by_state[StateIndex(previous)];
    ++by_state[StateIndex(shared->state())];
    newest_commit = std::max(newest_commit, CommitTimeOf(*shared));
  }
  tokens.clear();
  {
    absl::MutexLock lock(&mu_);
    tokens_.swap(new_tokens);
    accounts_.swap(new_accounts);
    revision_ = revision;
    epoch_ = std::move(epoch);
    chain_ = std::move(chain);
    std::fill(applied_.begin(), applied_.end(), AppliedEvent());
    loaded_by_ = loads_begun_.load();
    loaded_revision_ = revision;
    for (size_t i = 0; i < by_state.size(); ++i) tokens_by_state_[i].store(by_state[i]);
    newest_commit_nanos_.store(newest_commit == absl::InfinitePast()
                                   ? std::numeric_limits<int64_t>::min()
                                   : absl::ToUnixNanos(newest_commit));
    const bool first = !loaded_;
    loaded_ = true;
    if (!first && listener_ != nullptr) listener_->OnReset(epoch_, revision_, chain_);
    reached_.store(revision_);
  }
  waiters_.Changed();
}

void TokenMirror::Apply(std::vector<TokenEvent> events, absl::string_view epoch) {
  if (events.empty()) return;
  std::vector<std::shared_ptr<const TokenEvent>> shared;
  shared.reserve(events.size());
  for (TokenEvent& event : events) {
    shared.push_back(std::make_shared<const TokenEvent>(std::move(event)));
  }
  {
    absl::MutexLock lock(&mu_);
    for (const std::shared_ptr<const TokenEvent>& event : shared) {
      // The stored token shares the event's allocation: one copy per change.
      const int previous =
          Put(std::shared_ptr<const Token>(event, &event->token()), tokens_, accounts_);
      if (previous >= 0) tokens_by_state_[StateIndex(previous)].fetch_sub(1);
      tokens_by_state_[StateIndex(event->token().state())].fetch_add(1);
      const int64_t revision = event->token().revision();
      applied_[static_cast<size_t>(revision) % kAppliedEvents] = {revision,
                                                                  FingerprintOf(event->token())};
    }
    if (epoch_.empty() && revision_ == 0) epoch_ = std::string(epoch);
    revision_ = shared.back()->token().revision();
    chain_ = shared.back()->chain();
    newest_commit_nanos_.store(absl::ToUnixNanos(CommitTimeOf(shared.back()->token())));
    if (listener_ != nullptr) listener_->OnChanges(shared, revision_, epoch_);
    reached_.store(revision_);
  }
  waiters_.Changed();
}

int TokenMirror::Put(std::shared_ptr<const Token> token, TokenMap& tokens, AccountIndex& accounts) {
  // A load lists tokens in id order: a token past the last one is appended without a search.
  auto it = tokens.end();
  if (!tokens.empty() && !(tokens.rbegin()->first < token->id())) {
    it = tokens.lower_bound(token->id());
  }
  const bool inserted = it == tokens.end() || it->first != token->id();
  if (inserted) it = tokens.emplace_hint(it, token->id(), nullptr);
  const int previous = inserted ? -1 : it->second->state();
  it->second = std::move(token);
  if (inserted) accounts[it->second->account_id()].emplace(it->first, it);
  return previous;
}

}  // namespace tokenstatus
