#!/usr/bin/env bash
# The benchmark behind `make bench`: builds the server, the load generator and the no-op server;
# starts a throwaway redis-server (deploy/redis.conf: AOF with appendfsync always, as shipped),
# a throwaway etcd (the reference: one member with etcd's defaults, so its WAL is fsynced before
# a write is acknowledged; data in a temporary directory), the real server and the no-op server;
# then at each concurrency runs, with the same load generator and settings, no-op GetToken, etcd
# Range, GetToken (and again on a second server with --metrics_listen, scraped every second),
# etcd Put (a new key each call), CreateToken, DisableToken/EnableToken,
# token-sidecar's VerifyToken and Envoy ext_authz Check (the sidecar follows the server) and
# redis-benchmark GET/SET; then the fan-out, each run against etcd Watch (one stream per watcher,
# Puts of one key) and then WatchTokens (a fresh server per run, on its own key prefix; each run
# once more with --metrics_listen, scraped every second): 1,000
# watchers over 10 connections with 50 changes 20 ms apart, and 10,000 watchers over 100
# connections with 20 changes 500 ms apart, counting events (not messages); then the client
# caches end to end (tokenstatus-cache-e2e-bench, a fresh server on its own key prefix): 100
# TokenCaches over 10 connections, 100 DisableToken calls one after the other, each timed from its
# reply until every cache reports it; then TokenCache lookups (tokenstatus-cachebench: Check and
# Verify on 100,000 tokens, 1 and 2 threads, next to a plain hash map and SHA-256); then the mirror
# (tokenstatus-mirrorbench, on its own key prefix): fills Redis with 1,000,000 tokens through the
# store's Create, waits until Redis has finished the AOF rewrites and the key-table rehash the
# fill started, and times a fresh mirror's load and its RSS growth. Prints one markdown report and
# writes it to var/bench/results.md, with the ratios tokenstatus / etcd: GetToken / Range,
# CreateToken / Put, Disable/Enable / Put, and the WatchTokens event latency p50 and p99 / etcd
# Watch's. Exit code 1 if any RPC failed, any change did not reach every watcher (or cache)
# exactly once, or the mirror bench failed.
#
# Everything (client, servers, Redis, etcd) shares this machine's cores: the CPU columns tell who
# was busy. Settings (environment): BUILD_DIR (build), BENCH_CONCURRENCY ("1 16 64"),
# BENCH_DURATION (5s), BENCH_WARMUP (1s), BENCH_FANOUT_WARMUP (3s), BENCH_CONNECTIONS and BENCH_THREADS (2; 1 at
# concurrency 1): the load generator's channels and completion-queue threads; BENCH_FANOUT
# ("1000:10:50:20ms 10000:100:20:500ms"): the fan-out runs, watchers:connections:changes:interval;
# BENCH_CACHE_E2E ("100:10:100"): the cache end-to-end runs, caches:connections:disables;
# BENCH_MIRROR_TOKENS (1000000): tokens the mirror bench creates and loads (~1 min for 1,000,000);
# BENCH_RESULTS (var/bench/results.md): where the report goes.
set -euo pipefail
# shellcheck source=SCRIPTDIR/../../scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

BUILD_DIR="${BUILD_DIR:-${TOKENSTATUS_ROOT}/build}"
CONCURRENCIES="${BENCH_CONCURRENCY:-1 16 64}"
DURATION="${BENCH_DURATION:-5s}"
WARMUP="${BENCH_WARMUP:-1s}"
# Idle time between "every stream SYNCED" and the first change. With only 1 s, the first change
# reaches the watchers ~100 ms late (once per fresh set of connections; seen at 1,000 watchers);
# from 2 s on it does not.
FANOUT_WARMUP="${BENCH_FANOUT_WARMUP:-3s}"
CONNECTIONS="${BENCH_CONNECTIONS:-2}"
THREADS="${BENCH_THREADS:-2}"
FANOUT_RUNS="${BENCH_FANOUT:-1000:10:50:20ms 10000:100:20:500ms}"
# 1,000,000 tokens take ~1 GiB in Redis (records, indexes, the event stream): deploy/redis.conf
# has maxmemory 0 (no limit), so the fill is not refused.
CACHE_E2E_RUNS="${BENCH_CACHE_E2E:-100:10:100}"
MIRROR_TOKENS="${BENCH_MIRROR_TOKENS:-1000000}"
RESULTS="${BENCH_RESULTS:-${TOKENSTATUS_ROOT}/var/bench/results.md}"

SERVER="${BUILD_DIR}/server/tokenstatus-server"
LOADGEN="${BUILD_DIR}/tests/bench/tokenstatus-loadgen"
NOOP_SERVER="${BUILD_DIR}/tests/bench/tokenstatus-noop-server"
WATCHBENCH="${BUILD_DIR}/tests/bench/tokenstatus-watchbench"
MIRRORBENCH="${BUILD_DIR}/tests/bench/tokenstatus-mirrorbench"
CACHE_E2E_BENCH="${BUILD_DIR}/tests/bench/tokenstatus-cache-e2e-bench"
CACHEBENCH="${BUILD_DIR}/tests/bench/tokenstatus-cachebench"
SIDECAR="${BUILD_DIR}/client/sidecar/token-sidecar"
# The size of the values the bench puts into etcd (kEtcdValueBytes in tests/bench/load_generator.h).
ETCD_VALUE_BYTES=128

