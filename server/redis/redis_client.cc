#include "server/redis/redis_client.h"

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <iterator>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/backoff.h"
#include "core/log.h"
#include "core/status_util.h"
#include "server/redis/redis_reply.h"

namespace tokenstatus {
namespace {

constexpr absl::Duration kMinBackoff = absl::Milliseconds(50);
constexpr absl::Duration kMaxBackoff = absl::Seconds(2);
constexpr absl::string_view kUnixPrefix = "unix:";

absl::Status InvalidOption(absl::string_view message) {
  return MakeError(absl::StatusCode::kInvalidArgument, reason::kInvalidArgument,
                   absl::StrCat("redis client options: ", message));
}

timeval TimevalUntil(absl::Time at) {
  return absl::ToTimeval(std::max(at - absl::Now(), absl::ZeroDuration()));
}

// Why hiredis failed `context`. The error lives in the embedded redisContext (hiredis copies it
// to context->err only after the connect callback has run).
std::string HiredisError(const redisAsyncContext* context, absl::string_view fallback) {
  if (context->c.err != 0 && context->c.errstr[0] != '\0') return context->c.errstr;
  return std::string(fallback);
}

std::vector<std::string> HandshakeCommand(const RedisClientOptions& options) {
  if (options.password.empty()) return {"PING"};
  if (options.user.empty()) return {"AUTH", options.password};
  return {"AUTH", options.user, options.password};
}

}  // namespace

void RedisClient::EventBaseDeleter::operator()(event_base* base) const { event_base_free(base); }

void RedisClient::EventDeleter::operator()(event* ev) const { event_free(ev); }

void RedisClient::AsyncContextDeleter::operator()(redisAsyncContext* context) const {
  redisAsyncFree(context);
}

absl::StatusOr<RedisClient::Endpoint> RedisClient::ParseAddress(absl::string_view address) {
  Endpoint endpoint;
  if (absl::StartsWith(address, kUnixPrefix)) {
    endpoint.unix_path = std::string(address.substr(kUnixPrefix.size()));
    if (endpoint.unix_path.empty()) return InvalidOption("empty unix socket path");
    return endpoint;
  }
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos) {
    return InvalidOption(absl::StrCat("address \"", absl::CHexEscape(address),
                                      "\" is neither host:port nor unix:/path"));
  }
  absl::string_view host = address.substr(0, colon);
  if (absl::StartsWith(host, "[") && absl::EndsWith(host, "]")) {
    host = host.substr(1, host.size() - 2);  // [IPv6]:port
  }
  if (host.empty()) return InvalidOption("empty host in address");
  if (!absl::SimpleAtoi(address.substr(colon + 1), &endpoint.port) || endpoint.port < 1 ||
      endpoint.port > 65535) {
    return InvalidOption(absl::StrCat("bad port in address \"", absl::CHexEscape(address), "\""));
  }
  endpoint.host = std::string(host);
  return endpoint;
}

