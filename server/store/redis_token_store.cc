#include "server/store/redis_token_store.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/optional.h"
#include "core/status_util.h"
#include "core/token_secret.h"
#include "core/token_state.h"
#include "core/validation.h"
#include "server/redis/redis_reply.h"
#include "server/store/redis_scripts.h"
#include "server/store/token_record.h"

namespace tokenstatus {
namespace {

// The one mapping of script refusals ("<REASON> <detail>", redis_scripts.h) to the errors of
// the TokenStore contract. Other error replies map as RedisErrorToStatus.
absl::Status ScriptErrorToStatus(absl::string_view message, absl::string_view token_id) {
  struct Refusal {
    absl::string_view reason;
    absl::StatusCode code;
    absl::string_view what;
  };
  static const Refusal kRefusals[] = {
      {reason::kTokenNotFound, absl::StatusCode::kNotFound, "does not exist"},
      {reason::kTokenAlreadyExists, absl::StatusCode::kAlreadyExists, "already exists"},
      {reason::kTokenDeleted, absl::StatusCode::kFailedPrecondition, "is deleted"},
      {reason::kTokenAlreadyActive, absl::StatusCode::kFailedPrecondition, "is already active"},
      {reason::kTokenAlreadyDisabled, absl::StatusCode::kFailedPrecondition, "is already disabled"},
  };
  const absl::string_view code = ErrorCode(message);
  for (const Refusal& refusal : kRefusals) {
    if (code == refusal.reason) {
      return MakeError(refusal.code, refusal.reason,
                       absl::StrCat("token ", token_id, " ", refusal.what));
    }
  }
  if (code == reason::kRevisionMismatch) {
    const absl::string_view current = ErrorDetail(message);
    return MakeError(
        absl::StatusCode::kAborted, reason::kRevisionMismatch,
        absl::StrCat("token ", token_id, " has revision ", current, ", not the expected one"),
        {{"current_revision", current}});
  }
  return RedisErrorToStatus(message);
}

// The reply of a script call, or its failure (transport or error reply) as a status.
absl::StatusOr<const redisReply*> ScriptReply(absl::StatusOr<const redisReply*> reply,
                                              absl::string_view token_id) {
  if (reply.ok() && (*reply)->type == REDIS_REPLY_ERROR) {
    return ScriptErrorToStatus(ReplyText(**reply), token_id);
  }
  return reply;
}

absl::StatusOr<Token> ParseRecord(const redisReply& reply) {
  absl::StatusOr<std::vector<absl::string_view>> fields = ReplyStrings(reply);
  if (!fields.ok()) return fields.status();
  return TokenFromFields(*fields);
}

// The reply of a script that returns a record (Create).
absl::StatusOr<Token> ParseRecordReply(absl::StatusOr<const redisReply*> reply,
                                       absl::string_view token_id) {
  absl::StatusOr<const redisReply*> checked = ScriptReply(std::move(reply), token_id);
  if (!checked.ok()) return checked.status();
  return ParseRecord(**checked);
}

// A script reply {head, record}: the head element, still to be parsed (it points into the
// reply), and the parsed record. `what` describes a reply of another shape (UnexpectedReply).
struct HeadAndRecord {
  const redisReply* head;
  Token token;
};

absl::StatusOr<HeadAndRecord> ParseHeadAndRecordReply(absl::StatusOr<const redisReply*> reply,
                                                      absl::string_view token_id,
                                                      absl::string_view what) {
  absl::StatusOr<const redisReply*> checked = ScriptReply(std::move(reply), token_id);
  if (!checked.ok()) return checked.status();
  absl::StatusOr<absl::Span<const redisReply* const>> parts = ReplyArray(**checked);
  if (!parts.ok()) return parts.status();
  if (parts->size() != 2) return UnexpectedReply(what);
  absl::StatusOr<Token> token = ParseRecord(*(*parts)[1]);
  if (!token.ok()) return token.status();
  return HeadAndRecord{(*parts)[0], *std::move(token)};
}

// {previous state, record}.
absl::StatusOr<AppliedTransition> ParseApplyReply(absl::StatusOr<const redisReply*> reply,
                                                  absl::string_view token_id) {
  absl::StatusOr<HeadAndRecord> parsed = ParseHeadAndRecordReply(
      std::move(reply), token_id, "apply: expected {previous state, record}");
  if (!parsed.ok()) return parsed.status();
  absl::StatusOr<Token::State> previous_state = StateFromField(ReplyText(*parsed->head));
  if (!previous_state.ok()) return previous_state.status();
  return AppliedTransition{std::move(parsed->token), *previous_state};
}

// {revision, record}.
absl::StatusOr<TokenAtRevision> ParseGetReply(absl::StatusOr<const redisReply*> reply,
                                              absl::string_view token_id) {
  absl::StatusOr<HeadAndRecord> parsed =
      ParseHeadAndRecordReply(std::move(reply), token_id, "get: expected {revision, record}");
  if (!parsed.ok()) return parsed.status();
  absl::StatusOr<int64_t> revision = ReplyInteger(*parsed->head);
  if (!revision.ok()) return revision.status();
  return TokenAtRevision{std::move(parsed->token), *revision};
}

// {revision, epoch, chain, cursor, record...}.
absl::StatusOr<TokenPage> ParseListReply(absl::StatusOr<const redisReply*> reply) {
  absl::StatusOr<const redisReply*> checked = ScriptReply(std::move(reply), "");
  if (!checked.ok()) return checked.status();
  absl::StatusOr<absl::Span<const redisReply* const>> parts = ReplyArray(**checked);
  if (!parts.ok()) return parts.status();
  if (parts->size() < 4) {
    return UnexpectedReply("list: expected {revision, epoch, chain, cursor, ...}");
  }
  TokenPage page;
  absl::StatusOr<int64_t> revision = ReplyInteger(*(*parts)[0]);
  if (!revision.ok()) return revision.status();
  page.revision = *revision;
  page.epoch = std::string(ReplyText(*(*parts)[1]));
  page.chain = std::string(ReplyText(*(*parts)[2]));
  page.next_after_id = std::string(ReplyText(*(*parts)[3]));
  page.tokens.reserve(parts->size() - 4);
  for (const redisReply* record : parts->subspan(4)) {
    absl::StatusOr<Token> token = ParseRecord(*record);
    if (!token.ok()) return token.status();
    page.tokens.push_back(*std::move(token));
  }
  return page;
}

// Stream entries (XRANGE's reply, one stream of XREAD's): {{entry id, {field, value, ...}}, ...}.
// The first entry's `prev` mark goes to `*first_prev` if non-null.
absl::StatusOr<std::vector<TokenEvent>> ParseEntries(const redisReply& reply,
                                                     std::string* first_prev = nullptr) {
  absl::StatusOr<absl::Span<const redisReply* const>> entries = ReplyArray(reply);
  if (!entries.ok()) return entries.status();
  std::vector<TokenEvent> events;
  events.reserve(entries->size());
  for (const redisReply* entry : *entries) {
    absl::StatusOr<absl::Span<const redisReply* const>> parts = ReplyArray(*entry);
    if (!parts.ok()) return parts.status();
    if (parts->size() != 2) return UnexpectedReply("stream entry: expected {id, fields}");
    absl::StatusOr<std::vector<absl::string_view>> fields = ReplyStrings(*(*parts)[1]);
    if (!fields.ok()) return fields.status();
    absl::StatusOr<TokenEvent> event =
        TokenEventFromFields(*fields, events.empty() ? first_prev : nullptr);
    if (!event.ok()) return event.status();
    events.push_back(*std::move(event));
  }
  return events;
}

absl::StatusOr<std::vector<TokenEvent>> ParseEvents(absl::StatusOr<const redisReply*> reply) {
  absl::StatusOr<const redisReply*> checked = CheckReply(std::move(reply));
  if (!checked.ok()) return checked.status();
  return ParseEntries(**checked);
}

// {more, entries}.
absl::StatusOr<TokenHistoryPage> ParseHistoryReply(absl::StatusOr<const redisReply*> reply,
                                                   absl::string_view token_id) {
  absl::StatusOr<const redisReply*> checked = ScriptReply(std::move(reply), token_id);
  if (!checked.ok()) return checked.status();
  absl::StatusOr<absl::Span<const redisReply* const>> parts = ReplyArray(**checked);
  if (!parts.ok()) return parts.status();
  if (parts->size() != 2) return UnexpectedReply("history: expected {more, entries}");
  absl::StatusOr<std::vector<TokenEvent>> events = ParseEntries(*(*parts)[1]);
  if (!events.ok()) return events.status();
  TokenHistoryPage page;
  page.events = *std::move(events);
  page.more = ReplyText(*(*parts)[0]) == "1";
  return page;
}

// The events of an XREAD and the mark before the first (EventBatch without its head).
struct ReadEventsAndMark {
  std::vector<TokenEvent> events;
  std::string prev_chain;
};

// XREAD on one stream: nil (nothing came in time) or {{stream, entries}}.
absl::StatusOr<ReadEventsAndMark> ParseXreadReply(absl::StatusOr<const redisReply*> reply) {
  absl::StatusOr<const redisReply*> checked = CheckReply(std::move(reply));
  if (!checked.ok()) return checked.status();
  if ((*checked)->type == REDIS_REPLY_NIL) return ReadEventsAndMark();
  absl::StatusOr<absl::Span<const redisReply* const>> streams = ReplyArray(**checked);
  if (!streams.ok()) return streams.status();
  if (streams->size() != 1) return UnexpectedReply("xread: expected one stream");
  absl::StatusOr<absl::Span<const redisReply* const>> stream = ReplyArray(*(*streams)[0]);
  if (!stream.ok()) return stream.status();
  if (stream->size() != 2) return UnexpectedReply("xread: expected {stream, entries}");
  ReadEventsAndMark read;
  absl::StatusOr<std::vector<TokenEvent>> events = ParseEntries(*(*stream)[1], &read.prev_chain);
  if (!events.ok()) return events.status();
  read.events = *std::move(events);
  return read;
}

// {revision, epoch, chain}.
absl::StatusOr<StoreHead> ParseHeadReply(absl::StatusOr<const redisReply*> reply) {
  absl::StatusOr<const redisReply*> checked = ScriptReply(std::move(reply), "");
  if (!checked.ok()) return checked.status();
  absl::StatusOr<absl::Span<const redisReply* const>> parts = ReplyArray(**checked);
  if (!parts.ok()) return parts.status();
  if (parts->size() != 3) return UnexpectedReply("head: expected {revision, epoch, chain}");
  absl::StatusOr<int64_t> revision = ReplyInteger(*(*parts)[0]);
  if (!revision.ok()) return revision.status();
  return StoreHead{*revision, std::string(ReplyText(*(*parts)[1])),
                   std::string(ReplyText(*(*parts)[2]))};
}

// Joins the two replies of WaitEvents (events, then head; in either order when the blocking
// client has more than one connection) and calls `done` once both are in.
class EventBatchJoin {
 public:
  explicit EventBatchJoin(StoreCallback<EventBatch> done) : done_(std::move(done)) {}