command -v redis-benchmark >/dev/null || die "redis-benchmark not found (make deps installs redis-tools)"
command -v etcd >/dev/null || die "etcd not found (make deps installs etcd-server)"
command -v etcdctl >/dev/null || die "etcdctl not found (make deps installs etcd-client)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/tokenstatus-bench.XXXXXX")"
SERVER_PID=""
METRICS_SERVER_PID=""
SCRAPER_PIDS=()
NOOP_PID=""
SIDECAR_PID=""
FANOUT_PID=""
CACHE_E2E_PID=""
CACHE_E2E_SIDECAR_PID=""
ETCD_PID=""
cleanup() {
  for pid in "${SCRAPER_PIDS[@]}"; do kill "${pid}" 2>/dev/null || true; done
  [[ -n "${SERVER_PID}" ]] && { terminate_process "${SERVER_PID}" || true; }
  [[ -n "${METRICS_SERVER_PID}" ]] && { terminate_process "${METRICS_SERVER_PID}" || true; }
  [[ -n "${FANOUT_PID}" ]] && { terminate_process "${FANOUT_PID}" || true; }
  [[ -n "${CACHE_E2E_SIDECAR_PID}" ]] && { terminate_process "${CACHE_E2E_SIDECAR_PID}" || true; }
  [[ -n "${CACHE_E2E_PID}" ]] && { terminate_process "${CACHE_E2E_PID}" || true; }
  [[ -n "${NOOP_PID}" ]] && { terminate_process "${NOOP_PID}" || true; }
  [[ -n "${SIDECAR_PID}" ]] && { terminate_process "${SIDECAR_PID}" || true; }
  [[ -n "${ETCD_PID}" ]] && { terminate_process "${ETCD_PID}" || true; }
  stop_throwaway_redis
  rm -rf "${WORK}"
}
trap cleanup EXIT

if ! cmake --build "${BUILD_DIR}" -j"$(nproc)" \
  --target tokenstatus-server tokenstatus-loadgen tokenstatus-noop-server tokenstatus-watchbench \
  tokenstatus-mirrorbench tokenstatus-cache-e2e-bench tokenstatus-cachebench token-sidecar \
  >"${WORK}/build.log" 2>&1; then
  cat "${WORK}/build.log" >&2
  die "build failed"
fi

# Succeeds when the etcd at $1 (host:port) reports itself healthy (a committed proposal).
etcd_healthy() {
  ETCDCTL_API=3 timeout 5 etcdctl --endpoints="$1" --dial-timeout=2s --command-timeout=2s \
    endpoint health >/dev/null 2>&1
}

# Starts a throwaway etcd: one member named "bench" with etcd's defaults (its WAL is fsynced
# before a write is acknowledged), client and peer URLs on free loopback ports, data in
# ${WORK}/etcd (removed with ${WORK}), log in ${WORK}/etcd.log. Waits up to 30 s until it is
# healthy. Sets ETCD_PID and ETCD_ADDRESS (host:port of its gRPC API); fails (the process killed)
# if it does not get healthy.
start_etcd() {
  local client_port peer_port deadline
  client_port="$(free_port)"
  peer_port="$(free_port)"
  while ((peer_port == client_port)); do peer_port="$(free_port)"; done
  rm -rf "${WORK}/etcd"
  etcd --name bench --data-dir "${WORK}/etcd" \
    --listen-client-urls "http://127.0.0.1:${client_port}" \
    --advertise-client-urls "http://127.0.0.1:${client_port}" \
    --listen-peer-urls "http://127.0.0.1:${peer_port}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${peer_port}" \
    --initial-cluster "bench=http://127.0.0.1:${peer_port}" >"${WORK}/etcd.log" 2>&1 &
  ETCD_PID=$!
  ETCD_ADDRESS="127.0.0.1:${client_port}"
  deadline=$((SECONDS + 30))
  until etcd_healthy "${ETCD_ADDRESS}"; do
    if ! kill -0 "${ETCD_PID}" 2>/dev/null || ((SECONDS >= deadline)); then
      log "etcd on ${ETCD_ADDRESS} did not get healthy; its log:"
      tail -n 20 "${WORK}/etcd.log" >&2
      kill -KILL "${ETCD_PID}" 2>/dev/null || true
      wait "${ETCD_PID}" 2>/dev/null || true
      ETCD_PID=""
      return 1
    fi
    sleep 0.2
  done
  log "etcd on ${ETCD_ADDRESS}, data in ${WORK}/etcd"
}

# DEBUG on local connections: the mirror bench asks DEBUG HTSTATS whether Redis is still growing
# its key table after the fill (tests/bench/mirror_bench_main.cc).
start_throwaway_redis --enable-debug-command local
REDIS_PID="$(cat "${THROWAWAY_REDIS_DIR}/redis.pid")"
# Redis's latency monitor records every event of 1 ms or more (the fan-out rows show the longest
# AOF fsync of their run: on these shared disks an fsync sometimes takes tens of milliseconds).
redis_cli() { timeout 10 redis-cli -h 127.0.0.1 -p "${THROWAWAY_REDIS_PORT}" "$@"; }
redis_cli config set latency-monitor-threshold 1 >/dev/null
# The longest AOF fsync, in ms, since the last LATENCY RESET (0: none took 1 ms).
redis_fsync_max_ms() {
  redis_cli latency latest |
    awk '$0 == "aof-fsync-always" { getline; getline; getline; max = $0 } END { print max + 0 }'
}
for attempt in 1 2 3; do
  start_etcd && break
  ((attempt < 3)) || die "could not start a throwaway etcd"
