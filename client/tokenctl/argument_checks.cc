#include "client/tokenctl/argument_checks.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/validation.h"

namespace tokenstatus::tokenctl {

CLI::Validator TokenIdCheck() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        return IsValidTokenId(value) ? "" : "not a token id (TKN-NNNN-NNNN)";
      },
      "TKN-NNNN-NNNN");
}

CLI::Validator AccountIdCheck() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        return ValidateAccountId(value).ok() ? "" : "not an account id (ACC-NNNN-NNNN)";
      },
      "ACC-NNNN-NNNN");
}

std::string UnexpectedArgumentsMessage(const std::vector<std::string>& arguments) {
  std::vector<std::string> shown;
  int hidden = 0;
  for (const std::string& argument : arguments) {
    if (absl::StartsWith(argument, "-")) {
      shown.push_back(argument.substr(0, argument.find('=')));
    } else {
      ++hidden;
    }
  }
  if (hidden > 0) shown.push_back(absl::StrCat("<", hidden, " value(s), not shown>"));
  return absl::StrCat("unexpected arguments: ", absl::StrJoin(shown, ", "),
                      "; see tokenctl COMMAND --help (a secret is read from stdin, never from "
                      "the command line)");
}

}  // namespace tokenstatus::tokenctl
