#include "core/status_util.h"

#include "absl/strings/cord.h"
#include "absl/types/optional.h"

namespace tokenstatus {
namespace {

constexpr char kErrorInfoPayloadUrl[] = "type.googleapis.com/google.rpc.ErrorInfo";

}  // namespace

absl::Status MakeError(
    absl::StatusCode code, absl::string_view reason, absl::string_view message,
    std::initializer_list<std::pair<absl::string_view, absl::string_view>> metadata) {
  absl::Status status(code, message);
  google::rpc::ErrorInfo info;
  info.set_reason(std::string(reason));
  info.set_domain(kErrorDomain);
  for (const auto& [key, value] : metadata) {
    (*info.mutable_metadata())[std::string(key)] = std::string(value);
  }
  status.SetPayload(kErrorInfoPayloadUrl, absl::Cord(info.SerializeAsString()));
  return status;
}

google::rpc::ErrorInfo ErrorInfoOf(const absl::Status& status) {
  google::rpc::ErrorInfo info;
  if (status.ok()) return info;
  absl::optional<absl::Cord> payload = status.GetPayload(kErrorInfoPayloadUrl);
  if (payload.has_value() && info.ParseFromString(std::string(*payload))) return info;
  info.Clear();
  info.set_domain(kErrorDomain);
  if (status.code() == absl::StatusCode::kInternal || status.code() == absl::StatusCode::kUnknown) {
    info.set_reason(reason::kInternal);
  } else {
    info.set_reason(absl::StatusCodeToString(status.code()));
  }
  return info;
}

std::string ErrorReason(const absl::Status& status) { return ErrorInfoOf(status).reason(); }

}  // namespace tokenstatus