done
ETCD_VERSION="$(etcd --version | sed -n 's/^etcd Version: //p')"
start_listening_process "${WORK}/server.log" "${SERVER}" --listen=127.0.0.1:0 \
  --redis="127.0.0.1:${THROWAWAY_REDIS_PORT}" --insecure_allow_unauthenticated
SERVER_PID="${STARTED_PID}"
SERVER_ADDRESS="${STARTED_ADDRESS}"
# The metrics endpoint a server logged in $1 (event=metrics_listening address=host:port).
metrics_address_in() {
  local deadline=$((SECONDS + 10)) address=""
  until address="$(sed -n 's/.*event=metrics_listening address=\([^ ]*\).*/\1/p' "$1")" &&
    [[ -n "${address}" ]]; do
    ((SECONDS < deadline)) || die "no metrics endpoint in $1"
    sleep 0.1
  done
  echo "${address}"
}
# Scrapes http://$1/metrics every second, as a (busy) Prometheus would, until killed.
start_scraper() {
  while true; do
    curl -s -o /dev/null "http://$1/metrics" || true
    sleep 1
  done &
  SCRAPER_PIDS+=("$!")
}
command -v curl >/dev/null || die "curl not found"
# The same server with metrics on (the same Redis and data), for the "GetToken, metrics on" rows.
start_listening_process "${WORK}/metrics-server.log" "${SERVER}" --listen=127.0.0.1:0 \
  --redis="127.0.0.1:${THROWAWAY_REDIS_PORT}" --insecure_allow_unauthenticated \
  --metrics_listen=127.0.0.1:0
METRICS_SERVER_PID="${STARTED_PID}"
METRICS_SERVER_ADDRESS="${STARTED_ADDRESS}"
start_scraper "$(metrics_address_in "${WORK}/metrics-server.log")"
start_listening_process "${WORK}/noop.log" "${NOOP_SERVER}" --listen=127.0.0.1:0
NOOP_PID="${STARTED_PID}"
NOOP_ADDRESS="${STARTED_ADDRESS}"
start_listening_process "${WORK}/sidecar.log" "${SIDECAR}" --upstream="${SERVER_ADDRESS}" \
  --listen=127.0.0.1:0
SIDECAR_PID="${STARTED_PID}"
SIDECAR_ADDRESS="${STARTED_ADDRESS}"

CLOCK_TICKS="$(getconf CLK_TCK)"
# CPU seconds (user + system) process $1 has used so far.
cpu_seconds() { awk -v hz="${CLOCK_TICKS}" '{ print ($14 + $15) / hz }' "/proc/$1/stat"; }
now() { date +%s.%N; }
# The value of key $1 in a "k=v k=v" line $2.
field() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }
# 100 * $1 / $2, rounded (awk: bash has no floating point).
percent_of() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", 100 * a / b }'; }

NOOP_LABEL="no-op GetToken"
# The etcd row each tokenstatus row is compared with (× etcd: tokenstatus req/s / etcd req/s).
declare -A SERVER_CPU=()
declare -A ETCD_REFERENCE=([GetToken]="etcd Range" [CreateToken]="etcd Put"
  [Disable/Enable]="etcd Put")
FAILED=0
TABLE=()
declare -A RPS # "<label> <concurrency>" -> req/s of that point

# ratio A B: A / B with two decimals, "-" when B is empty or 0.
ratio() {
  awk -v a="$1" -v b="${2:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'
}

# run_point LABEL ADDRESS MODE CONCURRENCY SERVER_PID [REDIS_PID]: one load generator run; adds a
# row to TABLE with the server's (and Redis's) CPU use over the run, warmup included, and its
# req/s next to the no-op server's and (for the rows in ETCD_REFERENCE) etcd's at the same
# concurrency, which run before it.
run_point() {
  local label="$1" address="$2" mode="$3" concurrency="$4" server_pid="$5" redis_pid="${6:-}"
  local connections="${CONNECTIONS}" threads="${THREADS}"
  if ((concurrency == 1)); then connections=1 threads=1; fi
  local t0 s0 r0=0 line rc=0
  t0="$(now)"
  s0="$(cpu_seconds "${server_pid}")"
  [[ -n "${redis_pid}" ]] && r0="$(cpu_seconds "${redis_pid}")"
  line="$("${LOADGEN}" --target="${address}" --mode="${mode}" --concurrency="${concurrency}" \
    --connections="${connections}" --threads="${threads}" --duration="${DURATION}" \
    --warmup="${WARMUP}" --setup_target="${SERVER_ADDRESS}" --server_pid="${server_pid}" \
    --store_pid="${redis_pid:-0}")" || rc=$?
  local wall server_cpu redis_cpu="-"
  wall="$(awk -v a="${t0}" -v b="$(now)" 'BEGIN { print b - a }')"
  server_cpu="$(percent_of "$(awk -v a="${s0}" -v b="$(cpu_seconds "${server_pid}")" \
    'BEGIN { print b - a }')" "${wall}")"
  if [[ -n "${redis_pid}" ]]; then
    redis_cpu="$(percent_of "$(awk -v a="${r0}" -v b="$(cpu_seconds "${redis_pid}")" \
      'BEGIN { print b - a }')" "${wall}")"
  fi
  if ((rc != 0)) || [[ -z "${line}" ]]; then
    log "${label} at concurrency ${concurrency} failed (exit ${rc}): ${line}"
    FAILED=1
    [[ -n "${line}" ]] || return 0
  fi
  local rps vs_noop vs_etcd="-" reference="${ETCD_REFERENCE[${label}]:-}" redis_us="-"
  [[ -n "${redis_pid}" ]] && redis_us="$(field store_us_per_request "${line}")"
  rps="$(field rps "${line}")"
  RPS["${label} ${concurrency}"]="${rps}"
  SERVER_CPU["${label} ${concurrency}"]="${server_cpu}"
  vs_noop="$(ratio "${rps}" "${RPS["${NOOP_LABEL} ${concurrency}"]:-}")"
  [[ -n "${reference}" ]] && vs_etcd="$(ratio "${rps}" "${RPS["${reference} ${concurrency}"]:-}")"
  TABLE+=("| ${label} | ${concurrency} | ${rps} | ${vs_noop} | ${vs_etcd} | \
$(field p50_us "${line}") | $(field p99_us "${line}") | $(field client_cpu_pct "${line}") | ${server_cpu} | ${redis_cpu} | \
$(field client_us_per_request "${line}") | $(field server_us_per_request "${line}") | ${redis_us} | \
$(field errors "${line}") |")
  log "${label} c=${concurrency}: ${line} server_cpu_pct=${server_cpu} redis_cpu_pct=${redis_cpu}"
}

