#include "server/watch/snapshot_budget.h"

#include <utility>

#include "gtest/gtest.h"

namespace tokenstatus {
namespace {

using Outcome = SnapshotBudget::Outcome;

TEST(SnapshotBudgetTest, ReservesWithinTheLimitAndHoldsGiveItBack) {
  int releases = 0;
  SnapshotBudget budget(1000, 10, [&releases] { ++releases; });
  SnapshotBudget::Hold a_stream, a_shared;
  ASSERT_EQ(budget.TryReserve("a", 100, 500, &a_stream, &a_shared), Outcome::kGranted);
  EXPECT_EQ(budget.reserved_bytes(), 600);
  EXPECT_EQ(budget.slots(), 1);
  EXPECT_EQ(a_stream.bytes(), 100);
  EXPECT_EQ(a_shared.bytes(), 500);

  // All or nothing: 600 + 500 > 1000.
  SnapshotBudget::Hold b_stream, b_shared;
  EXPECT_EQ(budget.TryReserve("b", 100, 400, &b_stream, &b_shared), Outcome::kOverBudget);
  EXPECT_EQ(budget.reserved_bytes(), 600);
  EXPECT_EQ(budget.slots(), 1);
  // Joining a capture already charged: only the stream's own bytes.
  ASSERT_EQ(budget.TryReserve("b", 100, 0, &b_stream, &b_shared), Outcome::kGranted);
  EXPECT_EQ(budget.reserved_bytes(), 700);
  EXPECT_EQ(b_shared.bytes(), 0);

  // Moving a hold moves the charge; destroying it gives it back (and says so).
  SnapshotBudget::Hold moved = std::move(a_shared);
  EXPECT_EQ(budget.reserved_bytes(), 700);
  moved = SnapshotBudget::Hold();
  EXPECT_EQ(budget.reserved_bytes(), 200);
  EXPECT_EQ(releases, 1);
  a_stream = SnapshotBudget::Hold();
  b_stream = SnapshotBudget::Hold();
  EXPECT_EQ(budget.reserved_bytes(), 0);
  EXPECT_EQ(budget.slots(), 0);
  EXPECT_EQ(releases, 3);
}

TEST(SnapshotBudgetTest, OneSnapshotAlwaysFitsWhenNothingElseIsHeld) {
  SnapshotBudget budget(0, 10);
  SnapshotBudget::Hold stream, shared;
  ASSERT_EQ(budget.TryReserve("a", 10, 1 << 20, &stream, &shared), Outcome::kGranted);
  SnapshotBudget::Hold other_stream, other_shared;
  EXPECT_EQ(budget.TryReserve("b", 1, 0, &other_stream, &other_shared), Outcome::kOverBudget);
  stream = SnapshotBudget::Hold();
  shared = SnapshotBudget::Hold();
  EXPECT_EQ(budget.TryReserve("b", 1, 0, &other_stream, &other_shared), Outcome::kGranted);
}

TEST(SnapshotBudgetTest, EachPrincipalHasItsSlots) {
  SnapshotBudget budget(1 << 20, 2);
  SnapshotBudget::Hold holds[4], unused;
  ASSERT_EQ(budget.TryReserve("a", 1, 0, &holds[0], &unused), Outcome::kGranted);
  ASSERT_EQ(budget.TryReserve("a", 1, 0, &holds[1], &unused), Outcome::kGranted);
  EXPECT_EQ(budget.TryReserve("a", 1, 0, &holds[2], &unused), Outcome::kPrincipalAtLimit);
  EXPECT_EQ(budget.TryReserve("b", 1, 0, &holds[2], &unused), Outcome::kGranted);
  holds[0] = SnapshotBudget::Hold();
  EXPECT_EQ(budget.TryReserve("a", 1, 0, &holds[3], &unused), Outcome::kGranted);
  EXPECT_EQ(budget.slots(), 3);
}

}  // namespace
}  // namespace tokenstatus
