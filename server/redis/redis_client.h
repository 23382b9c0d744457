#pragma once

#include <hiredis/async.h>

#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/redis/redis_metrics.h"

struct event;
struct event_base;

namespace tokenstatus {

struct RedisClientOptions {
  std::string address = "127.0.0.1:6379";  // "host:port" or "unix:/path/to.sock"
  std::string user;                        // ACL user; empty = default user (needs password)
  std::string password;                    // empty = no AUTH
  int connections = 2;                     // pipelined connections, used round-robin
  absl::Duration connect_timeout = absl::Seconds(1);  // bounds connect + AUTH of each attempt
  // Sentinel mode, when `sentinels` is not empty: `address` is ignored and every connection
  // attempt first asks the sentinels ("host:port" each) where the primary named `master_name`
  // is (see RedisClient). `sentinel_password` (empty: no AUTH) is sent to the sentinels;
  // `sentinel_timeout` bounds each sentinel's connect + query.
  std::vector<std::string> sentinels;
  std::string master_name;
  std::string sentinel_password;
  absl::Duration sentinel_timeout = absl::Milliseconds(500);
  // Where the commands' round trips, errors and reconnects are recorded (may be null: nowhere).
  // Must outlive the client.
  RedisMetrics* metrics = nullptr;
};

// An asynchronous Redis client: hiredis's async API on one libevent I/O thread, a few pipelined
// connections used round-robin.
//
// Commands submitted from any thread are queued and sent by the I/O thread in batches (one
// write per connection per batch). Each connection keeps its commands in flight in FIFO order
// with their deadlines; a timer, armed only while commands are in flight, fails overdue
// commands with UNAVAILABLE (a late reply is then ignored) and treats a connection whose oldest
// command is overdue, and that has received no reply for connect_timeout, as dead: it is closed
// (its commands fail with UNAVAILABLE) and reconnected. (A connection whose commands wait behind
// a blocking one, e.g. WAIT, still answers and is kept.)
// Connections that fail or close reconnect by themselves with jittered exponential backoff
// (50 ms .. 2 s); each attempt (TCP connect plus AUTH, or PING without credentials) is bounded
// by connect_timeout. Up/down transitions of the whole client are logged once each.
//
// Sentinel mode follows the redis.io "Sentinel client spec": each connection attempt asks the
// sentinels in turn (starting with the one that answered last; the next one at once if one
// fails or does not know the primary, the usual backoff once all have failed) with
// SENTINEL get-master-addr-by-name, connects to the address named, authenticates, and sends
// ROLE: a server that is not a master is dropped like a failed attempt (backoff, then the
// sentinels are asked again). Every reconnect asks again. An error reply READONLY or LOADING
// means the primary moved: the command gets its error reply, then the connection is closed
// (the commands behind it fail with UNAVAILABLE) and reconnects through the sentinels. A new
// primary address is logged once (event=redis_primary).
//
// Blocking commands (BLPOP, XREAD BLOCK, ...) hold up every command pipelined behind them on
// their connection: give them a client of their own.
//
// Thread-safe. Callbacks run on the I/O thread and must not block; they may call Command().
// The client must not be destroyed from one of its own callbacks.
class RedisClient {
 public:
  using ReplyCallback = absl::AnyInvocable<void(absl::StatusOr<const redisReply*>)>;

  // Starts the I/O thread and begins connecting; returns at once. Redis may be down: commands
  // then fail fast with UNAVAILABLE/STORE_UNAVAILABLE until a reconnect succeeds (commands
  // submitted while the very first connection attempts are still in progress wait for their
  // outcome, up to their deadline). Error only for bad options (INVALID_ARGUMENT): an address
  // that is neither "host:port" nor "unix:/path", connections < 1, connect_timeout <= 0, or a
  // user without a password.
  static absl::StatusOr<std::unique_ptr<RedisClient>> Start(RedisClientOptions options);

  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Stops the I/O thread; every pending command completes with UNAVAILABLE first.
  ~RedisClient();