# redis-benchmark GET and SET at concurrency $1; adds a row to REDIS_TABLE.
REDIS_TABLE=()
run_redis_benchmark() {
  local concurrency="$1" requests=100000 csv
  ((concurrency == 1)) && requests=20000
  csv="$(redis-benchmark -h 127.0.0.1 -p "${THROWAWAY_REDIS_PORT}" -t get,set \
    -c "${concurrency}" -n "${requests}" -P 1 --csv)"
  # Columns: "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",
  # "p99_latency_ms","max_latency_ms".
  local get set
  get="$(tr -d '"' <<<"${csv}" | awk -F, '$1 == "GET" { printf "%.0f | %s | %s", $2, $5, $7 }')"
  set="$(tr -d '"' <<<"${csv}" | awk -F, '$1 == "SET" { printf "%.0f | %s | %s", $2, $5, $7 }')"
  REDIS_TABLE+=("| ${concurrency} | ${get} | ${set} |")
  log "redis-benchmark c=${concurrency}: GET ${get}; SET ${set}"
}

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
for concurrency in ${CONCURRENCIES}; do
  run_point "${NOOP_LABEL}" "${NOOP_ADDRESS}" get "${concurrency}" "${NOOP_PID}"
  run_point "etcd Range" "${ETCD_ADDRESS}" etcd-range "${concurrency}" "${ETCD_PID}"
  run_point "GetToken" "${SERVER_ADDRESS}" get "${concurrency}" "${SERVER_PID}" "${REDIS_PID}"
  run_point "GetToken, metrics on" "${METRICS_SERVER_ADDRESS}" get "${concurrency}" \
    "${METRICS_SERVER_PID}" "${REDIS_PID}"
  run_point "etcd Put" "${ETCD_ADDRESS}" etcd-put "${concurrency}" "${ETCD_PID}"
  run_point "CreateToken" "${SERVER_ADDRESS}" create "${concurrency}" "${SERVER_PID}" \
    "${REDIS_PID}"
  run_point "Disable/Enable" "${SERVER_ADDRESS}" toggle "${concurrency}" "${SERVER_PID}" \
    "${REDIS_PID}"
  run_point "sidecar VerifyToken" "${SIDECAR_ADDRESS}" verify "${concurrency}" "${SIDECAR_PID}"
  run_point "sidecar Check" "${SIDECAR_ADDRESS}" check "${concurrency}" "${SIDECAR_PID}"
  run_redis_benchmark "${concurrency}"
done

