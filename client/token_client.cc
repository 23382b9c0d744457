#include "client/token_client.h"

#include <algorithm>
#include <utility>

#include "core/backoff.h"
#include "core/status_util.h"

namespace tokenstatus {
namespace {

using apitoken::v1::CreateTokenRequest;
using apitoken::v1::CreateTokenResponse;
using apitoken::v1::DeleteTokenRequest;
using apitoken::v1::DisableTokenRequest;
using apitoken::v1::EnableTokenRequest;
using apitoken::v1::GetTokenRequest;
using apitoken::v1::GetTokenResponse;
using apitoken::v1::ListTokensRequest;
using apitoken::v1::ListTokensResponse;
using apitoken::v1::TokenService;
using apitoken::v1::VerifyTokenRequest;
using apitoken::v1::VerifyTokenResponse;
using apitoken::v1::WatchTokensRequest;
using apitoken::v1::WatchTokensResponse;

// Whether `status` is the refusal `already_reason` (the token is already in the state asked).
bool IsAlreadyInState(const absl::Status& status, absl::string_view already_reason) {
  return status.code() == absl::StatusCode::kFailedPrecondition &&
         ErrorReason(status) == already_reason;
}

}  // namespace

TokenClient::TokenClient(std::shared_ptr<grpc::Channel> channel, TokenClientOptions options)
    : stub_(TokenService::NewStub(std::move(channel))), options_(std::move(options)) {}

absl::StatusOr<CreateTokenResponse> TokenClient::Create(const CreateTokenRequest& request) {
  return Attempt(&TokenService::Stub::CreateToken, request, absl::Now() + options_.deadline);
}

absl::StatusOr<GetTokenResponse> TokenClient::Get(const GetTokenRequest& request) {
  return Read(&TokenService::Stub::GetToken, request);
}

absl::StatusOr<ListTokensResponse> TokenClient::List(const ListTokensRequest& request) {
  return Read(&TokenService::Stub::ListTokens, request);
}

absl::StatusOr<apitoken::v1::ListTokenEventsResponse> TokenClient::ListEvents(
    const apitoken::v1::ListTokenEventsRequest& request) {
  return Read(&TokenService::Stub::ListTokenEvents, request);
}

absl::StatusOr<VerifyTokenResponse> TokenClient::Verify(const VerifyTokenRequest& request) {
  return Read(&TokenService::Stub::VerifyToken, request);
}

absl::StatusOr<ChangeResult> TokenClient::Enable(const EnableTokenRequest& request) {
  return Change(&TokenService::Stub::EnableToken, request, reason::kTokenAlreadyActive);
}

absl::StatusOr<ChangeResult> TokenClient::Disable(const DisableTokenRequest& request) {
  return Change(&TokenService::Stub::DisableToken, request, reason::kTokenAlreadyDisabled);
}

absl::StatusOr<ChangeResult> TokenClient::Delete(const DeleteTokenRequest& request) {
  return Change(&TokenService::Stub::DeleteToken, request, reason::kTokenDeleted);
}

std::unique_ptr<grpc::ClientReader<WatchTokensResponse>> TokenClient::Watch(
    grpc::ClientContext* context, const WatchTokensRequest& request) {
  return stub_->WatchTokens(context, request);
}

template <typename Request, typename Response>
absl::StatusOr<Response> TokenClient::Attempt(UnaryMethod<Request, Response> method,
                                              const Request& request, absl::Time deadline) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(deadline));
  Response response;
  grpc::Status status = (stub_.get()->*method)(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

template <typename Result>
absl::StatusOr<Result> TokenClient::WithRetries(
    absl::Time deadline, absl::FunctionRef<absl::StatusOr<Result>(int)> attempt) {
  for (int number = 1;; ++number) {
    absl::StatusOr<Result> result = attempt(number);
    if (result.ok() || result.status().code() != absl::StatusCode::kUnavailable ||
        number >= options_.retry.max_attempts) {
      return result;
    }
    const absl::Duration backoff = NextBackoff(number);
    if (absl::Now() + backoff >= deadline) return result;
    absl::SleepFor(backoff);
  }
}

template <typename Request, typename Response>
absl::StatusOr<Response> TokenClient::Read(UnaryMethod<Request, Response> method,
                                           const Request& request) {
  const absl::Time deadline = absl::Now() + options_.deadline;
  return WithRetries<Response>(deadline, [&](int) { return Attempt(method, request, deadline); });
}

template <typename Request, typename Response>
absl::StatusOr<ChangeResult> TokenClient::Change(UnaryMethod<Request, Response> method,
                                                 const Request& request,
                                                 absl::string_view already_reason) {
  const absl::Time deadline = absl::Now() + options_.deadline;
  return WithRetries<ChangeResult>(deadline, [&](int number) -> absl::StatusOr<ChangeResult> {
    absl::StatusOr<Response> response = Attempt(method, request, deadline);
    if (response.ok()) return ChangeResult{.token = response->token()};
    if (number == 1 || !IsAlreadyInState(response.status(), already_reason)) {
      return response.status();
    }
    GetTokenRequest get;
    get.set_token_id(request.token_id());
    absl::StatusOr<GetTokenResponse> current = WithRetries<GetTokenResponse>(
        deadline, [&](int) { return Attempt(&TokenService::Stub::GetToken, get, deadline); });
    if (!current.ok()) return current.status();
    return ChangeResult{.token = current->token(), .already_in_state = true};
  });
}

absl::Duration TokenClient::NextBackoff(int retry) {
  absl::MutexLock lock(&gen_mu_);
  const Backoff backoff{.initial = options_.retry.initial_backoff,
                        .max = options_.retry.max_backoff,
                        .multiplier = options_.retry.multiplier};
  return backoff.Delay(retry, gen_);
}

}  // namespace tokenstatus
