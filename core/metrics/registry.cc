#include "core/metrics/registry.h"

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/metrics/text_format.h"

namespace tokenstatus::metrics {
namespace {

[[noreturn]] void Fail(const std::string& message) {
  std::fprintf(stderr, "metrics: %s\n", message.c_str());
  std::abort();
}

// "{a="x",b="y"}" for these names and values, with `extra` (e.g. le="0.5") last; "" for none.
std::string LabelText(const std::vector<std::string>& names, const std::vector<std::string>& values,
                      absl::string_view extra = "") {
  if (names.empty() && extra.empty()) return "";
  std::string text = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    absl::StrAppend(&text, i == 0 ? "" : ",", names[i], "=\"", EscapeLabelValue(values[i]), "\"");
  }
  if (!extra.empty()) absl::StrAppend(&text, names.empty() ? "" : ",", extra);
  text += "}";
  return text;
}

}  // namespace

template <typename Instrument>
Instrument& Family<Instrument>::With(const std::vector<std::string>& values) {
  if (values.size() != label_names_.size()) {
    Fail(absl::StrCat("a metric got ", values.size(), " label values for ", label_names_.size(),
                      " label names"));
  }
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = instruments_.find(values);
    if (it != instruments_.end()) return *it->second;
  }
  absl::MutexLock lock(&mu_);
  std::unique_ptr<Instrument>& instrument = instruments_[values];
  if (instrument == nullptr) instrument = make_();
  return *instrument;
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

Registry::Entry& Registry::Add(absl::string_view name, absl::string_view help, Type type,
                               const std::vector<std::string>& label_names) {
  if (!IsValidMetricName(name)) Fail(absl::StrCat("invalid metric name ", name));
  for (const std::string& label : label_names) {
    if (!IsValidLabelName(label) || (type == Type::kHistogram && label == "le")) {
      Fail(absl::StrCat("invalid label name ", label, " of ", name));
    }
  }
  for (const std::unique_ptr<Entry>& entry : entries_) {
    if (entry->name == name) Fail(absl::StrCat("metric ", name, " added twice"));
  }
  auto entry = std::make_unique<Entry>();
  entry->name = std::string(name);
  entry->help = std::string(help);
  entry->type = type;
  entries_.push_back(std::move(entry));
  return *entries_.back();
}

Family<Counter>& Registry::AddCounter(absl::string_view name, absl::string_view help,
                                      std::vector<std::string> label_names) {
  absl::MutexLock lock(&mu_);
  Entry& entry = Add(name, help, Type::kCounter, label_names);
  entry.counter.reset(
      new Family<Counter>(std::move(label_names), [] { return std::make_unique<Counter>(); }));
  return *entry.counter;
}

Family<Gauge>& Registry::AddGauge(absl::string_view name, absl::string_view help,
                                  std::vector<std::string> label_names) {
  absl::MutexLock lock(&mu_);
  Entry& entry = Add(name, help, Type::kGauge, label_names);
  entry.gauge.reset(
      new Family<Gauge>(std::move(label_names), [] { return std::make_unique<Gauge>(); }));
  return *entry.gauge;
}

Family<Histogram>& Registry::AddHistogram(absl::string_view name, absl::string_view help,
                                          std::vector<std::string> label_names,
                                          std::vector<double> bounds) {
  absl::MutexLock lock(&mu_);
  Entry& entry = Add(name, help, Type::kHistogram, label_names);
  Histogram check(bounds);  // crashes here, at start-up, on bad bounds
  entry.histogram.reset(new Family<Histogram>(std::move(label_names), [bounds = std::move(bounds)] {
    return std::make_unique<Histogram>(bounds);
  }));
  return *entry.histogram;
}

void Registry::OnScrape(absl::AnyInvocable<void()> refresh) {
  absl::MutexLock lock(&mu_);
  refreshers_.push_back(std::move(refresh));
}

std::string Registry::Render() {
  absl::MutexLock render_lock(&render_mu_);
  absl::MutexLock lock(&mu_);
  for (absl::AnyInvocable<void()>& refresh : refreshers_) refresh();
  std::string out;
  for (const std::unique_ptr<Entry>& entry : entries_) RenderEntry(*entry, out);
  return out;
}

void Registry::RenderEntry(const Entry& entry, std::string& out) {
  static constexpr const char* kTypeNames[] = {"counter", "gauge", "histogram"};
  absl::StrAppend(&out, "# HELP ", entry.name, " ", EscapeHelp(entry.help), "\n", "# TYPE ",
                  entry.name, " ", kTypeNames[static_cast<int>(entry.type)], "\n");
  auto render_simple = [&](const auto& family) {
    absl::ReaderMutexLock lock(&family.mu_);
    for (const auto& [values, instrument] : family.instruments_) {
      absl::StrAppend(&out, entry.name, LabelText(family.label_names_, values), " ",
                      FormatValue(instrument->Value()), "\n");
    }
  };
  switch (entry.type) {
    case Type::kCounter:
      render_simple(*entry.counter);
      return;
    case Type::kGauge:
      render_simple(*entry.gauge);
      return;
    case Type::kHistogram:
      break;
  }
  const Family<Histogram>& family = *entry.histogram;
  absl::ReaderMutexLock lock(&family.mu_);
  for (const auto& [values, histogram] : family.instruments_) {
    const Histogram::Snapshot snapshot = histogram->Read();
    const std::vector<double>& bounds = histogram->bounds();
    for (size_t i = 0; i <= bounds.size(); ++i) {
      const std::string le =
          absl::StrCat("le=\"", i < bounds.size() ? FormatValue(bounds[i]) : "+Inf", "\"");
      absl::StrAppend(&out, entry.name, "_bucket", LabelText(family.label_names_, values, le), " ",
                      snapshot.cumulative[i], "\n");
    }
    const std::string labels = LabelText(family.label_names_, values);
    absl::StrAppend(&out, entry.name, "_sum", labels, " ", FormatValue(snapshot.sum), "\n",
                    entry.name, "_count", labels, " ", snapshot.count, "\n");
  }
}

}  // namespace tokenstatus::metrics
