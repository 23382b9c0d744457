#include "server/watch/watch_metrics.h"

#include "absl/strings/str_cat.h"
#include "core/metrics/registry.h"
#include "core/status_util.h"
#include "gtest/gtest.h"

namespace tokenstatus {
namespace {

TEST(WatchMetricsTest, EveryWayAStreamEndsHasItsReason) {
  EXPECT_STREQ(WatchMetrics::EndReasonOf(absl::OkStatus()), "reset");
  EXPECT_STREQ(WatchMetrics::EndReasonOf(MakeError(absl::StatusCode::kResourceExhausted,
                                                   reason::kWatcherFellBehind, "slow")),
               "fell_behind");
  EXPECT_STREQ(WatchMetrics::EndReasonOf(MakeError(absl::StatusCode::kResourceExhausted,
                                                   reason::kTooManyWatchers, "full")),
               "limit");
  EXPECT_STREQ(WatchMetrics::EndReasonOf(MakeError(absl::StatusCode::kResourceExhausted,
                                                   reason::kSnapshotBudgetExhausted, "wait")),
               "limit");
  EXPECT_STREQ(WatchMetrics::EndReasonOf(
                   MakeError(absl::StatusCode::kUnavailable, reason::kServerShuttingDown, "bye")),
               "shutdown");
  EXPECT_STREQ(WatchMetrics::EndReasonOf(
                   MakeError(absl::StatusCode::kCancelled, reason::kInternal, "stream broke")),
               "client_gone");
  EXPECT_STREQ(WatchMetrics::EndReasonOf(
                   MakeError(absl::StatusCode::kUnavailable, reason::kStoreUnavailable, "redis")),
               "error");
}

TEST(WatchMetricsTest, EveryReasonIsExportedAtZeroFromTheStart) {
  metrics::Registry registry;
  WatchMetrics watch_metrics(registry);
  const std::string text = registry.Render();
  for (const char* reason : {"fell_behind", "limit", "shutdown", "client_gone", "reset", "error"}) {
    EXPECT_NE(
        text.find(absl::StrCat("tokenstatus_watchers_ended_total{reason=\"", reason, "\"} 0\n")),
        std::string::npos)
        << reason;
  }
}

}  // namespace
}  // namespace tokenstatus