  void SetEvents(absl::StatusOr<ReadEventsAndMark> events) {
    absl::MutexLock lock(&mu_);
    events_ = std::move(events);
    MaybeFinish();
  }
  void SetHead(absl::StatusOr<StoreHead> head) {
    absl::MutexLock lock(&mu_);
    head_ = std::move(head);
    MaybeFinish();
  }

 private:
  void MaybeFinish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!events_.has_value() || !head_.has_value()) return;
    if (!events_->ok()) {
      done_(events_->status());
    } else if (!head_->ok()) {
      done_(head_->status());
    } else {
      done_(EventBatch{std::move((*events_)->events), std::move((*events_)->prev_chain),
                       *std::move(*head_)});
    }
  }

  absl::Mutex mu_;
  absl::optional<absl::StatusOr<ReadEventsAndMark>> events_ ABSL_GUARDED_BY(mu_);
  absl::optional<absl::StatusOr<StoreHead>> head_ ABSL_GUARDED_BY(mu_);
  StoreCallback<EventBatch> done_ ABSL_GUARDED_BY(mu_);
};

// The head and ids of one Scan page: {revision, epoch, chain, ids} (ScanIdsScript).
struct ScanIds {
  TokenPage page;  // head and cursor set, no tokens yet
  std::vector<std::string> ids;
};