absl::StatusOr<std::unique_ptr<RedisClient>> RedisClient::Start(RedisClientOptions options) {
  Endpoint endpoint;
  std::vector<Endpoint> sentinels;
  if (options.sentinels.empty()) {
    absl::StatusOr<Endpoint> parsed = ParseAddress(options.address);
    if (!parsed.ok()) return parsed.status();
    endpoint = *std::move(parsed);
  } else {
    for (const std::string& address : options.sentinels) {
      absl::StatusOr<Endpoint> sentinel = ParseAddress(address);
      if (!sentinel.ok()) return sentinel.status();
      sentinels.push_back(*std::move(sentinel));
    }
    if (options.master_name.empty()) return InvalidOption("sentinels need a master name");
    if (options.sentinel_timeout <= absl::ZeroDuration()) {
      return InvalidOption("sentinel_timeout must be positive");
    }
  }
  if (options.connections < 1) return InvalidOption("connections must be at least 1");
  if (options.connect_timeout <= absl::ZeroDuration()) {
    return InvalidOption("connect_timeout must be positive");
  }
  if (!options.user.empty() && options.password.empty()) {
    return InvalidOption("a user needs a password");
  }

  std::unique_ptr<RedisClient> client(
      new RedisClient(std::move(options), std::move(endpoint), std::move(sentinels)));
  client->wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  client->base_.reset(event_base_new());
  if (client->wake_fd_ < 0 || client->base_ == nullptr) {
    return MakeError(absl::StatusCode::kInternal, reason::kInternal,
                     "redis client: cannot create its event loop");
  }
  client->wake_event_.reset(event_new(
      client->base_.get(), client->wake_fd_, EV_READ | EV_PERSIST,
      [](evutil_socket_t, short, void* self) { static_cast<RedisClient*>(self)->OnWake(); },
      client.get()));
  client->deadline_timer_.reset(evtimer_new(
      client->base_.get(),
      [](evutil_socket_t, short, void* self) { static_cast<RedisClient*>(self)->CheckDeadlines(); },
      client.get()));
  bool events_ok = client->wake_event_ != nullptr && client->deadline_timer_ != nullptr &&
                   event_add(client->wake_event_.get(), nullptr) == 0;
  for (int i = 0; i < client->options_.connections; ++i) {
    auto connection = std::make_unique<Connection>();
    connection->client = client.get();
    connection->retry_timer.reset(evtimer_new(
        client->base_.get(),
        [](evutil_socket_t, short, void* arg) {
          auto* connection = static_cast<Connection*>(arg);
          connection->client->Connect(*connection);
        },
        connection.get()));
    events_ok = events_ok && connection->retry_timer != nullptr;
    client->connections_.push_back(std::move(connection));
  }
  if (!events_ok) {
    return MakeError(absl::StatusCode::kInternal, reason::kInternal,
                     "redis client: cannot create its events");
  }
  client->thread_ = std::thread([raw = client.get()] { raw->Run(); });
  return client;
}

RedisClient::RedisClient(RedisClientOptions options, Endpoint endpoint,
                         std::vector<Endpoint> sentinels)
    : options_(std::move(options)),
      endpoint_(std::move(endpoint)),
      sentinels_(std::move(sentinels)),
      handshake_(HandshakeCommand(options_)),
      jitter_(std::random_device()()) {}

RedisClient::~RedisClient() {
  if (thread_.joinable()) {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    Wake();
    thread_.join();
  }
  if (wake_fd_ >= 0) close(wake_fd_);
}

RedisClient::ReplyCallback RedisClient::Measured(const std::vector<std::string>& args,
                                                 ReplyCallback done) const {
  if (options_.metrics == nullptr || args.empty()) return done;
  return [metrics = options_.metrics, command = args[0], started = absl::Now(),
          done = std::move(done)](absl::StatusOr<const redisReply*> reply) mutable {
    metrics->Record(command, started, !reply.ok(),
                    !reply.ok() && absl::StrContains(reply.status().message(), "deadline"),
                    reply.ok() ? *reply : nullptr);
    done(std::move(reply));
  };
}

void RedisClient::Command(std::vector<std::string> args, absl::Time deadline, ReplyCallback done) {
  done = Measured(args, std::move(done));
  bool wake = false;
  bool accepted = false;
  {
    absl::MutexLock lock(&mu_);
    if (!closed_) {
      accepted = true;
      wake = requests_.empty();
      requests_.push_back(Request{std::move(args), deadline, std::move(done)});
    }
  }
  if (!accepted) {
    done(RedisUnavailable("client shut down"));  // only reachable by a caller racing ~RedisClient
    return;
  }
  if (wake) Wake();
}

