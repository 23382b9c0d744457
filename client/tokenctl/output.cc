#include "client/tokenctl/output.h"

#include <algorithm>
#include <array>
#include <cstddef>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "core/token_state.h"
#include "google/protobuf/util/json_util.h"

namespace tokenstatus::tokenctl {
namespace {

using apitoken::v1::CreateTokenResponse;
using apitoken::v1::Token;
using apitoken::v1::TokenEvent;
using apitoken::v1::VerifyTokenResponse;

constexpr size_t kTableColumns = 6;
using Row = std::array<std::string, kTableColumns>;

// `text` with every ASCII control character replaced by '?'.
std::string Printable(absl::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return out;
}

// "2026-11-28T20:30:40Z", or "-" for an unset timestamp.
std::string FormatTimestamp(const google::protobuf::Timestamp& timestamp) {
  if (timestamp.seconds() == 0 && timestamp.nanos() == 0) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(timestamp.seconds()),
                          absl::UTCTimeZone());
}

Row TableRow(const Token& token) {
  return {Printable(token.id()),
          Printable(token.account_id()),
          std::string(StateName(token.state())),
          absl::StrCat(token.revision()),
          FormatTimestamp(token.update_time()),
          Printable(token.name())};
}

void PrintRow(std::ostream& out, const Row& row, const std::array<size_t, kTableColumns>& widths) {
  for (size_t i = 0; i < kTableColumns; ++i) {
    out << row[i];
    if (i + 1 < kTableColumns) out << std::string(widths[i] - row[i].size() + 2, ' ');
  }
  out << '\n';
}

}  // namespace

void PrintJson(std::ostream& out, const google::protobuf::Message& message) {
  std::string json;
  // Only a message holding an Any of an unknown type fails; the API's messages hold none.
  const google::protobuf::util::Status status =
      google::protobuf::util::MessageToJsonString(message, &json);
  if (!status.ok()) json = R"({"error": "cannot format as JSON"})";
  out << json << std::endl;
}

void PrintTokenTable(std::ostream& out, const std::vector<Token>& tokens) {
  std::vector<Row> rows = {{"ID", "ACCOUNT", "STATE", "REVISION", "UPDATED", "NAME"}};
  for (const Token& token : tokens) rows.push_back(TableRow(token));
  std::array<size_t, kTableColumns> widths{};
  for (const Row& row : rows) {
    for (size_t i = 0; i < kTableColumns; ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const Row& row : rows) PrintRow(out, row, widths);
  out.flush();
}

void PrintTokenDetails(std::ostream& out, const Token& token) {
  out << "ID:           " << Printable(token.id()) << '\n'
      << "Account:      " << Printable(token.account_id()) << '\n'
      << "Name:         " << Printable(token.name()) << '\n'
      << "Description:  " << Printable(token.description()) << '\n'
      << "State:        " << StateName(token.state()) << '\n'
      << "Revision:     " << token.revision() << '\n'
      << "Created:      " << FormatTimestamp(token.create_time()) << '\n'
      << "Updated:      " << FormatTimestamp(token.update_time()) << '\n'
      << "Updated by:   " << Printable(token.updated_by()) << '\n'
      << "State reason: " << Printable(token.state_reason()) << std::endl;
}

void PrintChange(std::ostream& out, const Token& token, absl::string_view done,
                 bool already_in_state) {
  out << "Token " << Printable(token.id()) << (already_in_state ? " was already " : " ") << done
      << " (revision " << token.revision() << ")" << std::endl;
}

void PrintCreated(std::ostream& out, const CreateTokenResponse& created) {
  out << "Token " << Printable(created.token().id()) << " created for account "
      << Printable(created.token().account_id()) << " (revision " << created.token().revision()
      << ")\n"
      << "Secret: " << created.secret() << '\n'
      << "This is the only time the secret is shown: store it now." << std::endl;
}

void PrintVerifyResult(std::ostream& out, const VerifyTokenResponse& result) {
  out << absl::StripPrefix(VerifyTokenResponse::Result_Name(result.result()), "RESULT_");
  if (!result.token_id().empty()) {
    out << " token=" << Printable(result.token_id())
        << " account=" << Printable(result.account_id()) << " revision=" << result.revision();
  }
  out << std::endl;
}

void PrintEvent(std::ostream& out, const TokenEvent& event) {
  const Token& token = event.token();
  out << "revision=" << token.revision()
      << " event=" << absl::StripPrefix(TokenEvent::Type_Name(event.type()), "TYPE_")
      << " token=" << Printable(token.id()) << " account=" << Printable(token.account_id())
      << " state=" << StateName(token.state()) << " by=" << Printable(token.updated_by())
      << " reason=\"" << Printable(token.state_reason()) << "\" time="
      << absl::FormatTime(absl::RFC3339_sec, absl::FromUnixSeconds(token.update_time().seconds()),
                          absl::UTCTimeZone())
      << std::endl;
}

}  // namespace tokenstatus::tokenctl