  // Sends one command (binary-safe args). `done` runs exactly once, on the I/O thread, with the
  // reply (valid only during the call; error replies are passed as REDIS_REPLY_ERROR replies),
  // or UNAVAILABLE/STORE_UNAVAILABLE if not connected, the connection dropped, or no reply came
  // by `deadline`; INVALID_ARGUMENT for empty `args`. Not for commands that change the
  // connection's reply protocol (SUBSCRIBE, MONITOR, CLIENT REPLY, RESET).
  void Command(std::vector<std::string> args, absl::Time deadline, ReplyCallback done);

  // Sends `args` on the connection that carried the reply being handled, behind whatever is
  // already pipelined on it; e.g. WAIT, which counts the replicas that have the writes of its
  // own connection. Call it only on the I/O thread, inside a ReplyCallback that received a
  // reply (not a failure); anywhere else, or when that connection is closing, `done` gets
  // UNAVAILABLE/STORE_UNAVAILABLE. Otherwise as Command().
  void FollowUp(std::vector<std::string> args, absl::Time deadline, ReplyCallback done);

  // Installs `listener` (replacing any previous one). It is called on the I/O thread once with
  // the current state right after being installed, then whenever "at least one connection is
  // up" changes.
  void SetConnectedListener(absl::AnyInvocable<void(bool connected)> listener);

 private:
  struct Endpoint {
    std::string host;       // TCP host, or empty for a unix socket
    int port = 0;           // TCP port
    std::string unix_path;  // unix socket path, or empty for TCP
  };
  // A command waiting in the submission queue (or, during start-up, for a connection).
  struct Request {
    std::vector<std::string> args;
    absl::Time deadline;
    ReplyCallback done;
  };
  // A command sent on a connection, waiting for its reply.
  struct InFlight {
    absl::Time deadline;
    ReplyCallback done;  // null once completed (a timeout); the late reply is then ignored
  };
  struct EventBaseDeleter {
    void operator()(event_base* base) const;
  };
  struct EventDeleter {
    void operator()(event* ev) const;
  };
  struct AsyncContextDeleter {
    void operator()(redisAsyncContext* context) const;
  };
  using EventBasePtr = std::unique_ptr<event_base, EventBaseDeleter>;
  using EventPtr = std::unique_ptr<event, EventDeleter>;
  using AsyncContextPtr = std::unique_ptr<redisAsyncContext, AsyncContextDeleter>;
  // What a connection's context is connected to.
  enum class Peer { kRedis, kSentinel };
  // One pipelined connection. I/O thread only.
  struct Connection {
    RedisClient* client = nullptr;
    Peer peer = Peer::kRedis;
    // Sentinel mode: the primary the last sentinel named, for the next attempt (cleared when
    // the connection is lost, so that every reconnect asks again).
    std::optional<Endpoint> primary;
    size_t sentinels_asked = 0;  // sentinels asked in vain in this round
    size_t sentinel = 0;         // the index of the sentinel being asked
    // The hiredis context while connecting or connected. Reset (redisAsyncFree) when we close
    // the connection; released when hiredis frees it itself (connect failure, I/O error, EOF).
    AsyncContextPtr context;
    bool ready = false;        // connected and authenticated: commands may be sent
    bool resolved = false;     // the first connect attempt has succeeded or failed
    int failures = 0;          // consecutive failed attempts (backoff exponent)
    std::string close_reason;  // why we closed it: the error of the commands that were in flight
    absl::Time last_reply = absl::InfinitePast();     // when the latest reply arrived
    std::deque<std::unique_ptr<InFlight>> in_flight;  // mirrors hiredis's reply callback FIFO
    EventPtr retry_timer;                             // reconnect after backoff
  };

  RedisClient(RedisClientOptions options, Endpoint endpoint, std::vector<Endpoint> sentinels);

  static absl::StatusOr<Endpoint> ParseAddress(absl::string_view address);
  static std::string Describe(const Endpoint& endpoint);

  // Wakes the I/O thread (eventfd).
  void Wake();
  // `done`, recording the command's round trip and outcome in options_.metrics when set.
  ReplyCallback Measured(const std::vector<std::string>& args, ReplyCallback done) const;