void RedisClient::FollowUp(std::vector<std::string> args, absl::Time deadline, ReplyCallback done) {
  // thread_ is not modified after Start(): its id may be read from any thread.
  if (std::this_thread::get_id() != thread_.get_id() || replying_ == nullptr || !replying_->ready ||
      replying_->context == nullptr) {
    done(RedisUnavailable("the connection of the reply is gone"));
    return;
  }
  Send(*replying_, args, deadline, Measured(args, std::move(done)));
}

void RedisClient::SetConnectedListener(absl::AnyInvocable<void(bool connected)> listener) {
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    new_listener_ = std::move(listener);
  }
  Wake();
}

void RedisClient::Wake() {
  const uint64_t one = 1;
  // The counter cannot overflow in practice; a failed write means a wake-up is already pending.
  [[maybe_unused]] ssize_t written = write(wake_fd_, &one, sizeof(one));
}

void RedisClient::Run() {
  // hiredis writes with write(2): a peer that closed its socket must give EPIPE, not kill the
  // process. Blocking SIGPIPE in this thread keeps it pending here instead of delivering it.
  sigset_t sigpipe;
  sigemptyset(&sigpipe);
  sigaddset(&sigpipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &sigpipe, nullptr);

  for (const std::unique_ptr<Connection>& connection : connections_) Connect(*connection);
  event_base_dispatch(base_.get());
  Shutdown();
}

void RedisClient::OnWake() {
  uint64_t count = 0;
  // Reset the eventfd before taking the queue: a Command() after the swap wakes us again.
  [[maybe_unused]] ssize_t got = read(wake_fd_, &count, sizeof(count));
  absl::AnyInvocable<void(bool)> listener;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      event_base_loopbreak(base_.get());
      return;  // Shutdown() fails what is queued
    }
    batch_.swap(requests_);
    listener = std::move(new_listener_);
    new_listener_ = nullptr;
  }
  if (listener != nullptr) {
    listener_ = std::move(listener);
    listener_(connected_);
  }
  for (Request& request : batch_) Dispatch(std::move(request));
  batch_.clear();
}

void RedisClient::Dispatch(Request request) {
  if (request.args.empty()) {
    request.done(MakeError(absl::StatusCode::kInvalidArgument, reason::kInvalidArgument,
                           "redis client: empty command"));
    return;
  }
  if (request.deadline <= absl::Now()) {
    request.done(RedisUnavailable("deadline exceeded before the command was sent"));
    return;
  }
  if (Connection* connection = NextReadyConnection(); connection != nullptr) {
    Send(*connection, request.args, request.deadline, std::move(request.done));
    return;
  }
  const bool starting = std::any_of(connections_.begin(), connections_.end(),
                                    [](const auto& connection) { return !connection->resolved; });
  if (starting) {
    if (request.deadline < timer_armed_at_) ArmDeadlineTimer(request.deadline);
    parked_.push_back(std::move(request));
    return;
  }
  request.done(RedisUnavailable(
      absl::StrCat("not connected to ", Target(), " (last error: ", last_error_, ")")));
}

bool RedisClient::Send(Connection& connection, const std::vector<std::string>& args,
                       absl::Time deadline, ReplyCallback done) {
  argv_.clear();
  argv_len_.clear();
  for (const std::string& arg : args) {
    argv_.push_back(arg.data());
    argv_len_.push_back(arg.size());
  }
  auto in_flight = std::make_unique<InFlight>(InFlight{deadline, std::move(done)});
  if (redisAsyncCommandArgv(connection.context.get(), &RedisClient::OnReply, in_flight.get(),
                            static_cast<int>(argv_.size()), argv_.data(),
                            argv_len_.data()) != REDIS_OK) {
    in_flight->done(RedisUnavailable("connection is closing"));
    return false;
  }
  connection.in_flight.push_back(std::move(in_flight));
  if (deadline < timer_armed_at_) ArmDeadlineTimer(deadline);
  return true;
}