absl::StatusOr<ScanIds> ParseScanIdsReply(absl::StatusOr<const redisReply*> reply, size_t limit) {
  absl::StatusOr<const redisReply*> checked = ScriptReply(std::move(reply), "");
  if (!checked.ok()) return checked.status();
  absl::StatusOr<absl::Span<const redisReply* const>> parts = ReplyArray(**checked);
  if (!parts.ok()) return parts.status();
  if (parts->size() != 4) return UnexpectedReply("scan: expected {revision, epoch, chain, ids}");
  ScanIds scan;
  absl::StatusOr<int64_t> revision = ReplyInteger(*(*parts)[0]);
  if (!revision.ok()) return revision.status();
  scan.page.revision = *revision;
  scan.page.epoch = std::string(ReplyText(*(*parts)[1]));
  scan.page.chain = std::string(ReplyText(*(*parts)[2]));
  absl::StatusOr<std::vector<std::string>> ids = ReplyStringCopies(*(*parts)[3]);
  if (!ids.ok()) return ids.status();
  scan.ids = *std::move(ids);
  if (scan.ids.size() > limit) {
    scan.ids.resize(limit);
    scan.page.next_after_id = scan.ids.back();
  }
  return scan;
}

// Collects the records of one Scan page, read one HGETALL each (in any order), and calls
// `done` once with the page: after the last record came, or at the first failure.
class ScanPageJoin {
 public:
  ScanPageJoin(TokenPage page, std::vector<std::string> ids, StoreCallback<TokenPage> done)
      : ids_(std::move(ids)),
        page_(std::move(page)),
        remaining_(ids_.size()),
        done_(std::move(done)) {
    page_.tokens.resize(ids_.size());
  }

