#pragma once

#include <string>
#include <vector>

#include "CLI/CLI.hpp"

namespace tokenstatus::tokenctl {

// CLI11 checks of tokenctl's arguments; a failed check is a usage error (exit 2).

// Accepts a token id of the domain's form (TKN-NNNN-NNNN, IsValidTokenId).
CLI::Validator TokenIdCheck();

// Accepts an account id of the domain's form (ACC-NNNN-NNNN, ValidateAccountId).
CLI::Validator AccountIdCheck();

// The usage error for arguments no command takes (CLI11's remaining()): names the unexpected
// options (up to any "="), but shows no value or positional argument, since an operator may have
// put a secret there; says that secrets are read from stdin.
std::string UnexpectedArgumentsMessage(const std::vector<std::string>& arguments);

}  // namespace tokenstatus::tokenctl
