#include <string>
#include <thread>
#include <vector>

#include "core/metrics/instruments.h"
#include "core/metrics/registry.h"
#include "core/metrics/text_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tokenstatus::metrics {
namespace {

using ::testing::HasSubstr;

TEST(TextFormatTest, ValuesAreTheShortestDecimalThatReadsBack) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(42), "42");
  EXPECT_EQ(FormatValue(0.005), "0.005");
  EXPECT_EQ(FormatValue(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(FormatValue(-1.5), "-1.5");
  EXPECT_EQ(FormatValue(1e21), "1e+21");
  EXPECT_EQ(FormatValue(0.0001), "0.0001");
  EXPECT_EQ(FormatValue(0.0005), "0.0005");
  EXPECT_EQ(FormatValue(1000000), "1000000");
  EXPECT_EQ(FormatValue(1e-7), "1e-07");
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::quiet_NaN()), "NaN");
}

TEST(TextFormatTest, LabelValuesEscapeBackslashQuoteAndNewline) {
  EXPECT_EQ(EscapeLabelValue(R"(a\b"c)"
                             "\n"
                             "d"),
            R"(a\\b\"c\nd)");
  EXPECT_EQ(EscapeLabelValue("plain"), "plain");
}

TEST(TextFormatTest, HelpEscapesBackslashAndNewlineButNotQuotes) {
  EXPECT_EQ(EscapeHelp("say \"hi\"\\\nbye"), R"(say "hi"\\\nbye)");
}

TEST(TextFormatTest, NamesFollowThePrometheusRules) {
  EXPECT_TRUE(IsValidMetricName("tokenstatus_changes_total"));
  EXPECT_TRUE(IsValidMetricName("job:rate5m"));
  EXPECT_FALSE(IsValidMetricName("1abc"));
  EXPECT_FALSE(IsValidMetricName("a-b"));
  EXPECT_FALSE(IsValidMetricName(""));
  EXPECT_TRUE(IsValidLabelName("grpc_code"));
  EXPECT_FALSE(IsValidLabelName("a:b"));
  EXPECT_FALSE(IsValidLabelName("__name__"));
}

TEST(HistogramTest, BucketsAreCumulativeAndInclusiveOfTheirBound) {
  Histogram histogram({0.1, 1, 10});
  for (double value : {0.05, 0.1, 0.5, 1.0, 5.0, 50.0, 50.0}) histogram.Observe(value);
  const Histogram::Snapshot snapshot = histogram.Read();
  EXPECT_THAT(snapshot.cumulative, ::testing::ElementsAre(2, 4, 5, 7));
  EXPECT_EQ(snapshot.count, 7u);
  EXPECT_DOUBLE_EQ(snapshot.sum, 106.65);
}

TEST(CounterTest, NeverGoesDown) {
  Counter counter;
  counter.Increment();
  counter.Increment(2.5);
  counter.Increment(-10);
  EXPECT_EQ(counter.Value(), 3.5);
}

TEST(CounterTest, IncrementsFromManyThreadsAreAllCounted) {
  Counter counter;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) counter.Increment();
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(counter.Value(), 40000);
}

TEST(RegistryTest, RendersTheTextFormatExactly) {
  Registry registry;
  Family<Counter>& calls = registry.AddCounter("calls_total", "Calls by \"code\".\\", {"code"});
  calls.With({"OK"}).Increment(3);
  calls.With({"a\"b\\c\nd"}).Increment();
  Gauge& up = registry.AddGauge("up", "1 when up.").Get();
  up.Set(1);
  Family<Histogram>& latency =
      registry.AddHistogram("latency_seconds", "Latency.", {"method"}, {0.5, 1});
  latency.With({"Get"}).Observe(0.25);
  latency.With({"Get"}).Observe(2);
  registry.AddCounter("never_total", "Nothing yet.", {"reason"});

  EXPECT_EQ(registry.Render(),
            "# HELP calls_total Calls by \"code\".\\\\\n"
            "# TYPE calls_total counter\n"
            "calls_total{code=\"OK\"} 3\n"
            "calls_total{code=\"a\\\"b\\\\c\\nd\"} 1\n"
            "# HELP up 1 when up.\n"
            "# TYPE up gauge\n"
            "up 1\n"
            "# HELP latency_seconds Latency.\n"
            "# TYPE latency_seconds histogram\n"
            "latency_seconds_bucket{method=\"Get\",le=\"0.5\"} 1\n"
            "latency_seconds_bucket{method=\"Get\",le=\"1\"} 1\n"
            "latency_seconds_bucket{method=\"Get\",le=\"+Inf\"} 2\n"
            "latency_seconds_sum{method=\"Get\"} 2.25\n"
            "latency_seconds_count{method=\"Get\"} 2\n"
            "# HELP never_total Nothing yet.\n"
            "# TYPE never_total counter\n");
}

TEST(RegistryTest, AHistogramWithoutLabelsPutsOnlyLeInItsBuckets) {
  Registry registry;
  registry.AddHistogram("d_seconds", "D.", {}, {1}).Get().Observe(0.5);
  const std::string text = registry.Render();
  EXPECT_THAT(text, HasSubstr("d_seconds_bucket{le=\"1\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("d_seconds_bucket{le=\"+Inf\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("d_seconds_sum 0.5\nd_seconds_count 1\n"));
}

TEST(RegistryTest, ScrapeHooksRunBeforeEachRender) {
  Registry registry;
  Gauge& gauge = registry.AddGauge("value", "V.").Get();
  int reads = 0;
  registry.OnScrape([&] { gauge.Set(++reads * 10); });
  EXPECT_THAT(registry.Render(), HasSubstr("value 10\n"));
  EXPECT_THAT(registry.Render(), HasSubstr("value 20\n"));
}

TEST(RegistryTest, TheSameLabelValuesGiveTheSameInstrument) {
  Registry registry;
  Family<Counter>& family = registry.AddCounter("x_total", "X.", {"a", "b"});
  EXPECT_EQ(&family.With({"1", "2"}), &family.With({"1", "2"}));
  EXPECT_NE(&family.With({"1", "2"}), &family.With({"2", "1"}));
}

TEST(RegistryDeathTest, AddingANameTwiceOrABadNameCrashes) {
  EXPECT_DEATH(
      {
        Registry registry;
        registry.AddCounter("a_total", "A.");
        registry.AddGauge("a_total", "A.");
      },
      "added twice");
  EXPECT_DEATH(
      {
        Registry registry;
        registry.AddGauge("a-b", "A.");
      },
      "invalid metric name");
  EXPECT_DEATH(
      {
        Registry registry;
        registry.AddCounter("c_total", "C.", {"code"}).With({"a", "b"});
      },
      "label values");
}

}  // namespace
}  // namespace tokenstatus::metrics