  // The ids of the page's records, in order.
  const std::vector<std::string>& ids() const { return ids_; }

  // The reply to HGETALL of the record of ids()[index].
  void SetRecord(size_t index, absl::StatusOr<const redisReply*> reply) {
    absl::StatusOr<Token> token = ParseScannedRecord(std::move(reply), ids_[index]);
    StoreCallback<TokenPage> done;
    absl::StatusOr<TokenPage> result;
    {
      absl::MutexLock lock(&mu_);
      if (done_ == nullptr) return;  // failed already
      if (!token.ok()) {
        result = token.status();
      } else {
        page_.tokens[index] = *std::move(token);
        if (--remaining_ > 0) return;
        result = std::move(page_);
      }
      done = std::move(done_);
      done_ = nullptr;
    }
    done(std::move(result));
  }

 private:
  static absl::StatusOr<Token> ParseScannedRecord(absl::StatusOr<const redisReply*> reply,
                                                  absl::string_view id) {
    absl::StatusOr<const redisReply*> checked = CheckReply(std::move(reply));
    if (!checked.ok()) return checked.status();
    if ((*checked)->type == REDIS_REPLY_ARRAY && (*checked)->elements == 0) {
      return MakeError(absl::StatusCode::kAborted, reason::kStoreError,
                       absl::StrCat("token ", id,
                                    " was listed but has no record: the dataset was replaced "
                                    "during the scan"));
    }
    return ParseRecord(**checked);
  }

  const std::vector<std::string> ids_;
  absl::Mutex mu_;
  TokenPage page_ ABSL_GUARDED_BY(mu_);
  size_t remaining_ ABSL_GUARDED_BY(mu_);
  StoreCallback<TokenPage> done_ ABSL_GUARDED_BY(mu_);  // null once called
};

absl::string_view TransitionName(Transition transition) {
  switch (transition) {
    case Transition::kEnable:
      return "ENABLE";
    case Transition::kDisable:
      return "DISABLE";
    case Transition::kDelete:
      return "DELETE";
  }
  return "";
}

}  // namespace

