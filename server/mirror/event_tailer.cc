#include "server/mirror/event_tailer.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/types/optional.h"
#include "core/backoff.h"
#include "core/log.h"

namespace tokenstatus {
namespace {

// Bounds each store call beyond what it waits for by design (the store's own timeout is
// usually shorter).
constexpr absl::Duration kCallTimeout = absl::Seconds(10);
constexpr absl::Duration kRetryMin = absl::Milliseconds(100);

std::string Describe(const absl::Status& status) {
  return absl::StrCat("code=", absl::StatusCodeToString(status.code()), " error=\"",
                      status.message(), "\"");
}

// The token with `id` in the listing of the load: `listed` first tokens sorted by id, then
// the ones created during the load (`added`: id -> position). nullptr if none.
Token* FindLoaded(std::vector<Token>& tokens, size_t listed,
                  const absl::flat_hash_map<std::string, size_t>& added, const std::string& id) {
  auto end = tokens.begin() + static_cast<std::ptrdiff_t>(listed);
  auto it =
      std::lower_bound(tokens.begin(), end, id,
                       [](const Token& token, const std::string& key) { return token.id() < key; });
  if (it != end && it->id() == id) return &*it;
  auto found = added.find(id);
  return found == added.end() ? nullptr : &tokens[found->second];
}

}  // namespace

EventTailer::EventTailer(TokenStore& store, TokenMirror& mirror, EventTailerOptions options)
    : store_(store), mirror_(mirror), options_(options), jitter_(std::random_device()()) {}

void EventTailer::Start() {
  thread_ = std::thread([this] { Run(); });
}

EventTailer::~EventTailer() {
  {
    absl::MutexLock lock(&shared_->mu);
    shared_->stopping = true;
  }
  if (thread_.joinable()) thread_.join();
}

bool EventTailer::stopping() const {
  absl::MutexLock lock(&shared_->mu);
  return shared_->stopping;
}

absl::Time EventTailer::CallDeadline() const { return absl::Now() + kCallTimeout; }

template <typename T>
absl::StatusOr<T> EventTailer::Await(absl::FunctionRef<void(StoreCallback<T>)> call) {
  // Written by the callback under shared_->mu; it may outlive this wait (and the tailer).
  auto result = std::make_shared<absl::optional<absl::StatusOr<T>>>();
  call([shared = shared_, result](absl::StatusOr<T> value) {
    absl::MutexLock lock(&shared->mu);
    *result = std::move(value);
  });
  Shared& shared = *shared_;
  absl::MutexLock lock(&shared.mu);
  auto ready = [&shared, &result]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(shared.mu) {
    return result->has_value() || shared.stopping;
  };
  shared.mu.Await(absl::Condition(&ready));
  if (!result->has_value()) return absl::CancelledError("the event tailer is stopping");
  return std::move(**result);
}

bool EventTailer::Sleep(absl::Duration delay) {
  absl::MutexLock lock(&shared_->mu);
  return !shared_->mu.AwaitWithTimeout(absl::Condition(&shared_->stopping), delay);
}

void EventTailer::Run() {
  bool reload = true;
  int failures = 0;
  while (!stopping()) {
    absl::Status status;
    if (reload) {
      status = Load();
      if (status.ok()) reload = false;
    } else {
      status = Follow(reload);
    }
    if (status.ok()) {
      if (failures > 0) {
        Log(LogLevel::kInfo, absl::StrCat("event=mirror_tail_recovered failures=", failures,
                                          " revision=", mirror_.revision()));
        failures = 0;
      }
      continue;
    }
    if (absl::IsCancelled(status) && stopping()) break;
    if (failures++ == 0) {
      Log(LogLevel::kWarning, absl::StrCat("event=mirror_tail_failed ", Describe(status),
                                           " revision=", mirror_.revision()));
    }
    const Backoff backoff{.initial = kRetryMin, .max = options_.retry_max};
    if (!Sleep(backoff.Delay(failures, jitter_))) break;
  }
}

void EventTailer::StartScan(uint64_t generation, size_t lane, const ScanParams& params) {
  store_.Scan(params, CallDeadline(),
              [shared = shared_, generation, lane](absl::StatusOr<TokenPage> page) {
                absl::MutexLock lock(&shared->mu);
                if (shared->scan_generation != generation) return;  // given up on
                shared->pages.emplace_back(lane, std::move(page));
              });
}

absl::StatusOr<EventTailer::Listing> EventTailer::ScanAll() {
  absl::StatusOr<std::vector<std::string>> splits =
      Await<std::vector<std::string>>([&](StoreCallback<std::vector<std::string>> done) {
        store_.SplitIds(options_.load_lanes, CallDeadline(), std::move(done));
      });
  if (!splits.ok()) return splits.status();
  struct Lane {
    ScanParams params;
    bool started = false;
    std::vector<std::vector<Token>> pages;  // in id order
  };
  std::vector<Lane> lanes(splits->size() + 1);
  const uint64_t generation = ++scans_started_;
  {
    absl::MutexLock lock(&shared_->mu);
    shared_->scan_generation = generation;
  }
  // Whatever ends the scan, the pages still to come are dropped.
  absl::Cleanup end_scan = [this] {
    absl::MutexLock lock(&shared_->mu);
    shared_->scan_generation = 0;
    shared_->pages.clear();
  };
  for (size_t i = 0; i < lanes.size(); ++i) {
    lanes[i].params.after_id = i == 0 ? "" : (*splits)[i - 1];
    lanes[i].params.last_id = i < splits->size() ? (*splits)[i] : "";
    lanes[i].params.limit = options_.load_page_size;
    StartScan(generation, i, lanes[i].params);
  }
  Listing listing;
  listing.revision = -1;
  bool any_page = false;
  size_t count = 0;  // tokens in all lanes' pages
  size_t running = lanes.size();
  while (running > 0) {
    std::vector<std::pair<size_t, absl::StatusOr<TokenPage>>> pages;
    {
      Shared& shared = *shared_;
      absl::MutexLock lock(&shared.mu);
      auto ready = [&shared]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(shared.mu) {
        return !shared.pages.empty() || shared.stopping;
      };
      shared.mu.Await(absl::Condition(&ready));
      if (shared.stopping) return absl::CancelledError("the event tailer is stopping");
      pages.swap(shared.pages);
    }
    for (auto& [index, page] : pages) {
      if (!page.ok()) return page.status();
      Lane& lane = lanes[index];
      if (!any_page) {
        any_page = true;
        listing.epoch = page->epoch;
      } else if (page->epoch != listing.epoch) {
        return absl::AbortedError("the store's epoch changed during the load");
      }
      if (!lane.started) {
        // Every token of the lane is at least as new as its first page's revision.
        lane.started = true;
        if (listing.revision < 0 || page->revision < listing.revision) {
          listing.revision = page->revision;
          listing.chain = page->chain;
        }
      }
      count += page->tokens.size();
      lane.pages.push_back(std::move(page->tokens));
      if (page->next_after_id.empty()) {
        --running;
      } else {
        lane.params.after_id = std::move(page->next_after_id);
        StartScan(generation, index, lane.params);
      }
    }
  }
  listing.tokens.reserve(count);
  for (Lane& lane : lanes) {
    for (std::vector<Token>& tokens : lane.pages) {
      for (Token& token : tokens) listing.tokens.push_back(std::move(token));
    }
  }
  return listing;
}

absl::Status EventTailer::Load() {
  const absl::Time started = absl::Now();
  mirror_.BeginLoad();
  absl::StatusOr<Listing> listing = ScanAll();
  if (!listing.ok()) return listing.status();
  std::vector<Token> tokens = std::move(listing->tokens);
  int64_t revision = listing->revision;  // the head the load starts from
  const std::string epoch = std::move(listing->epoch);
  std::string chain = std::move(listing->chain);  // the history mark at `revision`

  // Replay the changes made since the first page onto the listing. The first read starts one
  // event early: the event of the listing's revision must carry the listing's mark, or the
  // events after it belong to another history (the store was replaced during the load).
  const size_t listed = tokens.size();
  absl::flat_hash_map<std::string, size_t> added;
  bool linked = revision == 0;  // whether the events read on are known to follow the listing
  while (true) {
    const int64_t after = linked ? revision : revision - 1;
    absl::StatusOr<std::vector<TokenEvent>> events =
        Await<std::vector<TokenEvent>>([&](StoreCallback<std::vector<TokenEvent>> done) {
          store_.ReadEvents(after, options_.batch_size, CallDeadline(), std::move(done));
        });
    if (!events.ok()) return events.status();
    const bool last_read = static_cast<int>(events->size()) < options_.batch_size;
    if (!linked) {
      linked = true;
      if (!events->empty() && events->front().token().revision() == revision) {
        if (events->front().chain() != chain) {
          return absl::AbortedError("the store's history was replaced during the load");
        }
        events->erase(events->begin());
      }
    }
    if (events->empty()) break;
    if (!Continues(revision, *events)) {
      return absl::AbortedError(
          absl::StrCat("the events after revision ", revision, " were trimmed during the load"));
    }
    revision = events->back().token().revision();
    chain = events->back().chain();
    for (TokenEvent& event : *events) {
      Token* loaded = FindLoaded(tokens, listed, added, event.token().id());
      if (loaded == nullptr) {
        added.emplace(event.token().id(), tokens.size());
        tokens.push_back(std::move(*event.mutable_token()));
      } else if (event.token().revision() > loaded->revision()) {
        *loaded = std::move(*event.mutable_token());
      }
    }
    if (last_read) break;
  }

  absl::StatusOr<StoreHead> head = Await<StoreHead>(
      [&](StoreCallback<StoreHead> done) { store_.ReadHead(CallDeadline(), std::move(done)); });
  if (!head.ok()) return head.status();
  if (head->epoch != epoch || head->revision < revision ||
      (head->revision == revision && head->chain != chain)) {
    return absl::AbortedError("the store's history was replaced during the load");
  }
  const size_t count = tokens.size();
  mirror_.Reset(std::move(tokens), revision, epoch, chain);
  Log(LogLevel::kInfo,
      absl::StrCat("event=mirror_loaded tokens=", count, " revision=", revision, " epoch=", epoch,
                   " duration=", absl::FormatDuration(absl::Now() - started)));
  return absl::OkStatus();
}

absl::Status EventTailer::Follow(bool& reload) {
  const int64_t revision = mirror_.revision();
  const std::string epoch = mirror_.epoch();
  const std::string chain = mirror_.chain();
  absl::StatusOr<EventBatch> batch = Await<EventBatch>([&](StoreCallback<EventBatch> done) {
    store_.WaitEvents(revision, options_.batch_size, options_.block,
                      absl::Now() + options_.block + kCallTimeout, std::move(done));
  });
  if (!batch.ok()) return batch.status();
  const char* why = nullptr;
  // A dataset that was empty when loaded gets its epoch with its first change: not a reset.
  const bool first_epoch = epoch.empty() && revision == 0;
  if (batch->head.epoch != epoch && !first_epoch) {
    why = "new_epoch";
  } else if (batch->head.revision < revision) {
    why = "revision_went_back";
  } else if (!batch->events.empty()) {
    if (!Continues(revision, batch->events)) {
      why = "events_trimmed";
    } else if (batch->prev_chain != chain) {
      // The next revision exists, but in another history than the one applied so far.
      why = "history_diverged";
    } else {
      mirror_.Apply(std::move(batch->events), batch->head.epoch);
      return absl::OkStatus();
    }
  } else if (batch->head.revision == revision && batch->head.chain != chain) {
    // Nothing new, and the head is at the mirror's revision, but with another mark.
    why = "history_diverged";
  } else if (batch->head.revision > revision) {
    // The head is ahead but nothing came: the next events were written just after the read, or
    // the stream no longer holds them.
    absl::StatusOr<std::vector<TokenEvent>> next =
        Await<std::vector<TokenEvent>>([&](StoreCallback<std::vector<TokenEvent>> done) {
          store_.ReadEvents(revision, 1, CallDeadline(), std::move(done));
        });
    if (!next.ok()) return next.status();
    if (!Continues(revision, *next)) why = "events_trimmed";
  }
  if (why != nullptr) {
    Log(LogLevel::kWarning,
        absl::StrCat("event=mirror_reload reason=", why, " revision=", revision, " epoch=", epoch,
                     " store_revision=", batch->head.revision, " store_epoch=", batch->head.epoch));
    if (options_.on_reload) options_.on_reload(why);
    reload = true;
  }
  return absl::OkStatus();
}

bool EventTailer::Continues(int64_t revision, const std::vector<TokenEvent>& events) {
  if (events.empty()) return false;
  for (const TokenEvent& event : events) {
    if (event.token().revision() != ++revision) return false;
  }
  return true;
}

}  // namespace tokenstatus
