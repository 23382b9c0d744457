#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace tokenstatus::metrics {

// Pieces of the Prometheus text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/).

// A sample value or an `le` bound: the shortest decimal that reads back as `value`, written
// without an exponent from 1e-6 up to 1e21 ("0.0001", "42", "1000000"; else "1e-07",
// "1e+21"), "+Inf", "-Inf" or "NaN".
std::string FormatValue(double value);

// A label value inside its double quotes: backslash, double quote and line feed escaped as
// \\, \" and \n.
std::string EscapeLabelValue(absl::string_view value);

// The text of a # HELP line: backslash and line feed escaped as \\ and \n.
std::string EscapeHelp(absl::string_view help);

// Whether `name` is a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*) or label name
// ([a-zA-Z_][a-zA-Z0-9_]*, not starting with "__").
bool IsValidMetricName(absl::string_view name);
bool IsValidLabelName(absl::string_view name);

}  // namespace tokenstatus::metrics