RedisClient::Connection* RedisClient::NextReadyConnection() {
  const size_t n = connections_.size();
  for (size_t i = 0; i < n; ++i) {
    Connection& connection = *connections_[(next_connection_ + i) % n];
    if (connection.ready) {
      next_connection_ = (next_connection_ + i + 1) % n;
      return &connection;
    }
  }
  return nullptr;
}

void RedisClient::Connect(Connection& connection) {
  connection.close_reason.clear();
  if (sentinels_.empty()) {
    if (!Open(connection, endpoint_, Peer::kRedis)) return;
  } else if (!connection.primary.has_value()) {
    AskSentinel(connection);
    return;
  } else if (!Open(connection, *connection.primary, Peer::kRedis)) {
    return;
  }
  // hiredis buffers the handshake until the socket is connected; its deadline bounds the attempt.
  const absl::Time deadline = absl::Now() + options_.connect_timeout;
  if (!Send(connection, handshake_, deadline,
            [this, &connection](absl::StatusOr<const redisReply*> reply) {
              OnHandshakeReply(connection, std::move(reply));
            })) {
    Close(connection, "cannot queue the handshake");
    return;
  }
  if (!sentinels_.empty() && !Send(connection, {"ROLE"}, deadline,
                                   [this, &connection](absl::StatusOr<const redisReply*> reply) {
                                     OnRoleReply(connection, std::move(reply));
                                   })) {
    Close(connection, "cannot queue ROLE");
  }
}

bool RedisClient::Open(Connection& connection, const Endpoint& endpoint, Peer peer) {
  connection.peer = peer;
  connection.last_reply = absl::InfinitePast();
  redisAsyncContext* context = endpoint.unix_path.empty()
                                   ? redisAsyncConnect(endpoint.host.c_str(), endpoint.port)
                                   : redisAsyncConnectUnix(endpoint.unix_path.c_str());
  if (context == nullptr) {
    OnConnectionLost(connection, "cannot allocate a connection");
    return false;
  }
  if (context->err != 0) {
    const std::string why = HiredisError(context, "connect failed");
    redisAsyncFree(context);
    OnConnectionLost(connection, why);
    return false;
  }
  context->data = &connection;
  if (redisLibeventAttach(context, base_.get()) != REDIS_OK) {
    redisAsyncFree(context);
    OnConnectionLost(connection, "cannot attach the connection to the event loop");
    return false;
  }
  redisAsyncSetConnectCallback(context, &RedisClient::OnConnect);
  redisAsyncSetDisconnectCallback(context, &RedisClient::OnDisconnect);
  connection.context.reset(context);
  return true;
}

void RedisClient::AskSentinel(Connection& connection) {
  connection.sentinel = (next_sentinel_ + connection.sentinels_asked) % sentinels_.size();
  if (!Open(connection, sentinels_[connection.sentinel], Peer::kSentinel)) return;
  const absl::Time deadline = absl::Now() + options_.sentinel_timeout;
  bool queued = true;
  if (!options_.sentinel_password.empty()) {
    queued = Send(connection, {"AUTH", options_.sentinel_password}, deadline,
                  [this, &connection](absl::StatusOr<const redisReply*> reply) {
                    if (reply.ok() && (*reply)->type == REDIS_REPLY_ERROR) {
                      Close(connection,
                            absl::StrCat("sentinel ", Describe(sentinels_[connection.sentinel]),
                                         " refused AUTH: ", ReplyText(**reply)));
                    }
                  });
  }
  queued = queued && Send(connection, {"SENTINEL", "get-master-addr-by-name", options_.master_name},
                          deadline, [this, &connection](absl::StatusOr<const redisReply*> reply) {
                            OnSentinelReply(connection, std::move(reply));
                          });
  if (!queued) Close(connection, "cannot queue the sentinel query");
}