RedisTokenStore::RedisTokenStore(RedisClient& client, RedisClient& blocking_client,
                                 RedisTokenStoreOptions options)
    : client_(client), blocking_client_(blocking_client), options_(std::move(options)) {}

std::string RedisTokenStore::Key(absl::string_view suffix) const {
  return absl::StrCat(options_.key_prefix, ":", suffix);
}

std::vector<std::string> RedisTokenStore::ChangeKeys(absl::string_view token_id) const {
  return {Key(absl::StrCat("t:", token_id)), Key("rev"), Key("events"), Key("meta"),
          Key(absl::StrCat("h:", token_id))};
}

absl::StatusOr<std::vector<std::string>> RedisTokenStore::ChangeArgs(
    absl::string_view actor) const {
  absl::StatusOr<std::string> epoch = GenerateEpoch();
  if (!epoch.ok()) return epoch.status();
  return std::vector<std::string>{options_.key_prefix, *std::move(epoch),
                                  absl::StrCat(options_.event_retention), std::string(actor)};
}

absl::Time RedisTokenStore::CallDeadline(absl::Time deadline) const {
  return std::min(deadline, absl::Now() + options_.call_timeout);
}

void RedisTokenStore::Create(CreateTokenParams params, absl::Time deadline,
                             StoreCallback<Token> done) {
  absl::StatusOr<std::vector<std::string>> args = ChangeArgs(params.actor);
  if (!args.ok()) {
    done(args.status());
    return;
  }
  args->push_back(params.token_id);
  args->push_back(std::move(params.account_id));
  args->push_back(std::move(params.name));
  args->push_back(std::move(params.description));
  args->push_back(Sha256ToHex(params.secret_sha256));
  std::vector<std::string> keys = ChangeKeys(params.token_id);
  CreateTokenScript().Run(
      client_, std::move(keys), *std::move(args), CallDeadline(deadline),
      [this, id = std::move(params.token_id), deadline,
       done = std::move(done)](absl::StatusOr<const redisReply*> reply) mutable {
        absl::StatusOr<Token> token = ParseRecordReply(std::move(reply), id);
        const int64_t revision = token.ok() ? token->revision() : 0;
        ConfirmReplicated(std::move(token), revision, deadline, std::move(done));
      });
}

void RedisTokenStore::Apply(TransitionParams params, absl::Time deadline,
                            StoreCallback<AppliedTransition> done) {
  absl::StatusOr<std::vector<std::string>> args = ChangeArgs(params.actor);
  if (!args.ok()) {
    done(args.status());
    return;
  }
  args->push_back(std::string(TransitionName(params.transition)));
  args->push_back(absl::StrCat(std::max<int64_t>(params.expected_revision, 0)));
  args->push_back(std::move(params.reason));
  std::vector<std::string> keys = ChangeKeys(params.token_id);
  ApplyTransitionScript().Run(
      client_, std::move(keys), *std::move(args), CallDeadline(deadline),
      [this, id = std::move(params.token_id), deadline,
       done = std::move(done)](absl::StatusOr<const redisReply*> reply) mutable {
        absl::StatusOr<AppliedTransition> applied = ParseApplyReply(std::move(reply), id);
        const int64_t revision = applied.ok() ? applied->token.revision() : 0;
        ConfirmReplicated(std::move(applied), revision, deadline, std::move(done));
      });
}