# run_fanout SERVER WATCHERS CONNECTIONS CHANGES INTERVAL: one tokenstatus-watchbench run; adds a
# row to FANOUT_TABLE. SERVER "tokenstatus": a fresh server (its own key prefix, so the snapshots
# are tiny and its RSS holds only the watchers); "etcd": the throwaway etcd (a key prefix of the
# run's own), whose p50 and p99 are kept in ETCD_FANOUT_P50_US and ETCD_FANOUT_P99_US for the
# tokenstatus run that follows (× etcd: tokenstatus latency / etcd latency). A tokenstatus run with
# 0 watchers measures the change calls' acknowledgement alone: its p99 (ACK_IDLE_P99_US) is what
# the next run's acknowledgements, with the watchers, are compared with.
FANOUT_TABLE=()
FANOUT_RUN=0
ETCD_FANOUT_P50_US=""
ETCD_FANOUT_P99_US=""
ACK_IDLE_P99_US=""
run_fanout() {
  local server="$1" watchers="$2" connections="$3" changes="$4" interval="$5" metrics="${6:-}"
  local address pid limit=$((watchers > 0 ? watchers : 1)) line rc=0 label="$1"
  local metrics_flags=()
  if [[ -n "${metrics}" ]]; then
    metrics_flags=(--metrics_listen=127.0.0.1:0)
    label="${server}, metrics on"
  fi
  if [[ "${server}" == etcd ]]; then
    address="${ETCD_ADDRESS}" pid="${ETCD_PID}"
  else
    FANOUT_RUN=$((FANOUT_RUN + 1))
    start_listening_process "${WORK}/fanout-${FANOUT_RUN}.log" "${SERVER}" --listen=127.0.0.1:0 \
      --redis="127.0.0.1:${THROWAWAY_REDIS_PORT}" --redis_key_prefix="{fanout-${FANOUT_RUN}}" \
      --insecure_allow_unauthenticated \
      --max_watchers=$((watchers + 100)) --max_watchers_per_connection="${limit}" \
      --max_watchers_per_principal="${limit}" "${metrics_flags[@]}"
    FANOUT_PID="${STARTED_PID}"
    address="${STARTED_ADDRESS}" pid="${FANOUT_PID}"
    if [[ -n "${metrics}" ]]; then
      start_scraper "$(metrics_address_in "${WORK}/fanout-${FANOUT_RUN}.log")"
    fi
  fi
  redis_cli latency reset >/dev/null
  line="$("${WATCHBENCH}" --server="${server}" --target="${address}" --watchers="${watchers}" \
    --connections="${connections}" --changes="${changes}" --interval="${interval}" \
    --warmup="${FANOUT_WARMUP}" --server_pid="${pid}")" || rc=$?
  local fsync_max="-"
  [[ "${server}" == etcd ]] || fsync_max="$(redis_fsync_max_ms)"
  if [[ -n "${metrics}" ]]; then
    kill "${SCRAPER_PIDS[-1]}" 2>/dev/null || true
    unset 'SCRAPER_PIDS[-1]'
  fi
  if [[ -n "${FANOUT_PID}" ]]; then
    terminate_process "${FANOUT_PID}" || true
    FANOUT_PID=""
  fi
  local p50_vs_etcd="-" p99_vs_etcd="-" ack_vs_idle="-" server_us_per_event="-"
  if ((watchers > 0)); then server_us_per_event="$(field server_cpu_us_per_event "${line}")"; fi
  if [[ "${server}" == etcd ]]; then
    ETCD_FANOUT_P50_US="" ETCD_FANOUT_P99_US=""
  fi
  if ((rc != 0)) || [[ -z "${line}" ]]; then
    log "fan-out ${server} ${watchers} watchers failed (exit ${rc}): ${line}"
    FAILED=1
    [[ -n "${line}" ]] || return 0
  fi
  log "fan-out: ${line}"
  if [[ "${server}" == etcd ]]; then
    ETCD_FANOUT_P50_US="$(field p50_us "${line}")"
    ETCD_FANOUT_P99_US="$(field p99_us "${line}")"
  elif ((watchers == 0)); then
    ACK_IDLE_P99_US="$(field change_p99_us "${line}")"
  else
    ack_vs_idle="$(ratio "$(field change_p99_us "${line}")" "${ACK_IDLE_P99_US}")"
    p50_vs_etcd="$(ratio "$(field p50_us "${line}")" "${ETCD_FANOUT_P50_US}")"
    p99_vs_etcd="$(ratio "$(field p99_us "${line}")" "${ETCD_FANOUT_P99_US}")"
  fi
  FANOUT_TABLE+=("| ${label} | $(field watchers "${line}") | $(field connections "${line}") | \
$(field changes "${line}") | ${interval} | $(field delivered "${line}") / $(field expected "${line}") | \
$(ratio "$(field delivered "${line}")" "$(field messages "${line}")") | \
$(thousandths "$(field p50_us "${line}")") | $(thousandths "$(field p99_us "${line}")") | \
${p50_vs_etcd} | ${p99_vs_etcd} | \
$(thousandths "$(field max_us "${line}")") | $(thousandths "$(field first_change_us "${line}")") | \
$(thousandths "$(field change_p50_us "${line}")") | \
$(thousandths "$(field change_p99_us "${line}")") | ${ack_vs_idle} | ${fsync_max} | \
$(field client_cpu_pct "${line}") | ${server_us_per_event} | \
$(thousandths "$(field setup_ms "${line}")") | $(mib "$(field server_rss_before_kib "${line}")") → \
$(mib "$(field server_rss_after_kib "${line}")") | $(field kib_per_watcher "${line}") |")
}
# $1 / 1000 with one decimal (µs → ms, ms → s); $1 KiB in MiB, rounded.
thousandths() { awk -v v="$1" 'BEGIN { printf "%.1f", v / 1000 }'; }
mib() { awk -v v="$1" 'BEGIN { printf "%.0f", v / 1024 }'; }

# As many descriptors as allowed: every channel is a connection, at both ends.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
for run in ${FANOUT_RUNS}; do
  IFS=: read -r watchers connections changes interval <<<"${run}"
  run_fanout etcd "${watchers}" "${connections}" "${changes}" "${interval}"
  run_fanout tokenstatus 0 "${connections}" "${changes}" "${interval}"
  run_fanout tokenstatus "${watchers}" "${connections}" "${changes}" "${interval}"
  run_fanout tokenstatus "${watchers}" "${connections}" "${changes}" "${interval}" metrics
done

