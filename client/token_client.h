#pragma once

// TokenClient: a typed client of apitoken.v1.TokenService with a deadline on every call,
// retries of reads on UNAVAILABLE (jittered exponential backoff), careful retries of state
// changes, and absl::Status errors that keep the server's gRPC code, message and ErrorInfo.

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "apitoken/v1/token_service.grpc.pb.h"
#include "core/grpc_status.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/status.h"
#include "grpcpp/support/sync_stream.h"

namespace tokenstatus {

// When and how often a call that failed with UNAVAILABLE is attempted again.
struct RetryPolicy {
  // Attempts in all, the first one included; 1 = no retry. Values below 1 count as 1.
  int max_attempts = 4;
  // The backoff before the first retry; each further retry multiplies it by `multiplier`, up to
  // `max_backoff`. The actual sleep is drawn uniformly from [backoff / 2, backoff] (jitter), so
  // that many clients failing together do not retry in lockstep.
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(2);
  double multiplier = 2.0;
};

// How a TokenClient calls the server.
struct TokenClientOptions {
  // The overall deadline of one TokenClient call, retries and backoff sleeps included. A retry
  // whose backoff would end after it is not attempted: the last error is returned.
  absl::Duration deadline = absl::Seconds(5);
  // Retries on UNAVAILABLE (see TokenClient for which calls retry).
  RetryPolicy retry;
};

// The outcome of Enable, Disable or Delete.
struct ChangeResult {
  // The token after the change (or, with already_in_state, as GetToken served it just after;
  // a replica's mirror may lag the store by milliseconds, so its revision may predate the
  // change that a lost reply hid).
  apitoken::v1::Token token;
  // True if a retry found the token already in the requested state: the first attempt's reply
  // was lost (UNAVAILABLE) and the change had been made, by that attempt or by someone else.
  bool already_in_state = false;
};

// A typed client of TokenService over one channel.
//
// Every call has the overall deadline options.deadline. Failed calls return an absl::Status
// made by FromGrpcStatus (core/grpc_status.h): the server's code, message and ErrorInfo; read its
// reason with ErrorReason(status) (core/status_util.h).
//
// Retries (options.retry, only on UNAVAILABLE, only within the deadline):
//   - Get, List, ListEvents, Verify: retried (they change nothing).
//   - Create: never retried (a repeat would create a second token).
//   - Enable, Disable, Delete: retried, because a repeat is safe: the state machine refuses a
//     second transition. When a retry gets the refusal that means "already in the requested
//     state" (FAILED_PRECONDITION with TOKEN_ALREADY_ACTIVE / TOKEN_ALREADY_DISABLED /
//     TOKEN_DELETED respectively), the earlier attempt's reply was probably lost: the result is
//     the token (fetched with GetToken) with already_in_state = true. The same refusal on the
//     FIRST attempt is returned as the error it is.
//   - DEADLINE_EXCEEDED and every other code are never retried.
//
// Thread-safe: any number of threads may call any method at once. The channel is shared;
// the client may be destroyed once no call is running (open Watch readers keep only their
// own context and the channel alive).
class TokenClient {
 public:
  explicit TokenClient(std::shared_ptr<grpc::Channel> channel, TokenClientOptions options = {});

  TokenClient(const TokenClient&) = delete;
  TokenClient& operator=(const TokenClient&) = delete;

  // CreateToken; never retried. The response holds the secret (shown once): never log it.
  absl::StatusOr<apitoken::v1::CreateTokenResponse> Create(
      const apitoken::v1::CreateTokenRequest& request);
  // GetToken. NOT_FOUND/TOKEN_NOT_FOUND for an unknown id.
  absl::StatusOr<apitoken::v1::GetTokenResponse> Get(const apitoken::v1::GetTokenRequest& request);
  // ListTokens: one page (follow next_page_token for more).
  absl::StatusOr<apitoken::v1::ListTokensResponse> List(
      const apitoken::v1::ListTokensRequest& request);
  // ListTokenEvents: one page of a token's history, newest first (follow next_page_token).
  absl::StatusOr<apitoken::v1::ListTokenEventsResponse> ListEvents(
      const apitoken::v1::ListTokenEventsRequest& request);
  // EnableToken (DISABLED -> ACTIVE); see the class comment for retries.
  absl::StatusOr<ChangeResult> Enable(const apitoken::v1::EnableTokenRequest& request);
  // DisableToken (ACTIVE -> DISABLED); see the class comment for retries.
  absl::StatusOr<ChangeResult> Disable(const apitoken::v1::DisableTokenRequest& request);
  // DeleteToken (-> DELETED); see the class comment for retries.
  absl::StatusOr<ChangeResult> Delete(const apitoken::v1::DeleteTokenRequest& request);
  // VerifyToken: a bad secret is an answer (result), not an error.
  absl::StatusOr<apitoken::v1::VerifyTokenResponse> Verify(
      const apitoken::v1::VerifyTokenRequest& request);

  // Opens a WatchTokens stream on `context`, which the caller owns and must keep alive until
  // the reader's Finish() has returned. No deadline is set (a watch runs until cancelled): set
  // one on `context` before the call if wanted; context->TryCancel() (thread-safe) ends the
  // stream. Read the stream with reader->Read(), then call reader->Finish() and convert its
  // status with FromGrpcStatus. Not retried.
  std::unique_ptr<grpc::ClientReader<apitoken::v1::WatchTokensResponse>> Watch(
      grpc::ClientContext* context, const apitoken::v1::WatchTokensRequest& request);

 private:
  // A unary method of the generated stub.
  template <typename Request, typename Response>
  using UnaryMethod = grpc::Status (apitoken::v1::TokenService::Stub::*)(grpc::ClientContext*,
                                                                         const Request&, Response*);

  // One attempt of `method` with the absolute `deadline`.
  template <typename Request, typename Response>
  absl::StatusOr<Response> Attempt(UnaryMethod<Request, Response> method, const Request& request,
                                   absl::Time deadline);

  // Runs `attempt` (given the attempt number, 1-based) until it succeeds, fails with another
  // code than UNAVAILABLE, options_.retry.max_attempts is reached, or the next backoff would
  // end after `deadline`; returns the last outcome.
  template <typename Result>
  absl::StatusOr<Result> WithRetries(absl::Time deadline,
                                     absl::FunctionRef<absl::StatusOr<Result>(int)> attempt);

  // A read: Attempt under WithRetries, with the deadline options_.deadline from now.
  template <typename Request, typename Response>
  absl::StatusOr<Response> Read(UnaryMethod<Request, Response> method, const Request& request);

  // Enable/Disable/Delete: retried as the class comment says; `already_reason` is the refusal
  // that means the token is already in the requested state.
  template <typename Request, typename Response>
  absl::StatusOr<ChangeResult> Change(UnaryMethod<Request, Response> method, const Request& request,
                                      absl::string_view already_reason);

  // The sleep before retry number `retry`.
  absl::Duration NextBackoff(int retry);

  const std::unique_ptr<apitoken::v1::TokenService::Stub> stub_;
  const TokenClientOptions options_;

  absl::Mutex gen_mu_;
  absl::BitGen gen_ ABSL_GUARDED_BY(gen_mu_);
};

}  // namespace tokenstatus