template <typename T>
void RedisTokenStore::ConfirmReplicated(absl::StatusOr<T> result, int64_t revision,
                                        absl::Time deadline, StoreCallback<T> done) const {
  if (!result.ok() || options_.min_replicas_acked <= 0) {
    done(std::move(result));
    return;
  }
  const absl::Time now = absl::Now();
  // WAIT 0 would wait forever: at least 1 ms.
  const int64_t wait_ms = std::max<int64_t>(
      absl::ToInt64Milliseconds(std::min(options_.replica_ack_timeout, deadline - now)), 1);
  client_.FollowUp(
      {"WAIT", absl::StrCat(options_.min_replicas_acked), absl::StrCat(wait_ms)},
      now + absl::Milliseconds(wait_ms) + options_.call_timeout,
      [needed = options_.min_replicas_acked, wait_ms, revision, result = std::move(result),
       done = std::move(done)](absl::StatusOr<const redisReply*> reply) mutable {
        absl::StatusOr<const redisReply*> checked = CheckReply(std::move(reply));
        absl::StatusOr<int64_t> acked =
            checked.ok() ? ReplyInteger(**checked) : absl::StatusOr<int64_t>(checked.status());
        if (acked.ok() && *acked >= needed) {
          done(std::move(result));
          return;
        }
        const std::string count = acked.ok() ? absl::StrCat(*acked) : "unknown";
        done(MakeError(
            absl::StatusCode::kUnavailable, reason::kReplicationUnconfirmed,
            absl::StrCat("the change at revision ", revision,
                         " was made on the Redis primary, but ", count, " of the ", needed,
                         " replicas required confirmed it within ", wait_ms,
                         " ms: it may or may not survive a failover",
                         acked.ok() ? "" : absl::StrCat(" (", acked.status().message(), ")")),
            {{"revision", absl::StrCat(revision)}, {"replicas_acked", count}}));
      });
}

void RedisTokenStore::Get(std::string token_id, absl::Time deadline,
                          StoreCallback<TokenAtRevision> done) {
  std::vector<std::string> keys = {Key(absl::StrCat("t:", token_id)), Key("rev")};
  GetTokenScript().Run(client_, std::move(keys), {}, CallDeadline(deadline),
                       [id = std::move(token_id),
                        done = std::move(done)](absl::StatusOr<const redisReply*> reply) mutable {
                         done(ParseGetReply(std::move(reply), id));
                       });
}

void RedisTokenStore::List(ListParams params, absl::Time deadline, StoreCallback<TokenPage> done) {
  const int page_size = std::clamp(params.page_size, 1, kMaxPageSize);
  const absl::string_view state = StateName(params.state);
  std::string index;
  if (!params.account_id.empty()) {
    index = Key(absl::StrCat("idx:acct:", params.account_id));
  } else if (!state.empty()) {
    index = Key(absl::StrCat("idx:state:", state));
  } else {
    index = Key(params.show_deleted ? "idx:all" : "idx:live");
  }
  ListTokensScript().Run(
      client_, {std::move(index), Key("rev"), Key("meta")},
      {options_.key_prefix, std::move(params.after_id), absl::StrCat(page_size),
       absl::StrCat(4 * page_size + 64), std::string(state), params.show_deleted ? "1" : "0"},
      CallDeadline(deadline),
      [done = std::move(done)](absl::StatusOr<const redisReply*> reply) mutable {
        done(ParseListReply(std::move(reply)));
      });
}

void RedisTokenStore::Scan(ScanParams params, absl::Time deadline, StoreCallback<TokenPage> done) {
  const size_t limit = static_cast<size_t>(std::clamp(params.limit, 1, kMaxScanSize));
  const absl::Time call_deadline = CallDeadline(deadline);
  // The callback holds the client (which runs it), not the store: it may run after the store is
  // gone.
  ScanIdsScript().Run(
      client_, {Key("idx:all"), Key("rev"), Key("meta")},
      {std::move(params.after_id), std::move(params.last_id), absl::StrCat(limit)}, call_deadline,
      [client = &client_, record_prefix = Key("t:"), limit, call_deadline,
       done = std::move(done)](absl::StatusOr<const redisReply*> reply) mutable {
        absl::StatusOr<ScanIds> scan = ParseScanIdsReply(std::move(reply), limit);
        if (!scan.ok() || scan->ids.empty()) {
          done(scan.ok() ? absl::StatusOr<TokenPage>(std::move(scan->page)) : scan.status());
          return;
        }
        // The head was read before any record: each record is at least as new as it.
        auto join = std::make_shared<ScanPageJoin>(std::move(scan->page), std::move(scan->ids),
                                                   std::move(done));
        for (size_t i = 0; i < join->ids().size(); ++i) {
          client->Command({"HGETALL", absl::StrCat(record_prefix, join->ids()[i])}, call_deadline,
                          [join, i](absl::StatusOr<const redisReply*> record) {
                            join->SetRecord(i, std::move(record));
                          });
        }
      });
}