# run_cache_e2e CACHES CONNECTIONS DISABLES: one tokenstatus-cache-e2e-bench run against a fresh
# server (its own key prefix) and a token-sidecar following it; adds a row to CACHE_E2E_TABLE.
# The references in the same row: the DisableToken call itself, as the bench's client measured
# it, and the sidecar's Envoy ext_authz Check (the first denying answer after the reply).
CACHE_E2E_TABLE=()
CACHE_E2E_RUN=0
run_cache_e2e() {
  local caches="$1" connections="$2" disables="$3" line rc=0
  CACHE_E2E_RUN=$((CACHE_E2E_RUN + 1))
  start_listening_process "${WORK}/cache-e2e-${CACHE_E2E_RUN}.log" "${SERVER}" \
    --listen=127.0.0.1:0 --redis="127.0.0.1:${THROWAWAY_REDIS_PORT}" \
    --redis_key_prefix="{cache-e2e-${CACHE_E2E_RUN}}" --insecure_allow_unauthenticated
  CACHE_E2E_PID="${STARTED_PID}"
  local server_address="${STARTED_ADDRESS}"
  start_listening_process "${WORK}/cache-e2e-sidecar-${CACHE_E2E_RUN}.log" "${SIDECAR}" \
    --upstream="${server_address}" --listen=127.0.0.1:0
  CACHE_E2E_SIDECAR_PID="${STARTED_PID}"
  line="$("${CACHE_E2E_BENCH}" --target="${server_address}" --caches="${caches}" \
    --connections="${connections}" --disables="${disables}" --sidecar="${STARTED_ADDRESS}" \
    2>"${WORK}/cache-e2e-bench-${CACHE_E2E_RUN}.log")" || rc=$?
  terminate_process "${CACHE_E2E_SIDECAR_PID}" || true
  CACHE_E2E_SIDECAR_PID=""
  terminate_process "${CACHE_E2E_PID}" || true
  CACHE_E2E_PID=""
  if ((rc != 0)) || [[ -z "${line}" ]]; then
    log "cache end-to-end with ${caches} caches failed (exit ${rc}): ${line}"
    tail -n 5 "${WORK}/cache-e2e-bench-${CACHE_E2E_RUN}.log" >&2
    FAILED=1
    [[ -n "${line}" ]] || return 0
  fi
  log "cache end-to-end: ${line}"
  local p99_ms target
  p99_ms="$(thousandths "$(field p99_us "${line}")")"
  target="$(awk -v v="${p99_ms}" 'BEGIN { print (v <= 10 ? "yes" : "no") }')"
  CACHE_E2E_TABLE+=("| $(field caches "${line}") | $(field connections "${line}") | \
$(field complete "${line}") / $(field disables "${line}") | \
$(thousandths "$(field p50_us "${line}")") | ${p99_ms} | $(thousandths "$(field max_us "${line}")") | \
${target} | $(thousandths "$(field call_p50_us "${line}")") | \
$(thousandths "$(field call_p99_us "${line}")") | $(thousandths "$(field call_max_us "${line}")") | \
$(field sidecar_denied "${line}") / $(field disables "${line}") | \
$(thousandths "$(field sidecar_p50_us "${line}")") | $(thousandths "$(field sidecar_p99_us "${line}")") | \
$(thousandths "$(field sidecar_max_us "${line}")") |")
}
for run in ${CACHE_E2E_RUNS}; do
  IFS=: read -r caches connections disables <<<"${run}"
  run_cache_e2e "${caches}" "${connections}" "${disables}"
done

# TokenCache lookups (tokenstatus-cachebench, Google Benchmark, no server): the median of 3
# repetitions of each benchmark; one row each in CACHEBENCH_TABLE.
CACHEBENCH_TABLE=()
while read -r name cpu_ns rate; do
  CACHEBENCH_TABLE+=("| ${name} | ${rate} | ${cpu_ns} |")
done < <("${CACHEBENCH}" --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
  2>/dev/null | awk '/_median / {
    name = $1; sub(/_median$/, "", name); sub(/\/real_time/, "", name); sub(/^BM_/, "", name)
    for (i = 1; i <= NF; ++i) if ($i ~ /^items_per_second=/) { rate = $i; sub(/.*=/, "", rate) }
    print name, $4, rate }')
