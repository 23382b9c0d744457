#include "core/flag_sources.h"

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <string>

#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/status_util.h"

namespace tokenstatus {
namespace {

absl::Status InvalidFlag(absl::string_view message) {
  return MakeError(absl::StatusCode::kInvalidArgument, reason::kInvalidArgument, message);
}

// Parses `value` into the flag `name`; `source` (a variable or flag) names it in the error.
absl::Status SetFlag(absl::string_view name, absl::string_view value, absl::string_view source) {
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
  std::string error;
  if (flag == nullptr || !flag->ParseFrom(value, &error)) {
    return InvalidFlag(absl::StrCat(source, ": ", error));
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<std::string> FlagNamesDefinedIn(absl::string_view file) {
  std::vector<std::string> names;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    // Abseil reports the file without its leading slashes.
    const std::string defined_in = flag->Filename();
    if (!defined_in.empty() && absl::EndsWith(file, defined_in)) names.emplace_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

absl::Status ApplyFlagEnvironment(absl::string_view env_prefix,
                                  absl::Span<const std::string> names) {
  for (const std::string& name : names) {
    const std::string variable = absl::StrCat(env_prefix, absl::AsciiStrToUpper(name));
    const char* value = std::getenv(variable.c_str());
    if (value == nullptr) continue;
    if (absl::Status status = SetFlag(name, value, variable); !status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::Status CheckFlagValues(int argc, char** argv, absl::Span<const std::string> names) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") break;
    if (!absl::ConsumePrefix(&arg, "-")) continue;
    absl::ConsumePrefix(&arg, "-");
    const size_t equals = arg.find('=');
    const absl::string_view name = arg.substr(0, equals);
    if (std::find(names.begin(), names.end(), name) == names.end()) continue;
    const std::string source = absl::StrCat("--", name);
    absl::Status status;
    if (equals != absl::string_view::npos) {
      status = SetFlag(name, arg.substr(equals + 1), source);
    } else if (absl::FindCommandLineFlag(name)->IsOfType<bool>()) {
      status = SetFlag(name, "true", source);
    } else if (i + 1 < argc) {
      status = SetFlag(name, argv[++i], source);
    } else {
      status = InvalidFlag(absl::StrCat(source, " needs a value"));
    }
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

bool HelpRequested(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (arg == "--") break;
    if (arg == "--help" || arg == "-help" || arg == "-h") return true;
  }
  return false;
}

std::string FlagsHelp(absl::string_view env_prefix, absl::Span<const std::string> names) {
  std::string help;
  for (const std::string& name : names) {
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr) continue;
    const std::string default_value = flag->DefaultValue();
    absl::StrAppend(
        &help, "  --", name, " (default: ", default_value.empty() ? "\"\"" : default_value,
        "; env: ", env_prefix, absl::AsciiStrToUpper(name), ")\n      ", flag->Help(), "\n");
  }
  return help;
}

std::optional<int> ParseProgramFlags(int argc, char** argv, const ProgramFlags& flags) {
  absl::SetProgramUsageMessage(flags.usage);
  if (HelpRequested(argc, argv)) {
    std::cout << flags.usage << "\n\nFlags:\n" << FlagsHelp(flags.env_prefix, flags.names);
    return 0;
  }
  absl::Status status = ApplyFlagEnvironment(flags.env_prefix, flags.names);
  if (status.ok()) status = CheckFlagValues(argc, argv, flags.names);
  if (!status.ok()) {
    std::cerr << flags.program << ": " << status.message() << "\n";
    return 2;
  }
  absl::ParseCommandLine(argc, argv);
  return std::nullopt;
}

}  // namespace tokenstatus