void RedisTokenStore::SplitIds(int parts, absl::Time deadline,
                               StoreCallback<std::vector<std::string>> done) {
  SplitIdsScript().Run(client_, {Key("idx:all")},
                       {absl::StrCat(std::clamp(parts, 1, kMaxScanParts))}, CallDeadline(deadline),
                       [done = std::move(done)](absl::StatusOr<const redisReply*> reply) mutable {
                         absl::StatusOr<const redisReply*> checked =
                             ScriptReply(std::move(reply), "");
                         if (!checked.ok()) {
                           done(checked.status());
                           return;
                         }
                         done(ReplyStringCopies(**checked));
                       });
}

void RedisTokenStore::ReadEvents(int64_t after_revision, int max_count, absl::Time deadline,
                                 StoreCallback<std::vector<TokenEvent>> done) {
  if (max_count <= 0) {
    done(std::vector<TokenEvent>());
    return;
  }
  client_.Command(
      {"XRANGE", Key("events"), absl::StrCat("(", std::max<int64_t>(after_revision, 0), "-0"), "+",
       "COUNT", absl::StrCat(max_count)},
      CallDeadline(deadline),
      [done = std::move(done)](absl::StatusOr<const redisReply*> reply) mutable {
        done(ParseEvents(std::move(reply)));
      });
}

void RedisTokenStore::ReadHistory(std::string token_id, int64_t before_revision, int limit,
                                  absl::Time deadline, StoreCallback<TokenHistoryPage> done) {
  std::vector<std::string> keys = {Key(absl::StrCat("t:", token_id)),
                                   Key(absl::StrCat("h:", token_id)), Key("events")};
  ReadHistoryScript().Run(client_, std::move(keys),
                          {absl::StrCat(std::max<int64_t>(before_revision, 0)),
                           absl::StrCat(std::clamp(limit, 1, kMaxPageSize))},
                          CallDeadline(deadline),
                          [id = std::move(token_id), done = std::move(done)](
                              absl::StatusOr<const redisReply*> reply) mutable {
                            done(ParseHistoryReply(std::move(reply), id));
                          });
}

void RedisTokenStore::ReadHead(absl::Time deadline, StoreCallback<StoreHead> done) {
  ReadHeadOn(client_, CallDeadline(deadline), std::move(done));
}

void RedisTokenStore::ReadHeadOn(RedisClient& client, absl::Time deadline,
                                 StoreCallback<StoreHead> done) const {
  ReadHeadScript().Run(client, {Key("rev"), Key("meta")}, {}, deadline,
                       [done = std::move(done)](absl::StatusOr<const redisReply*> reply) mutable {
                         done(ParseHeadReply(std::move(reply)));
                       });
}

void RedisTokenStore::WaitEvents(int64_t after_revision, int max_count, absl::Duration block,
                                 absl::Time deadline, StoreCallback<EventBatch> done) {
  const absl::Time now = absl::Now();
  // XREAD BLOCK 0 would block forever: block at least 1 ms.
  const int64_t block_ms =
      std::max<int64_t>(absl::ToInt64Milliseconds(std::min(block, deadline - now)), 1);
  const absl::Time call_deadline = now + absl::Milliseconds(block_ms) + options_.call_timeout;
  auto join = std::make_shared<EventBatchJoin>(std::move(done));
  blocking_client_.Command(
      {"XREAD", "COUNT", absl::StrCat(std::max(max_count, 1)), "BLOCK", absl::StrCat(block_ms),
       "STREAMS", Key("events"), absl::StrCat(std::max<int64_t>(after_revision, 0), "-0")},
      call_deadline, [join](absl::StatusOr<const redisReply*> reply) {
        join->SetEvents(ParseXreadReply(std::move(reply)));
      });
  ReadHeadOn(blocking_client_, call_deadline,
             [join](absl::StatusOr<StoreHead> head) { join->SetHead(std::move(head)); });
}

}  // namespace tokenstatus