void RedisClient::OnSentinelReply(Connection& connection, absl::StatusOr<const redisReply*> reply) {
  if (!reply.ok() || connection.context == nullptr) return;  // being closed already
  const std::string sentinel = Describe(sentinels_[connection.sentinel]);
  if ((*reply)->type == REDIS_REPLY_ERROR) {
    Close(connection, absl::StrCat("sentinel ", sentinel, ": ", ReplyText(**reply)));
    return;
  }
  absl::StatusOr<std::vector<absl::string_view>> parts = ReplyStrings(**reply);
  Endpoint primary;
  if (!parts.ok() || parts->size() != 2 || !absl::SimpleAtoi((*parts)[1], &primary.port)) {
    Close(connection, absl::StrCat("sentinel ", sentinel, " does not know the primary \"",
                                   absl::CHexEscape(options_.master_name), "\""));
    return;
  }
  primary.host = std::string((*parts)[0]);
  // The sentinel that answered is asked first from now on.
  next_sentinel_ = connection.sentinel;
  connection.sentinels_asked = 0;
  connection.primary = std::move(primary);
  // Hop to the primary once hiredis has let go of the sentinel's context (it is freed after
  // this callback returns): closed, then an immediate new attempt.
  connection.context.reset();
  const timeval now = {0, 0};
  evtimer_add(connection.retry_timer.get(), &now);
}

void RedisClient::OnHandshakeReply(Connection& connection,
                                   absl::StatusOr<const redisReply*> reply) {
  // A failed outcome means the connection is being closed already (timeout, connect failure,
  // EOF); whoever closes it schedules the next attempt.
  if (!reply.ok()) return;
  if ((*reply)->type == REDIS_REPLY_ERROR) {
    Close(connection, absl::StrCat("handshake refused: ", ReplyText(**reply)));
    return;
  }
  if (sentinels_.empty()) MarkReady(connection);  // else ready once ROLE says master
}

void RedisClient::OnRoleReply(Connection& connection, absl::StatusOr<const redisReply*> reply) {
  if (!reply.ok() || connection.context == nullptr) return;  // being closed already
  absl::StatusOr<absl::Span<const redisReply* const>> role = ReplyArray(**reply);
  const absl::string_view name =
      role.ok() && !role->empty() ? ReplyText(*(*role)[0]) : absl::string_view();
  if (name != "master") {
    Close(connection, absl::StrCat(Describe(*connection.primary), " is not the primary (ROLE ",
                                   name.empty() ? ReplyText(**reply) : name, ")"));
    return;
  }
  const std::string address = Describe(*connection.primary);
  if (address != primary_) {
    primary_ = address;
    Log(LogLevel::kInfo,
        absl::StrCat("event=redis_primary master=", options_.master_name, " address=", address));
  }
  MarkReady(connection);
}

void RedisClient::MarkReady(Connection& connection) {
  connection.ready = true;
  connection.resolved = true;
  connection.failures = 0;
  UpdateConnected();
}

std::string RedisClient::Target() const {
  if (sentinels_.empty()) return options_.address;
  return absl::StrCat("sentinel:", options_.master_name,
                      primary_.empty() ? "" : absl::StrCat("@", primary_));
}

std::string RedisClient::Describe(const Endpoint& endpoint) {
  if (!endpoint.unix_path.empty()) return absl::StrCat(kUnixPrefix, endpoint.unix_path);
  return absl::StrCat(endpoint.host, ":", endpoint.port);
}

void RedisClient::Close(Connection& connection, absl::string_view why) {
  connection.close_reason = std::string(why);
  connection.ready = false;
  // redisAsyncFree: the in-flight callbacks run with NULL replies (at once, or right after the
  // current hiredis callback returns), then OnDisconnect, which ignores a context we closed.
  connection.context.reset();
  OnConnectionLost(connection, why);
}

