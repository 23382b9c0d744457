#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace tokenstatus::bench {

// The server the bench watches.
enum class WatchServer {
  // A TokenService: WatchTokens streams (unfiltered, from now with the initial state; SYNCED
  // marks a stream ready); the changes alternate DisableToken / EnableToken on one token.
  kTokenstatus,
  // etcd 3.4: one Watch stream per watcher, each with one watcher on the run's key prefix, from
  // now (its "created" response marks it ready); the changes are Puts of one key under that
  // prefix, alternating two kEtcdValueBytes values.
  kEtcd,
};

// Parses "tokenstatus" or "etcd"; INVALID_ARGUMENT otherwise.
absl::StatusOr<WatchServer> ParseWatchServer(absl::string_view text);
// The name ParseWatchServer parses.
absl::string_view WatchServerName(WatchServer server);

struct WatchBenchOptions {
  WatchServer server = WatchServer::kTokenstatus;
  std::string target = "127.0.0.1:50051";  // host:port of the server
  // Watch streams, >= 0 (0: only the changes' acknowledgement times, the baseline for them).
  int watchers = 1000;
  // The watchers' gRPC channels (HTTP/2 connections), >= 1; the changes have one more, their
  // own.
  int connections = 10;
  int changes = 50;                                  // changes to the token (or etcd key), >= 1
  absl::Duration interval = absl::Milliseconds(20);  // between the starts of two changes
  absl::Duration warmup = absl::Seconds(1);        // idle time between "all synced" and the changes
  absl::Duration rpc_timeout = absl::Seconds(10);  // deadline of each unary RPC
  // How long after the last change's acknowledgement the run waits for every watcher to have
  // received it.
  absl::Duration drain_timeout = absl::Seconds(30);
  // Process id of the server, to read its resident memory before and after the watchers are
  // opened (/proc/<pid>/status VmRSS) and its CPU time while the changes fan out
  // (/proc/<pid>/stat); 0 = not measured.
  int server_pid = 0;
  std::string account_id = "ACC-0000-0002";  // owner of the token the run toggles
  // etcd: the watchers watch the prefix "<etcd_prefix><run>/" and the changes put the key
  // "<etcd_prefix><run>/token", where <run> is the run's start time in microseconds since the
  // epoch (so runs against one etcd never share keys).
  std::string etcd_prefix = "/tokenstatus-bench/watch/";
};

struct WatchBenchReport {
  absl::Duration setup = absl::ZeroDuration();  // opening the streams until all were SYNCED
  int64_t expected = 0;                         // watchers * changes
  // (watcher, change) pairs that arrived, each counted once: events, not messages (a server may
  // batch several events into one message).
  int64_t delivered = 0;
  int64_t duplicates = 0;    // a change that arrived twice at one watcher
  int64_t out_of_order = 0;  // an event whose revision was not above the previous one
  int64_t ended = 0;         // streams that ended before the run did
  std::string first_end;     // "<code>: <message>" of the first stream that ended, if any
  int64_t messages = 0;      // messages that carried events, over all watchers
  // Time from the start of a change's RPC at the client to the change's arrival at a watcher,
  // over every delivered pair. The server acknowledges a change only once its own mirror shows
  // it, so watchers often have it before the client has the acknowledgement: measuring from the
  // call's start bounds the acknowledgement-to-arrival time from above and never clips it.
  absl::Duration p50 = absl::ZeroDuration();
  absl::Duration p99 = absl::ZeroDuration();
  absl::Duration max = absl::ZeroDuration();
  // Acknowledgement time of the change calls (start to reply): what the fan-out must not delay.
  // The first change comes after the warmup's idle time on its connection, and gRPC 1.51
  // sometimes holds such a request for ~100 ms before the server's handler runs (README,
  // "What bounds them"), with or without watchers: it is reported apart, and the percentiles
  // are over the other changes (over the first alone when there is only one).
  absl::Duration first_change = absl::ZeroDuration();
  absl::Duration change_p50 = absl::ZeroDuration();
  absl::Duration change_p99 = absl::ZeroDuration();
  // The bench's own CPU use (user + system, whole process) from the first change until the last
  // arrival, divided by that time: 100 = one core busy.
  double client_cpu_percent = 0;
  // The server's CPU time (user + system, all its threads) from the first change until the last
  // arrival: with the changes' own calls, the cost of the fan-out; 0 when not measured.
  absl::Duration server_cpu = absl::ZeroDuration();
  // The server's VmRSS before opening the streams and once all were SYNCED (after the warmup),
  // in KiB; 0 when not measured.
  int64_t server_rss_before_kib = 0;
  int64_t server_rss_after_kib = 0;
};

// Opens `connections` + 1 channels to `target` (waiting until each is connected), creates one
// token (etcd: puts the key) over the last, the changes' own, reads the server's RSS, opens
// `watchers` watch streams (round robin over the others; see WatchServer), waits until all are
// ready, waits `warmup`, reads the RSS again, then makes `changes` changes, one every `interval`,
// and waits until every watcher has received the last one (or `drain_timeout`). Each event is
// matched to its change by revision (etcd: the key's mod_revision). A watcher that etcd cancels
// counts as a stream that ended. Errors: INVALID_ARGUMENT for options out of range; UNAVAILABLE if
// a channel does not connect; DEADLINE_EXCEEDED if the streams are not all ready within
// drain_timeout; the status of a failed unary call. Streams that end early are counted in the
// report, not returned.
absl::StatusOr<WatchBenchReport> RunWatchBench(const WatchBenchOptions& options);

// One line of space-separated key=value pairs (server, watchers, connections, changes,
// interval_ms, setup_ms, expected, delivered, duplicates, out_of_order, ended, messages, p50_us,
// p99_us, max_us, first_change_us, change_p50_us, change_p99_us, client_cpu_pct, server_cpu_ms,
// server_cpu_us_per_event (server_cpu per delivered event; 0 when none), server_rss_before_kib,
// server_rss_after_kib, kib_per_watcher), for scripts.
std::string FormatWatchReport(const WatchBenchOptions& options, const WatchBenchReport& report);

}  // namespace tokenstatus::bench
