#include "tests/chaos/history.h"

#include <time.h>

#include <algorithm>
#include <limits>
#include <set>
#include <unordered_set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "grpcpp/support/status.h"

namespace tokenstatus::chaos {
namespace {

std::string StateText(Token::State state) {
  return std::string(absl::StripPrefix(Token::State_Name(state), "STATE_"));
}

std::string TypeText(TokenEvent::Type type) {
  return std::string(absl::StripPrefix(TokenEvent::Type_Name(type), "TYPE_"));
}

std::string KindText(WatchTokensResponse::Kind kind) {
  return std::string(absl::StripPrefix(WatchTokensResponse::Kind_Name(kind), "KIND_"));
}

std::string CodeText(int code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

bool IsChange(OpType type) {
  return type == OpType::kCreate || type == OpType::kEnable || type == OpType::kDisable ||
         type == OpType::kDelete;
}

bool SameState(const TokenState& a, const TokenState& b) {
  return a.token_id == b.token_id && a.state == b.state && a.revision == b.revision;
}

// Whether a message of `epoch` at `revision` may come from `branch`: its epoch, or none at
// revision 0 (a dataset that is empty has no epoch yet; every history starts empty).
bool EpochMatches(const Branch& branch, const std::string& epoch, int64_t revision) {
  return epoch == branch.epoch() || (epoch.empty() && revision == 0);
}

// Collects violations and figures.
class Checker {
 public:
  explicit Checker(const History& history) : history_(history) {}

  Report Run() {
    report_.figures.faults = static_cast<int64_t>(history_.faults.size());
    if (history_.branches.empty() || history_.final_branch >= history_.branches.size()) {
      Add(ViolationKind::kStoreInconsistent, "checker", "no final store history to check against");
      return std::move(report_);
    }
    CheckStore();
    for (const Operation& op : history_.operations) CheckOperation(op);
    if (history_.attribute_every_change) CheckAttribution();
    for (const WatchLog& log : history_.watchers) CheckWatcher(log);
    for (const Answer& answer : history_.answers) CheckAnswer(answer);
    return std::move(report_);
  }

 private:
  const Branch& final_branch() const { return history_.branches[history_.final_branch]; }

  void Add(ViolationKind kind, std::string who, std::string detail) {
    report_.violations.push_back({kind, std::move(who), std::move(detail)});
  }

  // Redis's records against its event stream.
  void CheckStore() {
    if (!history_.final_records.has_value()) return;
    const auto& records = *history_.final_records;
    const auto& folded = final_branch().Final();
    for (const auto& [id, record] : records) {
      auto it = folded.find(id);
      if (it == folded.end()) {
        Add(ViolationKind::kStoreInconsistent, "redis",
            absl::StrCat("record ", record.ToString(), " has no change in the event stream"));
      } else if (!SameState(it->second, record) || it->second.account_id != record.account_id) {
        Add(ViolationKind::kStoreInconsistent, "redis",
            absl::StrCat("record ", record.ToString(), " but the event stream adds up to ",
                         it->second.ToString()));
      }
    }
    for (const auto& [id, state] : folded) {
      if (!records.contains(id)) {
        Add(ViolationKind::kStoreInconsistent, "redis",
            absl::StrCat("the event stream has ", state.ToString(), " but there is no record"));
      }
    }
  }

  // Whether a fault that replaced the store's history may have taken `op` with it.
  bool MayBeLost(const Operation& op) const {
    for (const Fault& fault : history_.faults) {
      if (fault.replaces_history && op.complete_ns > fault.keeps_before_ns &&
          op.invoke_ns < fault.end_ns) {
        return true;
      }
    }
    return false;
  }

  void CheckOperation(const Operation& op) {
    ++report_.figures.operations;
    if (IsChange(op.type)) {
      CheckChange(op);
    } else if (op.type == OpType::kGet || op.type == OpType::kVerify) {
      ++report_.figures.reads;
      CheckRead(op);
    } else {
      ++report_.figures.noise;
      CheckNoise(op);
    }
  }

  // Every change a store holds was made by an operation of the run that was acknowledged or
  // whose outcome is unknown: nothing else (a refused or garbage request) changed anything.
  void CheckAttribution() {
    std::set<std::string> made;
    for (const Operation& op : history_.operations) {
      if (IsChange(op.type) && op.outcome != Outcome::kFailed) made.insert(op.tag);
    }
    std::set<std::pair<int64_t, std::string>> reported;
    for (const Branch& branch : history_.branches) {
      for (const Change& change : branch.changes()) {
        if (made.contains(change.tag) || !reported.insert({change.revision, change.tag}).second) {
          continue;
        }
        Add(ViolationKind::kFailedChangeApplied, "redis",
            absl::StrCat("history '", branch.name(), "' holds ", change.ToString(),
                         ", made by no acknowledged or pending operation of the run"));
      }
    }
  }

  void CheckChange(const Operation& op) {
    ++report_.figures.changes;
    const std::string what = absl::StrCat(OpTypeName(op.type), " ", op.token_id, " [", op.tag, "]");
    switch (op.outcome) {
      case Outcome::kOk: {
        ++report_.figures.acknowledged;
        const Change* stored = final_branch().FindTag(op.tag);
        if (stored == nullptr) {
          ++report_.figures.lost;
          if (MayBeLost(op)) {
            ++report_.figures.lost_allowed;
            // Where it was kept, it must be as acknowledged.
            for (const Branch& branch : history_.branches) {
              const Change* kept = branch.FindTag(op.tag);
              if (kept != nullptr) CompareAck(op, what, *kept, branch);
            }
          } else {
            Add(ViolationKind::kLostAck, op.client,
                absl::StrCat(what, " acknowledged at revision ", op.token.revision, " (",
                             StateText(op.token.state), ") is not in the final store"));
          }
        } else {
          CompareAck(op, what, *stored, final_branch());
        }
        break;
      }
      case Outcome::kFailed:
        ++report_.figures.refused;
        CheckNotApplied(op, what);
        break;
      case Outcome::kUnknown:
        ++report_.figures.indeterminate;
        break;
    }
  }

  void CompareAck(const Operation& op, const std::string& what, const Change& stored,
                  const Branch& branch) {
    if (stored.revision != op.token.revision || stored.state != op.token.state ||
        stored.token_id != op.token_id) {
      Add(ViolationKind::kAckMismatch, op.client,
          absl::StrCat(what, " acknowledged as ", op.token.ToString(), " but history '",
                       branch.name(), "' holds ", stored.ToString()));
    }
  }

  void CheckNotApplied(const Operation& op, const std::string& what) {
    if (op.tag.empty()) return;
    for (const Branch& branch : history_.branches) {
      const Change* applied = branch.FindTag(op.tag);
      if (applied != nullptr) {
        Add(ViolationKind::kFailedChangeApplied, op.client,
            absl::StrCat(what, " was refused (", CodeText(op.code), ": ", op.error,
                         ") but history '", branch.name(), "' holds ", applied->ToString()));
      }
    }
  }

  void CheckRead(const Operation& op) {
    if (op.outcome != Outcome::kOk || !op.found) return;
    if (op.type == OpType::kGet) {
      if (op.served_revision <= 0) return;
      for (const Branch& branch : history_.branches) {
        if (op.served_revision > branch.head()) continue;
        std::optional<TokenState> held = branch.StateAt(op.token_id, op.served_revision);
        if (held.has_value() && SameState(*held, op.token)) return;
      }
      const Branch& final = final_branch();
      std::optional<TokenState> held = op.served_revision <= final.head()
                                           ? final.StateAt(op.token_id, op.served_revision)
                                           : std::nullopt;
      Add(ViolationKind::kWrongRead, op.client,
          absl::StrCat("GetToken served at revision ", op.served_revision, " answered ",
                       op.token.ToString(), "; no history held that (the final store ",
                       op.served_revision > final.head()
                           ? absl::StrCat("ends at revision ", final.head())
                           : absl::StrCat("had ", held.has_value() ? held->ToString() : "nothing"),
                       ")"));
      return;
    }
    // VerifyToken: the token's revision and state must be a change some history made.
    for (const Branch& branch : history_.branches) {
      const Change* change = branch.At(op.token.revision);
      if (change != nullptr && change->token_id == op.token_id && change->state == op.token.state) {
        return;
      }
    }
    Add(ViolationKind::kWrongRead, op.client,
        absl::StrCat("VerifyToken answered ", op.token.ToString(),
                     "; no history made that change"));
  }

  void CheckNoise(const Operation& op) {
    const bool allowed = op.code == static_cast<int>(grpc::StatusCode::UNAVAILABLE) ||
                         op.code == static_cast<int>(grpc::StatusCode::DEADLINE_EXCEEDED) ||
                         std::find(op.expected_codes.begin(), op.expected_codes.end(), op.code) !=
                             op.expected_codes.end();
    if (!allowed) {
      std::vector<std::string> expected;
      for (int code : op.expected_codes) expected.push_back(CodeText(code));
      Add(ViolationKind::kUnexpectedAnswer, op.client,
          absl::StrCat("garbage request [", op.tag, "] answered ", CodeText(op.code), " (",
                       op.error, "), expected one of ", absl::StrJoin(expected, ", ")));
    }
    CheckNotApplied(op, absl::StrCat("garbage request [", op.tag, "]"));
    if (op.token_id.empty()) return;
    for (const Branch& branch : history_.branches) {
      if (branch.Final().contains(op.token_id)) {
        Add(ViolationKind::kFailedChangeApplied, op.client,
            absl::StrCat("garbage request [", op.tag, "] answered ", CodeText(op.code),
                         " but history '", branch.name(), "' holds the token ", op.token_id,
                         " it would have created"));
      }
    }
  }

  // --- Watchers ---

  // What a watcher has established since its last RESET (or fresh start).
  struct Segment {
    std::vector<size_t> candidates;  // the histories consistent with it, final first
    int64_t position = -1;           // the revision it is up to date with; -1 before SYNCED
    std::vector<TokenState> snapshot;
    std::unordered_set<int64_t> seen;  // revisions of the changes received
  };

  std::vector<size_t> AllBranches() const {
    std::vector<size_t> all = {history_.final_branch};
    for (size_t i = 0; i < history_.branches.size(); ++i) {
      if (i != history_.final_branch) all.push_back(i);
    }
    return all;
  }

  // Why the snapshot `tokens` at `revision` is not `branch`'s state then; empty if it is.
  std::string SnapshotMismatch(const Branch& branch, int64_t revision, const std::string& account,
                               const std::vector<TokenState>& tokens) const {
    if (revision > branch.head()) {
      return absl::StrCat("history '", branch.name(), "' ends at revision ", branch.head());
    }
    std::map<std::string, const TokenState*> shown;
    for (const TokenState& token : tokens) {
      shown[token.token_id] = &token;
      if (!account.empty() && token.account_id != account) {
        return absl::StrCat("it holds ", token.ToString(), " of another account");
      }
      std::optional<TokenState> held = branch.StateAt(token.token_id, revision);
      if (!held.has_value()) {
        return absl::StrCat("it holds ", token.ToString(), ", which history '", branch.name(),
                            "' did not have at revision ", revision);
      }
      if (!SameState(*held, token)) {
        return absl::StrCat("it holds ", token.ToString(), ", history '", branch.name(), "' had ",
                            held->ToString());
      }
    }
    for (const TokenState& held : branch.StatesAt(revision, account)) {
      if (held.state != Token::STATE_DELETED && !shown.contains(held.token_id)) {
        return absl::StrCat("it lacks ", held.ToString(), " of history '", branch.name(), "'");
      }
    }
    return "";
  }

  void CheckWatcher(const WatchLog& log) {
    const std::string& who = log.name;
    Segment segment;
    segment.candidates = AllBranches();
    std::set<size_t> used_faults;  // each fault justifies one RESET of this watcher
    for (const WatchRecord& record : log.records) {
      switch (record.type) {
        case WatchRecord::Type::kOpen:
          ++report_.figures.watch_streams;
          if (record.since_revision == 0) {
            segment = Segment();
            segment.candidates = AllBranches();
          } else if (segment.position >= 0 && record.since_revision != segment.position) {
            Add(ViolationKind::kGap, who,
                absl::StrCat("resumed after revision ", record.since_revision,
                             " but had seen up to ", segment.position));
          }
          break;
        case WatchRecord::Type::kEnd:
          break;
        case WatchRecord::Type::kMessage:
          HandleMessage(log, record, segment, used_faults);
          break;
      }
    }
  }

  void HandleMessage(const WatchLog& log, const WatchRecord& message, Segment& segment,
                     std::set<size_t>& used_faults) {
    const std::string& who = log.name;
    switch (message.kind) {
      case WatchTokensResponse::KIND_RESET: {
        ++report_.figures.resets;
        // Justified: the first RESET of this watcher after a fault that replaced the store's
        // history, or any RESET of a watcher that follows a history that is no longer the
        // store's (e.g. a snapshot a replica served from its old mirror after the fault).
        bool justified = false;
        bool after_replacement = false;
        for (size_t i = 0; i < history_.faults.size(); ++i) {
          const Fault& fault = history_.faults[i];
          if (!fault.replaces_history || fault.start_ns >= message.t_ns) continue;
          after_replacement = true;
          if (!used_faults.contains(i)) {
            used_faults.insert(i);
            justified = true;
            break;
          }
        }
        const bool on_final = std::find(segment.candidates.begin(), segment.candidates.end(),
                                        history_.final_branch) != segment.candidates.end();
        if (after_replacement && !on_final) justified = true;
        if (!justified) {
          Add(ViolationKind::kUnjustifiedReset, who,
              absl::StrCat("KIND_RESET at revision ", message.revision, " (the watcher was at ",
                           segment.position, " of the store's current history) ",
                           after_replacement
                               ? "after another RESET already answered the fault that replaced "
                                 "the store's history"
                               : "with no fault that replaced the store's history before it"));
        }
        segment = Segment();
        segment.candidates = AllBranches();
        return;
      }
      case WatchTokensResponse::KIND_SNAPSHOT:
        if (segment.position >= 0) {
          Add(ViolationKind::kWrongSnapshot, who,
              absl::StrCat("KIND_SNAPSHOT at revision ", message.revision,
                           " without a RESET, after revision ", segment.position));
          segment = Segment();
          segment.candidates = AllBranches();
        }
        segment.snapshot.insert(segment.snapshot.end(), message.tokens.begin(),
                                message.tokens.end());
        return;
      case WatchTokensResponse::KIND_SYNCED: {
        std::vector<size_t> kept;
        std::string why;
        for (size_t index : segment.candidates) {
          const Branch& branch = history_.branches[index];
          std::string mismatch =
              !EpochMatches(branch, message.epoch, message.revision)
                  ? absl::StrCat("epoch ", message.epoch, " is not history '", branch.name(),
                                 "''s ", branch.epoch())
                  : SnapshotMismatch(branch, message.revision, log.account, segment.snapshot);
          if (mismatch.empty()) {
            kept.push_back(index);
          } else if (why.empty()) {
            why = std::move(mismatch);
          }
        }
        if (kept.empty()) {
          Add(ViolationKind::kWrongSnapshot, who,
              absl::StrCat("the snapshot of ", segment.snapshot.size(),
                           " tokens SYNCED at revision ", message.revision,
                           " matches no history: ", why));
          kept = AllBranches();
        }
        segment.candidates = std::move(kept);
        segment.position = message.revision;
        segment.snapshot.clear();
        return;
      }
      case WatchTokensResponse::KIND_CHANGES:
        for (const Change& event : message.events) {
          ++report_.figures.watch_events;
          HandleEvent(log, message, event, segment);
        }
        return;
      case WatchTokensResponse::KIND_PROGRESS:
        HandleProgress(log, message, segment);
        return;
      default:
        Add(ViolationKind::kForeignChange, who,
            absl::StrCat("a message of kind ", KindText(message.kind), " (",
                         static_cast<int>(message.kind), ")"));
        return;
    }
  }

  void HandleEvent(const WatchLog& log, const WatchRecord& message, const Change& event,
                   Segment& segment) {
    const std::string& who = log.name;
    if (segment.position < 0) {
      Add(ViolationKind::kForeignChange, who,
          absl::StrCat("change ", event.ToString(), " before the stream was SYNCED"));
      return;
    }
    if (event.revision <= segment.position) {
      if (segment.seen.contains(event.revision)) {
        Add(ViolationKind::kDuplicate, who,
            absl::StrCat("change ", event.ToString(), " again (the watcher was at revision ",
                         segment.position, ")"));
      } else {
        Add(ViolationKind::kReorder, who,
            absl::StrCat("change ", event.ToString(), " after revision ", segment.position));
      }
      return;
    }
    if (!log.account.empty() && event.account_id != log.account) {
      Add(ViolationKind::kForeignChange, who,
          absl::StrCat("change ", event.ToString(), " of account ", event.account_id,
                       " on a stream of account ", log.account));
    }
    std::vector<size_t> kept;
    ViolationKind kind = ViolationKind::kForeignChange;
    std::string why;
    for (size_t index : segment.candidates) {
      const Branch& branch = history_.branches[index];
      std::string mismatch;
      ViolationKind mismatch_kind = ViolationKind::kForeignChange;
      if (!EpochMatches(branch, message.epoch, event.revision)) {
        mismatch = absl::StrCat("its epoch ", message.epoch, " is not history '", branch.name(),
                                "''s ", branch.epoch());
      } else if (event.revision > branch.head()) {
        mismatch = absl::StrCat("history '", branch.name(), "' ends at revision ", branch.head());
      } else if (const Change* missed =
                     branch.FirstMatching(segment.position, event.revision - 1, log.account);
                 missed != nullptr) {
        mismatch_kind = ViolationKind::kGap;
        mismatch = absl::StrCat(
            branch.CountMatching(segment.position, event.revision - 1, log.account),
            " change(s) of history '", branch.name(), "' between revisions ", segment.position,
            " and ", event.revision, " never came, the first ", missed->ToString());
      } else if (!branch.At(event.revision)->Same(event)) {
        mismatch = absl::StrCat("history '", branch.name(), "' holds ",
                                branch.At(event.revision)->ToString(), " at that revision");
      }
      if (mismatch.empty()) {
        kept.push_back(index);
      } else if (why.empty()) {
        why = std::move(mismatch);
        kind = mismatch_kind;
      }
    }
    if (kept.empty()) {
      Add(kind, who,
          absl::StrCat("change ", event.ToString(), " after revision ", segment.position,
                       " without a RESET between: ", why));
      // Carry on from here with every history that holds this change, to report each problem
      // once.
      for (size_t index : AllBranches()) {
        const Change* held = history_.branches[index].At(event.revision);
        if (held != nullptr && held->Same(event)) kept.push_back(index);
      }
      if (kept.empty()) kept = AllBranches();
    }
    segment.candidates = std::move(kept);
    segment.position = event.revision;
    segment.seen.insert(event.revision);
  }

  void HandleProgress(const WatchLog& log, const WatchRecord& message, Segment& segment) {
    const std::string& who = log.name;
    if (segment.position < 0) return;
    if (message.revision < segment.position) {
      Add(ViolationKind::kReorder, who,
          absl::StrCat("KIND_PROGRESS at revision ", message.revision, " after revision ",
                       segment.position, " without a RESET between"));
      return;
    }
    std::vector<size_t> kept;
    ViolationKind kind = ViolationKind::kForeignChange;
    std::string why;
    for (size_t index : segment.candidates) {
      const Branch& branch = history_.branches[index];
      std::string mismatch;
      ViolationKind mismatch_kind = ViolationKind::kForeignChange;
      if (!EpochMatches(branch, message.epoch, message.revision)) {
        mismatch = absl::StrCat("its epoch ", message.epoch, " is not history '", branch.name(),
                                "''s ", branch.epoch());
      } else if (message.revision > branch.head()) {
        mismatch = absl::StrCat("history '", branch.name(), "' ends at revision ", branch.head());
      } else if (const Change* missed =
                     branch.FirstMatching(segment.position, message.revision, log.account);
                 missed != nullptr) {
        mismatch_kind = ViolationKind::kGap;
        mismatch =
            absl::StrCat(branch.CountMatching(segment.position, message.revision, log.account),
                         " change(s) of history '", branch.name(),
                         "' up to it never came, the first ", missed->ToString());
      }
      if (mismatch.empty()) {
        kept.push_back(index);
      } else if (why.empty()) {
        why = std::move(mismatch);
        kind = mismatch_kind;
      }
    }
    if (kept.empty()) {
      Add(kind, who,
          absl::StrCat("KIND_PROGRESS at revision ", message.revision, " after revision ",
                       segment.position, " without a RESET between: ", why));
      kept = AllBranches();
    }
    segment.candidates = std::move(kept);
    segment.position = message.revision;
  }

  // --- Answers after the system synced again ---

  void CheckAnswer(const Answer& answer) {
    ++report_.figures.answers;
    if (!answer.synced) {
      Add(ViolationKind::kNotSynced, answer.who, answer.detail);
      return;
    }
    const auto& final = final_branch().Final();
    auto it = final.find(answer.token_id);
    const std::string asked = absl::StrCat(answer.via, " ", answer.token_id, ": ");
    if (it == final.end()) {
      if (answer.found) {
        Add(ViolationKind::kWrongAnswer, answer.who,
            absl::StrCat(asked, "answered ", StateText(answer.state), " (revision ",
                         answer.token_revision, "); the store does not hold the token"));
      }
      return;
    }
    if (!answer.found) {
      Add(ViolationKind::kWrongAnswer, answer.who,
          absl::StrCat(asked, "answered not found; the store holds ", it->second.ToString()));
      return;
    }
    if (answer.state != it->second.state ||
        (answer.token_revision != 0 && answer.token_revision != it->second.revision)) {
      Add(ViolationKind::kWrongAnswer, answer.who,
          absl::StrCat(asked, "answered ", StateText(answer.state), " (revision ",
                       answer.token_revision, "); the store holds ", it->second.ToString()));
    }
  }

  const History& history_;
  Report report_;
};

}  // namespace

int64_t NowNs() {
  timespec now;
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
}

std::string TagOf(const TokenEvent& event) {
  return event.type() == TokenEvent::TYPE_CREATED ? event.token().description()
                                                  : event.token().state_reason();
}

Change Change::FromEvent(const TokenEvent& event) {
  Change change;
  change.revision = event.token().revision();
  change.token_id = event.token().id();
  change.account_id = event.token().account_id();
  change.state = event.token().state();
  change.type = event.type();
  change.tag = TagOf(event);
  change.chain = event.chain();
  return change;
}

bool Change::Same(const Change& other) const {
  return revision == other.revision && token_id == other.token_id &&
         account_id == other.account_id && state == other.state && type == other.type &&
         tag == other.tag;
}

std::string Change::ToString() const {
  return absl::StrCat("r", revision, " ", token_id, " ", StateText(state), " (", TypeText(type),
                      tag.empty() ? "" : absl::StrCat(" by ", tag), ")");
}

TokenState TokenState::FromToken(const Token& token) {
  return {token.id(), token.account_id(), token.state(), token.revision()};
}

std::string TokenState::ToString() const {
  return absl::StrCat(token_id, " ", StateText(state), " at revision ", revision);
}

absl::StatusOr<Branch> Branch::Create(std::string name, std::string epoch,
                                      std::vector<Change> changes) {
  Branch branch;
  branch.name_ = std::move(name);
  branch.epoch_ = std::move(epoch);
  for (size_t i = 0; i < changes.size(); ++i) {
    const Change& change = changes[i];
    if (change.revision != static_cast<int64_t>(i) + 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("history '", branch.name_, "': change ", i, " has revision ",
                       change.revision, " (expected ", i + 1, "; a trimmed or gapped stream)"));
    }
    branch.revisions_by_token_[change.token_id].push_back(change.revision);
    if (!change.tag.empty()) branch.revision_by_tag_.emplace(change.tag, change.revision);
    branch.final_[change.token_id] = {change.token_id, change.account_id, change.state,
                                      change.revision};
  }
  branch.changes_ = std::move(changes);
  return branch;
}

const Change* Branch::At(int64_t revision) const {
  if (revision < 1 || revision > head()) return nullptr;
  return &changes_[static_cast<size_t>(revision - 1)];
}

std::optional<TokenState> Branch::StateAt(const std::string& id, int64_t revision) const {
  auto it = revisions_by_token_.find(id);
  if (it == revisions_by_token_.end()) return std::nullopt;
  const std::vector<int64_t>& revisions = it->second;
  auto after = std::upper_bound(revisions.begin(), revisions.end(), revision);
  if (after == revisions.begin()) return std::nullopt;
  const Change& change = *At(*std::prev(after));
  return TokenState{change.token_id, change.account_id, change.state, change.revision};
}

std::vector<TokenState> Branch::StatesAt(int64_t revision, const std::string& account) const {
  std::vector<TokenState> states;
  for (const auto& [id, revisions] : revisions_by_token_) {
    std::optional<TokenState> state = StateAt(id, revision);
    if (state.has_value() && (account.empty() || state->account_id == account)) {
      states.push_back(*std::move(state));
    }
  }
  return states;
}

const Change* Branch::FirstMatching(int64_t after, int64_t upto, const std::string& account) const {
  for (int64_t r = std::max<int64_t>(after + 1, 1); r <= std::min(upto, head()); ++r) {
    const Change* change = At(r);
    if (account.empty() || change->account_id == account) return change;
  }
  return nullptr;
}

int64_t Branch::CountMatching(int64_t after, int64_t upto, const std::string& account) const {
  int64_t count = 0;
  for (int64_t r = std::max<int64_t>(after + 1, 1); r <= std::min(upto, head()); ++r) {
    if (account.empty() || At(r)->account_id == account) ++count;
  }
  return count;
}

const Change* Branch::FindTag(const std::string& tag) const {
  auto it = revision_by_tag_.find(tag);
  return it == revision_by_tag_.end() ? nullptr : At(it->second);
}

std::string OpTypeName(OpType type) {
  switch (type) {
    case OpType::kCreate:
      return "CreateToken";
    case OpType::kEnable:
      return "EnableToken";
    case OpType::kDisable:
      return "DisableToken";
    case OpType::kDelete:
      return "DeleteToken";
    case OpType::kGet:
      return "GetToken";
    case OpType::kVerify:
      return "VerifyToken";
    case OpType::kNoise:
      return "garbage";
  }
  return "?";
}

Outcome OutcomeOf(int code) {
  switch (static_cast<grpc::StatusCode>(code)) {
    case grpc::StatusCode::OK:
      return Outcome::kOk;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNKNOWN:
      return Outcome::kUnknown;
    default:
      return Outcome::kFailed;
  }
}

WatchRecord WatchRecord::Open(int64_t t_ns, int64_t since_revision, std::string epoch,
                              std::string chain) {
  WatchRecord record;
  record.type = Type::kOpen;
  record.t_ns = t_ns;
  record.since_revision = since_revision;
  record.since_epoch = std::move(epoch);
  record.since_chain = std::move(chain);
  return record;
}

WatchRecord WatchRecord::Message(int64_t t_ns, const WatchTokensResponse& message) {
  WatchRecord record;
  record.type = Type::kMessage;
  record.t_ns = t_ns;
  record.kind = message.kind();
  record.revision = message.revision();
  record.epoch = message.epoch();
  record.chain = message.chain();
  for (const Token& token : message.tokens()) record.tokens.push_back(TokenState::FromToken(token));
  for (const TokenEvent& event : message.events())
    record.events.push_back(Change::FromEvent(event));
  return record;
}

WatchRecord WatchRecord::End(int64_t t_ns, int code, std::string detail) {
  WatchRecord record;
  record.type = Type::kEnd;
  record.t_ns = t_ns;
  record.code = code;
  record.detail = std::move(detail);
  return record;
}

std::string ViolationKindName(ViolationKind kind) {
  switch (kind) {
    case ViolationKind::kLostAck:
      return "lost acknowledged change";
    case ViolationKind::kAckMismatch:
      return "acknowledged change stored differently";
    case ViolationKind::kFailedChangeApplied:
      return "refused change applied";
    case ViolationKind::kWrongRead:
      return "read of a state no history held";
    case ViolationKind::kGap:
      return "watch gap";
    case ViolationKind::kDuplicate:
      return "watch duplicate";
    case ViolationKind::kReorder:
      return "watch reordering";
    case ViolationKind::kForeignChange:
      return "watch change of another history";
    case ViolationKind::kWrongSnapshot:
      return "wrong snapshot";
    case ViolationKind::kUnjustifiedReset:
      return "unjustified RESET";
    case ViolationKind::kWrongAnswer:
      return "synced answer the store does not hold";
    case ViolationKind::kNotSynced:
      return "not synced";
    case ViolationKind::kUnexpectedAnswer:
      return "unexpected answer to garbage";
    case ViolationKind::kStoreInconsistent:
      return "store inconsistent";
  }
  return "?";
}

std::string Violation::ToString() const {
  return absl::StrCat("[", ViolationKindName(kind), "] ", who, ": ", detail);
}

int Report::Count(ViolationKind kind) const {
  return static_cast<int>(std::count_if(violations.begin(), violations.end(),
                                        [kind](const Violation& v) { return v.kind == kind; }));
}

std::string Report::Summary(size_t max_listed) const {
  const Figures& f = figures;
  std::string out = absl::StrCat(
      "operations ", f.operations, " (changes ", f.changes, ": acknowledged ", f.acknowledged,
      ", refused ", f.refused, ", indeterminate ", f.indeterminate, "; reads ", f.reads,
      "; garbage ", f.noise, "), faults ", f.faults, ", acknowledged lost ", f.lost,
      " (explained by a restore or flush: ", f.lost_allowed, "), watch streams ", f.watch_streams,
      ", watch events ", f.watch_events, ", RESETs ", f.resets, ", answers checked ", f.answers,
      "; violations ", violations.size());
  std::map<std::string, int> by_kind;
  for (const Violation& violation : violations) ++by_kind[ViolationKindName(violation.kind)];
  for (const auto& [kind, count] : by_kind) absl::StrAppend(&out, "\n  ", count, " x ", kind);
  std::map<std::string, int> by_who;
  for (const Violation& violation : violations) {
    // "reader-0@127.0.0.1:4242" counts as "reader-0".
    ++by_who[violation.who.substr(0, violation.who.find('@'))];
  }
  if (!by_who.empty()) {
    std::vector<std::string> who;
    for (const auto& [name, count] : by_who) who.push_back(absl::StrCat(name, " ", count));
    absl::StrAppend(&out, "\n  by whom: ", absl::StrJoin(who, ", "));
  }
  // The first few of each kind, up to max_listed in all.
  std::map<ViolationKind, size_t> listed_of_kind;
  size_t listed = 0;
  const size_t per_kind = std::max<size_t>(1, max_listed / std::max<size_t>(1, by_kind.size()));
  for (const Violation& violation : violations) {
    if (listed == max_listed) break;
    if (listed_of_kind[violation.kind]++ >= per_kind) continue;
    absl::StrAppend(&out, "\n  ", violation.ToString());
    ++listed;
  }
  if (violations.size() > listed) {
    absl::StrAppend(&out, "\n  ... and ", violations.size() - listed, " more");
  }
  return out;
}

Report Check(const History& history) { return Checker(history).Run(); }

}  // namespace tokenstatus::chaos
