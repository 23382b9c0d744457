#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "core/metrics/instruments.h"

namespace tokenstatus::metrics {

// One metric family: a name, its help text, its label names, and an instrument per set of
// label values, created at first use. Label values must come from small, fixed sets (a method,
// a reason, a state): never an id, a secret or anything a caller chooses.
//
// Thread-safe. With() takes a reader lock to find an existing instrument (a writer lock the
// first time a set of values is seen): keep the reference for a hot path.
template <typename Instrument>
class Family {
 public:
  // The instrument for `values` (one per label name, in the order of the label names; crashes
  // on a different count, a programming error). Valid as long as the registry.
  Instrument& With(const std::vector<std::string>& values);
  // The instrument of a family without labels.
  Instrument& Get() { return With({}); }

 private:
  friend class Registry;
  Family(std::vector<std::string> label_names,
         absl::AnyInvocable<std::unique_ptr<Instrument>() const> make)
      : label_names_(std::move(label_names)), make_(std::move(make)) {}

  const std::vector<std::string> label_names_;
  const absl::AnyInvocable<std::unique_ptr<Instrument>() const> make_;
  mutable absl::Mutex mu_;
  // Sorted by label values, so a scrape lists them in a stable order.
  std::map<std::vector<std::string>, std::unique_ptr<Instrument>> instruments_ ABSL_GUARDED_BY(mu_);
};

// The metrics of one process and their Prometheus text rendering.
//
//   Registry registry;
//   Family<Counter>& changes = registry.AddCounter("tokenstatus_changes_total",
//                                                  "Changes acknowledged.", {"type"});
//   changes.With({"disabled"}).Increment();
//   registry.OnScrape([&] { tokens.Get().Set(mirror.size()); });  // values read at scrape
//   std::string text = registry.Render();
//
// Families live as long as the registry: create it before, and destroy it after, everything
// that records into it. Names are checked when added (crash on an invalid or repeated name: a
// programming error). Thread-safe.
class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  Family<Counter>& AddCounter(absl::string_view name, absl::string_view help,
                              std::vector<std::string> label_names = {});
  Family<Gauge>& AddGauge(absl::string_view name, absl::string_view help,
                          std::vector<std::string> label_names = {});
  // `bounds` as Histogram's; SecondsBuckets() for durations.
  Family<Histogram>& AddHistogram(absl::string_view name, absl::string_view help,
                                  std::vector<std::string> label_names,
                                  std::vector<double> bounds = SecondsBuckets());

  // `refresh` runs at the start of every Render, in the order added: it sets the gauges whose
  // values are read rather than recorded. It must be quick and must not take a lock that a
  // call path holds for long. Whatever it reads must outlive every later Render.
  void OnScrape(absl::AnyInvocable<void()> refresh);

  // Every family in the order added: "# HELP", "# TYPE", then its samples (histograms as
  // _bucket{le=...} up to +Inf, _sum, _count). One Render at a time.
  std::string Render();

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Entry {
    std::string name;
    std::string help;
    Type type = Type::kCounter;
    std::unique_ptr<Family<Counter>> counter;
    std::unique_ptr<Family<Gauge>> gauge;
    std::unique_ptr<Family<Histogram>> histogram;
  };

  Entry& Add(absl::string_view name, absl::string_view help, Type type,
             const std::vector<std::string>& label_names) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static void RenderEntry(const Entry& entry, std::string& out);

  absl::Mutex render_mu_ ABSL_ACQUIRED_BEFORE(mu_);  // one Render at a time
  absl::Mutex mu_;
  std::vector<std::unique_ptr<Entry>> entries_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::AnyInvocable<void()>> refreshers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tokenstatus::metrics