  // --- I/O thread only ---
  void Run();
  void OnWake();
  void Dispatch(Request request);
  // Queues the command on the connection's context; false (after failing `done` with
  // UNAVAILABLE) if hiredis refuses it because the context is closing.
  bool Send(Connection& connection, const std::vector<std::string>& args, absl::Time deadline,
            ReplyCallback done);
  Connection* NextReadyConnection();
  // Starts the next attempt: to `endpoint_`, or in sentinel mode to the primary a sentinel
  // named, else to the next sentinel to ask.
  void Connect(Connection& connection);
  // Opens a context to `endpoint` for `connection`; false (after OnConnectionLost) on failure.
  bool Open(Connection& connection, const Endpoint& endpoint, Peer peer);
  // Connects `connection` to the next sentinel of this round and sends [AUTH and] the query.
  void AskSentinel(Connection& connection);
  // The query's answer: the primary's address (hop to it at once), or a failure of this
  // sentinel (Close: the next one is asked).
  void OnSentinelReply(Connection& connection, absl::StatusOr<const redisReply*> reply);
  // AUTH/PING refused: Close. Accepted: ready (in sentinel mode, once ROLE has answered).
  void OnHandshakeReply(Connection& connection, absl::StatusOr<const redisReply*> reply);
  // Sentinel mode: ready if ROLE says master (logging a new primary), else Close.
  void OnRoleReply(Connection& connection, absl::StatusOr<const redisReply*> reply);
  // The connection takes commands; resets its backoff and dispatches parked commands.
  void MarkReady(Connection& connection);
  // What the client connects to, for logs: the address, or "sentinel:<master name>".
  std::string Target() const;
  // Closes the connection (its in-flight commands fail with UNAVAILABLE `why`) and schedules a
  // reconnect. Safe inside hiredis reply callbacks (hiredis then frees after the callback).
  void Close(Connection& connection, absl::string_view why);
  // Records a failed attempt or a lost connection and schedules the next attempt.
  void OnConnectionLost(Connection& connection, absl::string_view why);
  void UpdateConnected();
  void FailParked(absl::string_view why);
  void CheckDeadlines();
  void ArmDeadlineTimer(absl::Time at);
  void Shutdown();

  static void OnReply(redisAsyncContext* context, void* reply, void* privdata);
  static void OnConnect(const redisAsyncContext* context, int status);
  static void OnDisconnect(const redisAsyncContext* context, int status);

  const RedisClientOptions options_;
  const Endpoint endpoint_;                   // unused in sentinel mode
  const std::vector<Endpoint> sentinels_;     // empty unless sentinel mode
  const std::vector<std::string> handshake_;  // AUTH [user] password, or PING
  int wake_fd_ = -1;                          // eventfd; closed by the destructor

  // libevent state; `base_` is declared first so that it is freed after the events.
  EventBasePtr base_;
  EventPtr wake_event_;
  EventPtr deadline_timer_;

  absl::Mutex mu_;
  std::vector<Request> requests_ ABSL_GUARDED_BY(mu_);  // submitted, not yet taken by the loop
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;          // the destructor has begun
  bool closed_ ABSL_GUARDED_BY(mu_) = false;            // the I/O thread has finished
  absl::AnyInvocable<void(bool)> new_listener_ ABSL_GUARDED_BY(mu_);

  // I/O thread only.
  std::vector<std::unique_ptr<Connection>> connections_;
  std::vector<Request> batch_;     // the requests taken from `requests_` (reused buffer)
  std::vector<Request> parked_;    // waiting for the first connection attempts
  std::vector<const char*> argv_;  // hiredis argument buffers (reused)
  std::vector<size_t> argv_len_;
  absl::AnyInvocable<void(bool)> listener_;
  bool connected_ = false;          // at least one connection is ready
  bool ever_connected_ = false;     // connected_ has been true before (reconnects count)
  bool logged_down_ = false;        // the last logged transition was "down"
  bool logged_any_ = false;         // any transition was logged
  size_t next_connection_ = 0;      // round-robin position
  size_t next_sentinel_ = 0;        // the sentinel to ask first: the one that answered last
  std::string primary_;             // the primary address last logged (sentinel mode)
  Connection* replying_ = nullptr;  // the connection whose reply is being handled (FollowUp)
  absl::Time timer_armed_at_ = absl::InfiniteFuture();
  std::string last_error_;
  std::minstd_rand jitter_;

  std::thread thread_;  // started last, joined by the destructor
};

}  // namespace tokenstatus
