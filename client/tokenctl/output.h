#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "apitoken/v1/token_service.pb.h"
#include "google/protobuf/message.h"

namespace tokenstatus::tokenctl {

// tokenctl's output formats. Every function writes to `out` and flushes, so that a reader at
// the other end of a pipe sees each line at once. None of them is given a secret, except
// PrintCreated. Values that come from the server are printed with control characters replaced
// by '?', so a token's name cannot move the terminal's cursor.

// Writes `message` as protobuf JSON (google::protobuf::util::MessageToJsonString: lowerCamelCase
// field names, enums by name, int64 as strings, default values omitted) on one line.
void PrintJson(std::ostream& out, const google::protobuf::Message& message);

// Writes a table of `tokens`: a header line, then one line per token (ID, ACCOUNT, STATE,
// REVISION, UPDATED, NAME), columns padded to their widest cell.
void PrintTokenTable(std::ostream& out, const std::vector<apitoken::v1::Token>& tokens);

// Writes every field of `token` except the secret hash, one "Field: value" line each.
void PrintTokenDetails(std::ostream& out, const apitoken::v1::Token& token);

// Writes the one-line outcome of a change, "Token TKN-1234-5678 disabled (revision 42)", with
// `done` the past participle of the change ("enabled", "disabled", "deleted"); with
// `already_in_state`, "Token TKN-1234-5678 was already disabled (revision 42)".
void PrintChange(std::ostream& out, const apitoken::v1::Token& token, absl::string_view done,
                 bool already_in_state);

// Writes the new token's id and its secret (the only time the secret is shown), and a note
// saying so.
void PrintCreated(std::ostream& out, const apitoken::v1::CreateTokenResponse& created);

// Writes a VerifyToken answer: "VALID token=TKN-... account=ACC-... revision=42" (the fields
// that are set).
void PrintVerifyResult(std::ostream& out, const apitoken::v1::VerifyTokenResponse& result);

// Writes one event (watch, history) as a logfmt line: "revision=42 event=DISABLED
// token=TKN-... account=ACC-... state=DISABLED by=<principal> reason=\"...\" time=<RFC 3339>".
void PrintEvent(std::ostream& out, const apitoken::v1::TokenEvent& event);

}  // namespace tokenstatus::tokenctl