void RedisClient::OnConnectionLost(Connection& connection, absl::string_view why) {
  const bool from_sentinel = connection.peer == Peer::kSentinel;
  last_error_ =
      from_sentinel && !absl::StartsWith(why, "sentinel ")
          ? absl::StrCat("sentinel ", Describe(sentinels_[connection.sentinel]), ": ", why)
          : std::string(why);
  connection.ready = false;
  connection.primary.reset();  // every reconnect asks the sentinels again
  if (from_sentinel && ++connection.sentinels_asked < sentinels_.size()) {
    const timeval now = {0, 0};  // ask the next sentinel at once
    evtimer_add(connection.retry_timer.get(), &now);
    return;
  }
  connection.sentinels_asked = 0;
  connection.resolved = true;
  const Backoff backoff{.initial = kMinBackoff, .max = kMaxBackoff};
  const timeval tv = absl::ToTimeval(backoff.Delay(++connection.failures, jitter_));
  evtimer_add(connection.retry_timer.get(), &tv);
  UpdateConnected();
}

void RedisClient::UpdateConnected() {
  const bool up = std::any_of(connections_.begin(), connections_.end(),
                              [](const auto& connection) { return connection->ready; });
  const bool starting =
      !up && std::any_of(connections_.begin(), connections_.end(),
                         [](const auto& connection) { return !connection->resolved; });
  if (up != connected_) {
    connected_ = up;
    if (listener_ != nullptr) listener_(up);
    if (up && ever_connected_ && options_.metrics != nullptr) {
      options_.metrics->reconnects.Increment();
    }
    ever_connected_ = ever_connected_ || up;
  }
  if (!starting && (!logged_any_ || logged_down_ == up)) {
    logged_any_ = true;
    logged_down_ = !up;
    if (up) {
      Log(LogLevel::kInfo, absl::StrCat("event=redis_up address=", Target()));
    } else {
      Log(LogLevel::kWarning, absl::StrCat("event=redis_down address=", Target(), " error=\"",
                                           absl::CHexEscape(last_error_), "\""));
    }
  }
  if (up) {
    std::vector<Request> parked;
    parked.swap(parked_);
    for (Request& request : parked) Dispatch(std::move(request));
  } else if (!starting) {
    FailParked(absl::StrCat("cannot connect to ", Target(), ": ", last_error_));
  }
}

void RedisClient::FailParked(absl::string_view why) {
  std::vector<Request> parked;
  parked.swap(parked_);
  for (Request& request : parked) request.done(RedisUnavailable(why));
}

void RedisClient::CheckDeadlines() {
  timer_armed_at_ = absl::InfiniteFuture();
  const absl::Time now = absl::Now();
  absl::Time next = absl::InfiniteFuture();

  std::vector<Request> overdue;
  auto kept = std::stable_partition(parked_.begin(), parked_.end(), [now](const Request& request) {
    return request.deadline > now;
  });
  std::move(kept, parked_.end(), std::back_inserter(overdue));
  parked_.erase(kept, parked_.end());
  for (const Request& request : parked_) next = std::min(next, request.deadline);
  for (Request& request : overdue) {
    request.done(RedisUnavailable("no connection came up before the deadline"));
  }

  std::vector<Connection*> dead;
  for (const std::unique_ptr<Connection>& connection : connections_) {
    // Callbacks only queue new commands, so the FIFO does not change during this loop.
    for (const std::unique_ptr<InFlight>& in_flight : connection->in_flight) {
      if (in_flight->done == nullptr) continue;  // timed out earlier
      if (in_flight->deadline > now) {
        next = std::min(next, in_flight->deadline);
        continue;
      }
      ReplyCallback done = std::move(in_flight->done);
      in_flight->done = nullptr;
      done(RedisUnavailable("no reply within the deadline"));
    }
    if (connection->in_flight.empty()) continue;
    // Dead: its oldest command is overdue and nothing came for connect_timeout. A connection
    // that still answers is only slow (commands pipelined behind a blocking one, e.g. WAIT).
    const absl::Time dead_at = std::max(connection->in_flight.front()->deadline,
                                        connection->last_reply + options_.connect_timeout);
    if (dead_at <= now) {
      dead.push_back(connection.get());
    } else {
      next = std::min(next, dead_at);
    }
  }
  for (Connection* connection : dead) {
    Close(*connection, "no reply within the deadline; connection considered dead");
  }
  // Close() may have sent parked commands and armed the timer earlier than `next`.
  if (next < timer_armed_at_) ArmDeadlineTimer(next);
}

