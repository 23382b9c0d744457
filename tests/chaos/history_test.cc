// The chaos checker on hand-made histories: a clean one passes, and each kind of wrong history
// (gap, duplicate, reordering, lost acknowledged change, wrong state, unjustified RESET, a watcher
// carried from one history to another without a RESET, ...) is caught as what it is.

#include "tests/chaos/history.h"

#include <limits>
#include <string>
#include <vector>

#include "grpcpp/support/status.h"
#include "gtest/gtest.h"

namespace tokenstatus::chaos {
namespace {

constexpr char kAccountA[] = "ACC-1000-0001";
constexpr char kAccountB[] = "ACC-1000-0002";
constexpr char kEpoch[] = "epoch-1";

Change MakeChange(int64_t revision, const std::string& id, Token::State state,
                  TokenEvent::Type type, const std::string& tag,
                  const std::string& account = kAccountA) {
  Change change;
  change.revision = revision;
  change.token_id = id;
  change.account_id = account;
  change.state = state;
  change.type = type;
  change.tag = tag;
  return change;
}

// r1 create T1 (A), r2 create T2 (B), r3 disable T1, r4 create T3 (A), r5 enable T1.
std::vector<Change> BaseChanges() {
  return {
      MakeChange(1, "TKN-0000-0001", Token::STATE_ACTIVE, TokenEvent::TYPE_CREATED, "c1"),
      MakeChange(2, "TKN-0000-0002", Token::STATE_ACTIVE, TokenEvent::TYPE_CREATED, "c2",
                 kAccountB),
      MakeChange(3, "TKN-0000-0001", Token::STATE_DISABLED, TokenEvent::TYPE_DISABLED, "d3"),
      MakeChange(4, "TKN-0000-0003", Token::STATE_ACTIVE, TokenEvent::TYPE_CREATED, "c4"),
      MakeChange(5, "TKN-0000-0001", Token::STATE_ACTIVE, TokenEvent::TYPE_ENABLED, "e5"),
  };
}

Branch MakeBranch(const std::string& name, std::vector<Change> changes,
                  const std::string& epoch = kEpoch) {
  absl::StatusOr<Branch> branch = Branch::Create(name, epoch, std::move(changes));
  EXPECT_TRUE(branch.ok()) << branch.status();
  return *std::move(branch);
}

TokenState StateOf(const Change& change) {
  return {change.token_id, change.account_id, change.state, change.revision};
}

WatchRecord Message(int64_t t, WatchTokensResponse::Kind kind, int64_t revision,
                    std::vector<Change> events = {}, std::vector<TokenState> tokens = {},
                    const std::string& epoch = kEpoch) {
  WatchRecord record;
  record.type = WatchRecord::Type::kMessage;
  record.t_ns = t;
  record.kind = kind;
  record.revision = revision;
  record.epoch = epoch;
  record.events = std::move(events);
  record.tokens = std::move(tokens);
  return record;
}

// A watcher of every account: snapshot at revision 2 (T1, T2), then the changes 3..5 and a
// PROGRESS at 5.
WatchLog CleanWatcher() {
  const std::vector<Change> changes = BaseChanges();
  WatchLog log;
  log.name = "watcher";
  log.records = {
      WatchRecord::Open(1, 0, "", ""),
      Message(2, WatchTokensResponse::KIND_SNAPSHOT, 2, {},
              {StateOf(changes[0]), StateOf(changes[1])}),
      Message(3, WatchTokensResponse::KIND_SYNCED, 2),
      Message(4, WatchTokensResponse::KIND_CHANGES, 3, {changes[2]}),
      Message(5, WatchTokensResponse::KIND_CHANGES, 5, {changes[3], changes[4]}),
      Message(6, WatchTokensResponse::KIND_PROGRESS, 5),
  };
  return log;
}

Operation Ack(OpType type, const Change& change, int64_t invoke, int64_t complete) {
  Operation op;
  op.client = "writer";
  op.type = type;
  op.tag = change.tag;
  op.token_id = change.token_id;
  op.invoke_ns = invoke;
  op.complete_ns = complete;
  op.outcome = Outcome::kOk;
  op.found = true;
  op.token = StateOf(change);
  return op;
}

Answer AnswerOf(const std::string& id, bool found, Token::State state, int64_t revision) {
  Answer answer;
  answer.who = "replica-0";
  answer.via = "GetToken";
  answer.token_id = id;
  answer.found = found;
  answer.state = state;
  answer.token_revision = revision;
  return answer;
}

History CleanHistory() {
  History history;
  history.branches.push_back(MakeBranch("final", BaseChanges()));
  const std::vector<Change> changes = BaseChanges();
  history.operations.push_back(Ack(OpType::kCreate, changes[0], 10, 11));
  history.operations.push_back(Ack(OpType::kCreate, changes[1], 10, 11));
  history.operations.push_back(Ack(OpType::kDisable, changes[2], 12, 13));
  history.operations.push_back(Ack(OpType::kCreate, changes[3], 12, 13));
  history.operations.push_back(Ack(OpType::kEnable, changes[4], 14, 15));
  history.watchers.push_back(CleanWatcher());
  history.answers.push_back(AnswerOf("TKN-0000-0001", true, Token::STATE_ACTIVE, 5));
  history.answers.push_back(AnswerOf("TKN-0000-0009", false, Token::STATE_UNSPECIFIED, 0));
  return history;
}

TEST(ChaosBranchTest, StatesAtEachRevision) {
  const Branch branch = MakeBranch("b", BaseChanges());
  EXPECT_EQ(branch.head(), 5);
  EXPECT_FALSE(branch.StateAt("TKN-0000-0001", 0).has_value());
  EXPECT_EQ(branch.StateAt("TKN-0000-0001", 2)->state, Token::STATE_ACTIVE);
  EXPECT_EQ(branch.StateAt("TKN-0000-0001", 4)->state, Token::STATE_DISABLED);
  EXPECT_EQ(branch.StateAt("TKN-0000-0001", 4)->revision, 3);
  EXPECT_EQ(branch.StateAt("TKN-0000-0001", 5)->revision, 5);
  EXPECT_FALSE(branch.StateAt("TKN-0000-0003", 3).has_value());
  EXPECT_EQ(branch.StatesAt(4, kAccountA).size(), 2u);
  EXPECT_EQ(branch.FirstMatching(2, 5, kAccountB), nullptr);
  EXPECT_EQ(branch.FirstMatching(0, 5, kAccountB)->revision, 2);
  EXPECT_EQ(branch.CountMatching(1, 5, kAccountA), 3);
  EXPECT_EQ(branch.FindTag("d3")->revision, 3);
}

TEST(ChaosBranchTest, RejectsAGappedStream) {
  std::vector<Change> changes = BaseChanges();
  changes.erase(changes.begin() + 2);
  EXPECT_FALSE(Branch::Create("b", kEpoch, changes).ok());
}

TEST(ChaosCheckerTest, CleanHistoryPasses) {
  const Report report = Check(CleanHistory());
  EXPECT_TRUE(report.ok()) << report.Summary();
  EXPECT_EQ(report.figures.acknowledged, 5);
  EXPECT_EQ(report.figures.watch_events, 3);
  EXPECT_EQ(report.figures.lost, 0);
}

TEST(ChaosCheckerTest, FilteredWatcherSeesOnlyItsAccount) {
  History history = CleanHistory();
  const std::vector<Change> changes = BaseChanges();
  WatchLog log;
  log.name = "watcher-B";
  log.account = kAccountB;
  log.records = {WatchRecord::Open(1, 0, "", ""), Message(2, WatchTokensResponse::KIND_SYNCED, 1),
                 Message(3, WatchTokensResponse::KIND_CHANGES, 2, {changes[1]}),
                 Message(4, WatchTokensResponse::KIND_PROGRESS, 5)};
  history.watchers = {log};
  const Report report = Check(history);
  EXPECT_TRUE(report.ok()) << report.Summary();
}

TEST(ChaosCheckerTest, Gap) {
  History history = CleanHistory();
  // The change at revision 3 never arrives.
  history.watchers[0].records.erase(history.watchers[0].records.begin() + 3);
  const Report report = Check(history);
  EXPECT_EQ(report.Count(ViolationKind::kGap), 1) << report.Summary();
  EXPECT_EQ(report.violations.size(), 1u) << report.Summary();
}

TEST(ChaosCheckerTest, GapBehindAProgress) {
  History history = CleanHistory();
  // PROGRESS at 5 while the watcher is at 3: it claims the changes 4 and 5 were sent.
  history.watchers[0].records.resize(4);
  history.watchers[0].records.push_back(Message(5, WatchTokensResponse::KIND_PROGRESS, 5));
  const Report report = Check(history);
  EXPECT_EQ(report.Count(ViolationKind::kGap), 1) << report.Summary();
}

TEST(ChaosCheckerTest, Duplicate) {
  History history = CleanHistory();
  const std::vector<Change> changes = BaseChanges();
  history.watchers[0].records.push_back(
      Message(7, WatchTokensResponse::KIND_CHANGES, 5, {changes[4]}));
  const Report report = Check(history);
  EXPECT_EQ(report.Count(ViolationKind::kDuplicate), 1) << report.Summary();
  EXPECT_EQ(report.violations.size(), 1u) << report.Summary();
}

TEST(ChaosCheckerTest, DuplicateAcrossAResume) {
  History history = CleanHistory();
  const std::vector<Change> changes = BaseChanges();
  // The stream ends and the watcher resumes after 5; the server replays 3 again.
  history.watchers[0].records.push_back(WatchRecord::End(7, 14, "gone"));
  history.watchers[0].records.push_back(WatchRecord::Open(8, 5, kEpoch, ""));
  history.watchers[0].records.push_back(
      Message(9, WatchTokensResponse::KIND_CHANGES, 3, {changes[2]}));
  const Report report = Check(history);
  EXPECT_EQ(report.Count(ViolationKind::kDuplicate), 1) << report.Summary();
}

TEST(ChaosCheckerTest, Reorder) {
  History history = CleanHistory();
  const std::vector<Change> changes = BaseChanges();
  // 4 and 5 arrive as 5, then 4.
  history.watchers[0].records[4] =
      Message(5, WatchTokensResponse::KIND_CHANGES, 5, {changes[4], changes[3]});
  const Report report = Check(history);
  EXPECT_EQ(report.Count(ViolationKind::kReorder), 1) << report.Summary();
  EXPECT_EQ(report.Count(ViolationKind::kGap), 1) << report.Summary();  // 5 came without 4 first
}

TEST(ChaosCheckerTest, ChangeTheStoreDoesNotHold) {
  History history = CleanHistory();
  Change invented = MakeChange(4, "TKN-0000-0003", Token::STATE_DISABLED, TokenEvent::TYPE_DISABLED,
                               "never-made");
  history.watchers[0].records[4] = Message(5, WatchTokensResponse::KIND_CHANGES, 4, {invented});
  history.watchers[0].records.resize(5);
  const Report report = Check(history);
  EXPECT_EQ(report.Count(ViolationKind::kForeignChange), 1) << report.Summary();
}

TEST(ChaosCheckerTest, WrongSnapshot) {
  History history = CleanHistory();
  // T1 shown DISABLED at revision 2: it was ACTIVE then.
  history.watchers[0].records[1].tokens[0].state = Token::STATE_DISABLED;
  const Report report = Check(history);
  EXPECT_EQ(report.Count(ViolationKind::kWrongSnapshot), 1) << report.Summary();
}

TEST(ChaosCheckerTest, SnapshotMissingAToken) {
  History history = CleanHistory();
  history.watchers[0].records[1].tokens.pop_back();
  const Report report = Check(history);
  EXPECT_EQ(report.Count(ViolationKind::kWrongSnapshot), 1) << report.Summary();
}

TEST(ChaosCheckerTest, LostAcknowledgedChange) {
  History history = CleanHistory();
  Operation ack = Ack(OpType::kDisable, BaseChanges()[4], 20, 21);
  ack.tag = "d-never-stored";
  history.operations.push_back(ack);
  const Report report = Check(history);
  EXPECT_EQ(report.Count(ViolationKind::kLostAck), 1) << report.Summary();
  EXPECT_EQ(report.figures.lost, 1);
}

TEST(ChaosCheckerTest, ChangeMadeByNoOperation) {
  History history = CleanHistory();
  history.operations.erase(history.operations.begin() + 3);  // the creation at revision 4
  Report report = Check(history);
  EXPECT_EQ(report.Count(ViolationKind::kFailedChangeApplied), 1) << report.Summary();
  // An operation whose outcome is unknown may have made it.
  Operation pending = Ack(OpType::kCreate, BaseChanges()[3], 12, 13);
  pending.outcome = Outcome::kUnknown;
  history.operations.push_back(pending);
  report = Check(history);
  EXPECT_TRUE(report.ok()) << report.Summary();
}

TEST(ChaosCheckerTest, AcknowledgedAtAnotherRevision) {
  History history = CleanHistory();
  history.operations[2].token.revision = 4;
  const Report report = Check(history);
  EXPECT_EQ(report.Count(ViolationKind::kAckMismatch), 1) << report.Summary();
}

TEST(ChaosCheckerTest, RefusedChangeApplied) {
  History history = CleanHistory();
  Operation refused = Ack(OpType::kDisable, BaseChanges()[2], 20, 21);
  refused.outcome = Outcome::kFailed;
  refused.code = static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION);
  history.operations.push_back(refused);
  const Report report = Check(history);
  EXPECT_EQ(report.Count(ViolationKind::kFailedChangeApplied), 1) << report.Summary();
}

TEST(ChaosCheckerTest, ReadOfAStateNoHistoryHeld) {
  History history = CleanHistory();
  Operation read;
  read.client = "reader";
  read.type = OpType::kGet;
  read.token_id = "TKN-0000-0001";
  read.found = true;
  read.served_revision = 4;
  read.token = {"TKN-0000-0001", kAccountA, Token::STATE_ACTIVE, 1};  // it was DISABLED at 4
  history.operations.push_back(read);
  Report report = Check(history);
  EXPECT_EQ(report.Count(ViolationKind::kWrongRead), 1) << report.Summary();

  // A lagging read (served at 2) is fine.
  history.operations.back().served_revision = 2;
  report = Check(history);
  EXPECT_TRUE(report.ok()) << report.Summary();
}

TEST(ChaosCheckerTest, VerifyAnsweringAChangeNeverMade) {
  History history = CleanHistory();
  Operation verify;
  verify.client = "reader";
  verify.type = OpType::kVerify;
  verify.token_id = "TKN-0000-0003";
  verify.found = true;
  verify.token = {"TKN-0000-0003", kAccountA, Token::STATE_DISABLED, 4};
  history.operations.push_back(verify);
  const Report report = Check(history);
  EXPECT_EQ(report.Count(ViolationKind::kWrongRead), 1) << report.Summary();
}

TEST(ChaosCheckerTest, SyncedAnswerOfAStateTheStoreDoesNotHold) {
  History history = CleanHistory();
  history.answers.push_back(AnswerOf("TKN-0000-0001", true, Token::STATE_DISABLED, 3));
  history.answers.push_back(AnswerOf("TKN-0000-0042", true, Token::STATE_ACTIVE, 0));
  history.answers.push_back(AnswerOf("TKN-0000-0002", false, Token::STATE_UNSPECIFIED, 0));
  const Report report = Check(history);
  EXPECT_EQ(report.Count(ViolationKind::kWrongAnswer), 3) << report.Summary();
}

TEST(ChaosCheckerTest, NotSynced) {
  History history = CleanHistory();
  Answer answer;
  answer.who = "cache-0";
  answer.synced = false;
  answer.detail = "stuck at revision 3";
  history.answers.push_back(answer);
  const Report report = Check(history);
  EXPECT_EQ(report.Count(ViolationKind::kNotSynced), 1) << report.Summary();
}

TEST(ChaosCheckerTest, ResetWithoutAFaultIsUnjustified) {
  History history = CleanHistory();
  const std::vector<Change> changes = BaseChanges();
  history.watchers[0].records.push_back(Message(7, WatchTokensResponse::KIND_RESET, 5));
  history.watchers[0].records.push_back(
      Message(8, WatchTokensResponse::KIND_SNAPSHOT, 5, {},
              {StateOf(changes[4]), StateOf(changes[1]), StateOf(changes[3])}));
  history.watchers[0].records.push_back(Message(9, WatchTokensResponse::KIND_SYNCED, 5));
  Report report = Check(history);
  EXPECT_EQ(report.Count(ViolationKind::kUnjustifiedReset), 1) << report.Summary();
  EXPECT_EQ(report.violations.size(), 1u) << report.Summary();

  // A server SIGKILL does not replace the history: still unjustified.
  history.faults.push_back({"server SIGKILL", 6, 6, false, 0});
  report = Check(history);
  EXPECT_EQ(report.Count(ViolationKind::kUnjustifiedReset), 1) << report.Summary();

  // A FLUSHALL before it justifies it, and only one.
  history.faults.push_back({"FLUSHALL", 6, 6, true, std::numeric_limits<int64_t>::min()});
  report = Check(history);
  EXPECT_TRUE(report.ok()) << report.Summary();
  history.watchers[0].records.push_back(Message(10, WatchTokensResponse::KIND_RESET, 5));
  report = Check(history);
  EXPECT_EQ(report.Count(ViolationKind::kUnjustifiedReset), 1) << report.Summary();
}

// The store restored from an older copy: the old history "lost" is r1..r5; the restored one
// continued from the copy (r1..r3) with other changes r4', r5', r6'.
std::vector<Change> NewChanges() {
  return {
      MakeChange(4, "TKN-0000-0002", Token::STATE_DISABLED, TokenEvent::TYPE_DISABLED, "d4b",
                 kAccountB),
      MakeChange(5, "TKN-0000-0004", Token::STATE_ACTIVE, TokenEvent::TYPE_CREATED, "c5b"),
      MakeChange(6, "TKN-0000-0001", Token::STATE_ACTIVE, TokenEvent::TYPE_ENABLED, "e6b"),
  };
}

std::vector<Change> RestoredChanges() {
  std::vector<Change> changes = BaseChanges();
  changes.resize(3);
  for (const Change& change : NewChanges()) changes.push_back(change);
  return changes;
}

struct Restored {
  Branch lost = MakeBranch("lost", BaseChanges());
  std::vector<Change> new_changes = NewChanges();
  Branch final = MakeBranch("final", RestoredChanges());
};

History RestoredHistory(const Restored& r) {
  History history;
  history.branches = {r.final, r.lost};
  history.final_branch = 0;
  // The copy was taken at t=100 (after r3), the restore took 200..300.
  history.faults.push_back({"restore older copy", 200, 300, true, 100});
  history.attribute_every_change = false;  // the tests record only the operations they judge
  return history;
}

TEST(ChaosCheckerTest, RestoreLosesOnlyWhatTheCopyDidNotHold) {
  Restored r;
  History history = RestoredHistory(r);
  const std::vector<Change> old_changes = BaseChanges();
  // r3 acknowledged before the copy: it survives. r5 (acknowledged after the copy) is lost:
  // allowed.
  history.operations.push_back(Ack(OpType::kDisable, old_changes[2], 50, 60));
  history.operations.push_back(Ack(OpType::kEnable, old_changes[4], 150, 160));
  history.operations.push_back(Ack(OpType::kEnable, r.new_changes[2], 400, 410));
  Report report = Check(history);
  EXPECT_TRUE(report.ok()) << report.Summary();
  EXPECT_EQ(report.figures.lost, 1);
  EXPECT_EQ(report.figures.lost_allowed, 1);

  // A change acknowledged before the copy was taken must survive it.
  history.operations[1].invoke_ns = 40;
  history.operations[1].complete_ns = 45;
  report = Check(history);
  EXPECT_EQ(report.Count(ViolationKind::kLostAck), 1) << report.Summary();

  // And a change acknowledged after the restore too.
  history.operations[1].invoke_ns = 320;
  history.operations[1].complete_ns = 330;
  report = Check(history);
  EXPECT_EQ(report.Count(ViolationKind::kLostAck), 1) << report.Summary();
}

// The bug this suite was written for: a watcher that followed the lost history past the copy is
// carried on with the restored history's changes, without a RESET.
TEST(ChaosCheckerTest, WatcherCarriedAcrossHistoriesWithoutAReset) {
  Restored r;
  History history = RestoredHistory(r);
  const std::vector<Change> old_changes = BaseChanges();
  WatchLog log;
  log.name = "watcher";
  log.records = {
      WatchRecord::Open(1, 0, "", ""),
      Message(2, WatchTokensResponse::KIND_SNAPSHOT, 2, {},
              {StateOf(old_changes[0]), StateOf(old_changes[1])}),
      Message(3, WatchTokensResponse::KIND_SYNCED, 2),
      Message(4, WatchTokensResponse::KIND_CHANGES, 5,
              {old_changes[2], old_changes[3], old_changes[4]}),
      // After the restore, the store's head passed 5: the server goes on with r6'.
      Message(400, WatchTokensResponse::KIND_CHANGES, 6, {r.new_changes[2]}),
  };
  history.watchers = {log};
  Report report = Check(history);
  ASSERT_EQ(report.violations.size(), 1u) << report.Summary();
  EXPECT_EQ(report.violations[0].kind, ViolationKind::kForeignChange) << report.Summary();

  // With a RESET and a snapshot of the restored history between, it is correct.
  std::vector<TokenState> restored_state = r.final.StatesAt(5, "");
  history.watchers[0].records.insert(
      history.watchers[0].records.begin() + 4,
      {Message(350, WatchTokensResponse::KIND_RESET, 5),
       Message(351, WatchTokensResponse::KIND_SNAPSHOT, 5, {}, restored_state),
       Message(352, WatchTokensResponse::KIND_SYNCED, 5)});
  report = Check(history);
  EXPECT_TRUE(report.ok()) << report.Summary();

  // A snapshot of the lost history after the RESET would be wrong, though.
  history.watchers[0].records[5].tokens = r.lost.StatesAt(5, "");
  history.branches = {r.final};  // the lost history is not a candidate here
  report = Check(history);
  EXPECT_GE(report.Count(ViolationKind::kWrongSnapshot), 1) << report.Summary();
}

// After the restore, a replica serves a snapshot of its old mirror (the lost history) after the
// first RESET: a second RESET that corrects it is justified; one more, once the watcher follows
// the store's history, is not.
TEST(ChaosCheckerTest, SecondResetOfAWatcherLeftOnTheLostHistory) {
  Restored r;
  History history = RestoredHistory(r);
  const std::vector<Change> old_changes = BaseChanges();
  WatchLog log;
  log.name = "watcher";
  log.records = {
      WatchRecord::Open(1, 0, "", ""),
      Message(2, WatchTokensResponse::KIND_SNAPSHOT, 5, {}, r.lost.StatesAt(5, "")),
      Message(3, WatchTokensResponse::KIND_SYNCED, 5),
      Message(350, WatchTokensResponse::KIND_RESET, 5),
      Message(351, WatchTokensResponse::KIND_SNAPSHOT, 5, {}, r.lost.StatesAt(5, "")),
      Message(352, WatchTokensResponse::KIND_SYNCED, 5),
      Message(360, WatchTokensResponse::KIND_RESET, 6),
      Message(361, WatchTokensResponse::KIND_SNAPSHOT, 6, {}, r.final.StatesAt(6, "")),
      Message(362, WatchTokensResponse::KIND_SYNCED, 6),
  };
  history.watchers = {log};
  Report report = Check(history);
  EXPECT_TRUE(report.ok()) << report.Summary();

  history.watchers[0].records.push_back(Message(370, WatchTokensResponse::KIND_RESET, 6));
  report = Check(history);
  EXPECT_EQ(report.Count(ViolationKind::kUnjustifiedReset), 1) << report.Summary();
}

// A watcher that had only seen what both histories share needs no RESET.
TEST(ChaosCheckerTest, WatcherWithinTheSharedPrefixContinues) {
  Restored r;
  History history = RestoredHistory(r);
  const std::vector<Change> old_changes = BaseChanges();
  WatchLog log;
  log.name = "watcher";
  log.records = {
      WatchRecord::Open(1, 0, "", ""),
      Message(2, WatchTokensResponse::KIND_SNAPSHOT, 2, {},
              {StateOf(old_changes[0]), StateOf(old_changes[1])}),
      Message(3, WatchTokensResponse::KIND_SYNCED, 2),
      Message(4, WatchTokensResponse::KIND_CHANGES, 3, {old_changes[2]}),
      Message(400, WatchTokensResponse::KIND_CHANGES, 6, r.new_changes),
  };
  history.watchers = {log};
  const Report report = Check(history);
  EXPECT_TRUE(report.ok()) << report.Summary();
}

TEST(ChaosCheckerTest, WatcherOfAnotherEpoch) {
  History history = CleanHistory();
  history.watchers[0].records[3].epoch = "epoch-2";
  const Report report = Check(history);
  EXPECT_EQ(report.Count(ViolationKind::kForeignChange), 1) << report.Summary();
}

TEST(ChaosCheckerTest, GarbageRequests) {
  History history = CleanHistory();
  Operation garbage;
  garbage.client = "noise";
  garbage.type = OpType::kNoise;
  garbage.tag = "n1";
  garbage.code = static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT);
  garbage.expected_codes = {static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT)};
  history.operations.push_back(garbage);
  Report report = Check(history);
  EXPECT_TRUE(report.ok()) << report.Summary();

  history.operations.back().code = static_cast<int>(grpc::StatusCode::OK);
  report = Check(history);
  EXPECT_EQ(report.Count(ViolationKind::kUnexpectedAnswer), 1) << report.Summary();

  // A garbage change that made it into the store.
  history.operations.back().code = static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT);
  history.operations.back().tag = "e5";
  report = Check(history);
  EXPECT_EQ(report.Count(ViolationKind::kFailedChangeApplied), 1) << report.Summary();
}

TEST(ChaosCheckerTest, RecordsDisagreeingWithTheEventStream) {
  History history = CleanHistory();
  std::map<std::string, TokenState> records;
  for (const auto& [id, state] : history.branches[0].Final()) records[id] = state;
  history.final_records = records;
  EXPECT_TRUE(Check(history).ok());
  (*history.final_records)["TKN-0000-0001"].state = Token::STATE_DISABLED;
  history.final_records->erase("TKN-0000-0002");
  const Report report = Check(history);
  EXPECT_EQ(report.Count(ViolationKind::kStoreInconsistent), 2) << report.Summary();
}

}  // namespace
}  // namespace tokenstatus::chaos
