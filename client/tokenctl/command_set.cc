#include "client/tokenctl/command_set.h"

#include <utility>

namespace tokenstatus::tokenctl {

CLI::App* CommandSet::Add(const std::string& name, const std::string& description,
                          CommandAction action, Interrupts interrupts) {
  CLI::App* sub = app_.add_subcommand(name, description);
  entries_.push_back(Entry{sub, std::move(action), interrupts});
  return sub;
}

const CommandAction& CommandSet::SelectedAction() const { return Selected().action; }

CommandSet::Interrupts CommandSet::SelectedInterrupts() const { return Selected().interrupts; }

const CommandSet::Entry& CommandSet::Selected() const {
  for (const Entry& entry : entries_) {
    if (entry.app->parsed()) return entry;
  }
  return entries_.front();  // unreachable after a successful parse (require_subcommand(1))
}

}  // namespace tokenstatus::tokenctl