void RedisClient::ArmDeadlineTimer(absl::Time at) {
  timer_armed_at_ = at;
  const timeval tv = TimevalUntil(at);
  evtimer_add(deadline_timer_.get(), &tv);
}

void RedisClient::OnReply(redisAsyncContext* context, void* reply, void* privdata) {
  Connection& connection = *static_cast<Connection*>(context->data);
  RedisClient& client = *connection.client;
  std::unique_ptr<InFlight> in_flight = std::move(connection.in_flight.front());
  connection.in_flight.pop_front();
  assert(in_flight.get() == privdata);
  if (reply != nullptr) connection.last_reply = absl::Now();  // late replies count too
  if (in_flight->done != nullptr) {
    if (reply != nullptr) {
      client.replying_ = &connection;
      in_flight->done(static_cast<const redisReply*>(reply));
      client.replying_ = nullptr;
    } else {
      in_flight->done(RedisUnavailable(connection.close_reason.empty()
                                           ? HiredisError(context, "connection lost")
                                           : connection.close_reason));
    }
  }
  // In sentinel mode, a primary that answers READONLY or LOADING is no longer (or not yet) the
  // primary: ask the sentinels again.
  if (reply != nullptr && !client.sentinels_.empty() && connection.ready) {
    const auto& answer = *static_cast<const redisReply*>(reply);
    if (IsErrorReply(answer, "READONLY") || IsErrorReply(answer, "LOADING")) {
      client.Close(connection, absl::StrCat("the primary moved: ", ErrorCode(ReplyText(answer))));
      return;
    }
  }
  // The next command already timed out without a reply: the connection is dead. Let the
  // deadline check close it, outside this hiredis callback.
  if (!connection.in_flight.empty() && connection.in_flight.front()->done == nullptr) {
    client.ArmDeadlineTimer(absl::Now());
  }
}

void RedisClient::OnConnect(const redisAsyncContext* context, int status) {
  if (status == REDIS_OK) return;  // ready once the handshake is answered
  Connection& connection = *static_cast<Connection*>(context->data);
  // hiredis frees the context after this callback (after failing its in-flight commands).
  static_cast<void>(connection.context.release());
  connection.close_reason = HiredisError(context, "connect failed");
  connection.client->OnConnectionLost(connection, connection.close_reason);
}

void RedisClient::OnDisconnect(const redisAsyncContext* context, int status) {
  Connection& connection = *static_cast<Connection*>(context->data);
  if (connection.context.get() != context) return;  // closed by Close() or Shutdown()
  // hiredis closed it (I/O error, EOF) and frees it after this callback.
  static_cast<void>(connection.context.release());
  connection.client->OnConnectionLost(connection,
                                      HiredisError(context, "connection closed by the server"));
}

void RedisClient::Shutdown() {
  for (const std::unique_ptr<Connection>& connection : connections_) {
    connection->retry_timer.reset();
    connection->ready = false;
    connection->close_reason = "client shut down";
    connection->context.reset();
  }
  FailParked("client shut down");
  deadline_timer_.reset();
  wake_event_.reset();
  // Callbacks run here may still queue commands: fail them until the queue stays empty.
  while (true) {
    std::vector<Request> requests;
    {
      absl::MutexLock lock(&mu_);
      if (requests_.empty()) {
        closed_ = true;
        new_listener_ = nullptr;
        break;
      }
      requests.swap(requests_);
    }
    for (Request& request : requests) request.done(RedisUnavailable("client shut down"));
  }
}

}  // namespace tokenstatus