((${#CACHEBENCH_TABLE[@]} > 0)) || { log "cache bench failed"; FAILED=1; }

# The mirror: fill a key prefix of its own with MIRROR_TOKENS tokens, then time a fresh mirror's
# load (tokenstatus-mirrorbench); one row in MIRROR_TABLE.
MIRROR_TABLE=()
mirror_rc=0
mirror_line="$("${MIRRORBENCH}" --redis="127.0.0.1:${THROWAWAY_REDIS_PORT}" --key_prefix="{mirror}" \
  --tokens="${MIRROR_TOKENS}" 2>"${WORK}/mirror.log")" || mirror_rc=$?
if ((mirror_rc != 0)) || [[ -z "${mirror_line}" ]]; then
  log "mirror bench failed (exit ${mirror_rc}): ${mirror_line}"
  tail -n 5 "${WORK}/mirror.log" >&2
  FAILED=1
  MIRROR_TABLE+=("| ${MIRROR_TOKENS} | failed | | | | | |")
else
  log "mirror: ${mirror_line}"
  MIRROR_TABLE+=("| $(field tokens "${mirror_line}") | $(field fill_s "${mirror_line}") | \
$(field fill_per_s "${mirror_line}") | $(field settle_s "${mirror_line}") | \
$(field load_s "${mirror_line}") | \
$(field rss_before_mib "${mirror_line}") → $(field rss_after_mib "${mirror_line}") | \
$(field bytes_per_token "${mirror_line}") |")
fi

mkdir -p "$(dirname "${RESULTS}")"
{
  echo "## tokenstatus benchmark"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ), commit $(git -C "${TOKENSTATUS_ROOT}" rev-parse --short HEAD \
    2>/dev/null || echo unknown), $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo |
    head -n1)), load average before the run: ${LOAD_BEFORE}."
  echo "Load generator, server, no-op server, redis-server and etcd all share these cores."
  echo "Each point: ${WARMUP} warmup, then ${DURATION} measured; load generator with" \
    "${CONNECTIONS} connections and ${THREADS} completion-queue threads (1 and 1 at" \
    "concurrency 1). Redis: deploy/redis.conf (appendonly yes, appendfsync always)."
  echo "etcd ${ETCD_VERSION} (the reference, driven by the same load generator with the same" \
    "settings): one throwaway member with etcd's defaults, so every write is in its fsynced WAL" \
    "before it is acknowledged (durability comparable to Redis's appendfsync always); its data" \
    "on the same filesystem as Redis's. etcd Range: the slot's own key, linearizable (etcd's" \
    "default); etcd Put: a new key with a ${ETCD_VALUE_BYTES}-byte value on every call;" \
    "CreateToken: a new token on every call. sidecar VerifyToken and sidecar Check:" \
    "token-sidecar (following the server, its cache in memory) answering VerifyToken and" \
    "Envoy's ext_authz Check (the secret as a bearer header) for one valid token per slot;" \
    "the server CPU % of these rows is the sidecar's."
  echo "× no-op: requests/s divided by the no-op server's GetToken requests/s at the same" \
    "concurrency. × etcd: tokenstatus requests/s divided by etcd's at the same concurrency" \
    "(GetToken / etcd Range, CreateToken / etcd Put, Disable/Enable / etcd Put; above 1:" \
    "tokenstatus is faster). CPU %: 100 = one core; server (for the etcd rows: etcd) and Redis" \
    "CPU are averaged over the whole point, warmup included. GetToken, metrics on: a second" \
    "server on the same Redis and data, with --metrics_listen (every call recorded by the" \
    "call pipeline's metrics) and its /metrics scraped every second throughout (Prometheus' usual" \
    "interval is 15 s), run right after GetToken. µs per request: the CPU time (user + system)" \
    "of the load generator, the server (etcd, the no-op server, the sidecar) and Redis during" \
    "the measured window only, divided by the requests completed in it: what one request costs" \
    "each process."
  echo
  echo "| mode | concurrency | req/s | × no-op | × etcd | p50 µs | p99 µs | client CPU % | server CPU % | redis CPU % | client µs per request | server µs per request | Redis µs per request | errors |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${TABLE[@]}"
  echo
  echo "The metrics' cost on GetToken (the rows above): requests/s with metrics on relative to" \
    "off, and the server's CPU time per call (its CPU % over the point divided by the" \
    "requests/s: less noisy than requests/s on shared cores), in the same run."
  echo
  echo "| concurrency | GetToken req/s | metrics on req/s | req/s difference % | server CPU µs per call | metrics on | CPU difference % |"
  echo "|---:|---:|---:|---:|---:|---:|---:|"
  for concurrency in ${CONCURRENCIES}; do
    off="${RPS["GetToken ${concurrency}"]:-}" on="${RPS["GetToken, metrics on ${concurrency}"]:-}"
    cpu_off="$(awk -v c="${SERVER_CPU["GetToken ${concurrency}"]:-}" -v r="${off}" \
      'BEGIN { if (r > 0) printf "%.1f", c * 1e4 / r; else print "-" }')"
    cpu_on="$(awk -v c="${SERVER_CPU["GetToken, metrics on ${concurrency}"]:-}" -v r="${on}" \
      'BEGIN { if (r > 0) printf "%.1f", c * 1e4 / r; else print "-" }')"
    echo "| ${concurrency} | ${off} | ${on} | $(awk -v a="${on}" -v b="${off}" \
      'BEGIN { if (b > 0 && a != "") printf "%+.1f", 100 * (a - b) / b; else print "-" }') | \
${cpu_off} | ${cpu_on} | $(awk -v a="${cpu_on}" -v b="${cpu_off}" \
      'BEGIN { if (b > 0 && a != "-") printf "%+.1f", 100 * (a - b) / b; else print "-" }') |"
  done
  echo
  echo "redis-benchmark on the same Redis (-P 1, same concurrency):"
  echo
  echo "| concurrency | GET req/s | GET p50 ms | GET p99 ms | SET req/s | SET p50 ms | SET p99 ms |"
  echo "|---:|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${REDIS_TABLE[@]}"
  echo
  echo "Fan-out (tokenstatus-watchbench), each run first against etcd, then against tokenstatus." \
    "tokenstatus: WatchTokens, a fresh server per run; every watcher unfiltered, from now with" \
    "the initial state; the changes alternate DisableToken/EnableToken on one token. etcd: the" \
    "throwaway etcd; one Watch stream per watcher (as WatchTokens: one stream each, over the" \
    "same connections), watching the run's key prefix from now; the changes are Puts of one key" \
    "under it, alternating two ${ETCD_VALUE_BYTES}-byte values. After all watchers are ready" \
    "(SYNCED; etcd: created) and ${FANOUT_WARMUP} idle, the changes start. Delivered: events," \
    "not messages (either server may batch several events into one message; events per" \
    "message says how much they did). Latency: from the start of a change's call at the client" \
    "to its arrival at each watcher, over every (watcher, change) pair (tokenstatus acknowledges" \
    "a change once its own mirror shows it, so this bounds the time from the acknowledgement" \
    "from above). × etcd: tokenstatus latency divided by etcd's in the run above it (below 1:" \
    "tokenstatus is faster). Client CPU %: the bench process from the first change to the last" \
    "arrival (100 = one core). Server CPU µs per event: the server's CPU time (all its threads;" \
    "etcd: the etcd process) over the same span, the change calls' own included, divided by the" \
    "events delivered. Ack: the change calls' own time (start to reply; etcd: Put);" \
    "first ack: the first change, after the idle time (gRPC 1.51 sometimes holds a request that" \
    "follows a second of idle on its connection for ~100 ms), ack p50 / p99: the other changes;" \
    "the tokenstatus row with 0 watchers, just before each run, is its baseline (ack p99 × idle:" \
    "the run's ack p99 divided by that row's; target ≤ 2: fan-out never delays an" \
    "acknowledgement). Redis fsync max: the longest AOF fsync of the run (Redis's latency" \
    "monitor; every change waits for one). Server RSS: before opening the streams → once all" \
    "are ready and idle; KiB per idle watcher = the growth divided by the watchers (etcd: one process for the" \
    "whole bench, its Go heap as it is). \"tokenstatus, metrics on\": the run again on a" \
    "fresh server with --metrics_listen, its /metrics scraped every second; its ack p99 ×" \
    "idle is against the same 0-watcher baseline."
  echo
  echo "| server | watchers | connections | changes | interval | delivered / expected | events per message | p50 ms | p99 ms | p50 × etcd | p99 × etcd | max ms | first ack ms | ack p50 ms | ack p99 ms | ack p99 × idle | Redis fsync max ms | client CPU % | server CPU µs per event | setup s | server RSS MiB | KiB per idle watcher |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${FANOUT_TABLE[@]}"
  echo
  echo "Client caches end to end (tokenstatus-cache-e2e-bench; a fresh server per run): the" \
    "TokenCaches share the connections round robin and follow every token (with the secret" \
    "hashes); the bench creates one ACTIVE token per disable, waits until every cache holds them," \
    "then makes the DisableToken calls one after the other. Latency: from a call's reply at the" \
    "client until the last cache's OnChange listener reported the change (0 if all had it before" \
    "the reply: the server acknowledges once its own mirror shows a change), one sample per" \
    "disable. Target: p99 ≤ 10 ms. Reference from the same run: the DisableToken call itself" \
    "(Redis with appendfsync always). Sidecar Check: a token-sidecar following the same server;" \
    "after each reply its Envoy ext_authz Check is called with the token's secret until it" \
    "denies: the time from the reply to that first denial (what Envoy in front of an API sees)."
  echo
  echo "| caches | connections | disables seen by all | p50 ms | p99 ms | max ms | p99 ≤ 10 ms | DisableToken p50 ms | DisableToken p99 ms | DisableToken max ms | denied by the sidecar's Check | Check deny p50 ms | Check deny p99 ms | Check deny max ms |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${CACHE_E2E_TABLE[@]}"
  echo
  echo "TokenCache lookups (tokenstatus-cachebench, Google Benchmark, no server): a cache of" \
    "100,000 tokens loaded through its stream interface, ids looked up in random order, each" \
    "thread from another place; the median of 3 repetitions. Targets: Check ≥ 10 M/s on one" \
    "thread and more on two, Verify ≥ 1 M/s on one. References from the same run: a plain" \
    "absl::flat_hash_map<std::string, State> lookup of the same ids, and SHA-256 of the same" \
    "secrets alone."
  echo
  echo "| benchmark | lookups/s (all threads) | CPU ns per lookup |"
  echo "|---|---:|---:|"
  printf '%s\n' "${CACHEBENCH_TABLE[@]}"
  echo
  echo "The mirror (tokenstatus-mirrorbench, its own key prefix on the same Redis): fill = the" \
    "tokens created through the store's Create (256 in flight; records, indexes, event stream" \
    "and revision as the server writes them), 1,000 accounts. Settle: the wait after the fill" \
    "until Redis runs no AOF rewrite or background save, has none scheduled, and has finished" \
    "rehashing its key table (the fill's writes start AOF rewrites, and the run's keys pass" \
    "2^21 near the fill's end: during the rehash every lookup searches two tables). Load: a" \
    "fresh TokenMirror and" \
    "EventTailer (new Redis clients, as the server makes them) from start until the mirror holds" \
    "the head revision. RSS: the bench process, with tcmalloc's free pages returned, before the" \
    "load → with every token loaded; bytes per token = the growth divided by the tokens."
  echo
  echo "| tokens | fill s | creates/s | settle s | load s | RSS MiB | bytes per token |"
  echo "|---:|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${MIRROR_TABLE[@]}"
  echo
  echo "Reproduce: \`make bench\` (tests/bench/run_bench.sh)."
} >"${RESULTS}"
cat "${RESULTS}"
((FAILED == 0)) || die "some runs failed; see above"
