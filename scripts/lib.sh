# shellcheck shell=bash
# Shell helpers shared by deploy/run-local.sh, tests/run_tests.sh and tests/bench/run_bench.sh.
# Source it (bash); it defines functions and variables only. Every wait is bounded.

TOKENSTATUS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REDIS_CONF="${TOKENSTATUS_ROOT}/deploy/redis.conf"

log() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# The buf CLI that `make deps` installs (npm, project-local), else one on PATH.
buf_bin() {
  local local_buf="${TOKENSTATUS_ROOT}/var/tools/node_modules/.bin/buf"
  if [[ -x "${local_buf}" ]]; then
    echo "${local_buf}"
  else
    command -v buf || true
  fi
}

# Succeeds when something accepts TCP connections on 127.0.0.1:$1.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Prints a loopback TCP port that nothing listens on now (a random one in 20000..59999).
free_port() {
  local port
  for _ in $(seq 1 100); do
    port=$((20000 + RANDOM % 40000))
    if ! port_in_use "${port}"; then
      echo "${port}"
      return 0
    fi
  done
  die "no free port found"
}

# Succeeds when a Redis on 127.0.0.1:$1 answers PING.
redis_ping() { [[ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" == "PONG" ]]; }

# Waits up to $2 seconds (default 10) until Redis on port $1 answers PING.
wait_for_redis() {
  local port="$1" deadline=$((SECONDS + ${2:-10}))
  until redis_ping "${port}"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# Starts a daemonized redis-server with deploy/redis.conf on 127.0.0.1:$1 with its data, pid
# file and log in directory $2 (created), extra redis-server arguments after; waits for PING.
start_redis() {
  local port="$1" dir="$2"
  shift 2
  mkdir -p "${dir}"
  redis-server "${REDIS_CONF}" --port "${port}" --dir "${dir}" --daemonize yes \
    --pidfile "${dir}/redis.pid" --logfile "${dir}/redis.log" "$@" ||
    return 1
  if ! wait_for_redis "${port}" 15; then
    log "redis-server on port ${port} did not answer PING; its log:"
    tail -n 20 "${dir}/redis.log" >&2
    return 1
  fi
}

# Stops the Redis on port $1 (SHUTDOWN; "$2" may be "nosave") and waits up to 15 s for the
# process in pid file $3 to exit. SHUTDOWN flushes the AOF, so acknowledged writes persist.
stop_redis() {
  local port="$1" mode="${2:-}" pidfile="$3" pid=""
  [[ -f "${pidfile}" ]] && pid="$(cat "${pidfile}")"
  timeout 30 redis-cli -h 127.0.0.1 -p "${port}" shutdown ${mode:+"${mode}"} >/dev/null 2>&1 || true
  [[ -n "${pid}" ]] && wait_for_exit "${pid}" 15
  return 0
}

# Waits up to $2 seconds for process $1 (not necessarily a child) to exit; fails on timeout.
wait_for_exit() {
  local pid="$1" deadline=$((SECONDS + $2))
  while kill -0 "${pid}" 2>/dev/null; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# Starts a throwaway Redis (deploy/redis.conf, so AOF + appendfsync always; "$@": more
# redis-server options) on a free port with its data in a new temporary directory. Sets
# THROWAWAY_REDIS_PORT and THROWAWAY_REDIS_DIR; stop_throwaway_redis stops it and removes the
# directory (call it from an EXIT trap).
start_throwaway_redis() {
  THROWAWAY_REDIS_DIR="$(mktemp -d "${TMPDIR:-/tmp}/tokenstatus-redis.XXXXXX")"
  for _ in 1 2 3 4 5; do
    THROWAWAY_REDIS_PORT="$(free_port)"
    if start_redis "${THROWAWAY_REDIS_PORT}" "${THROWAWAY_REDIS_DIR}" "$@"; then
      log "redis-server on 127.0.0.1:${THROWAWAY_REDIS_PORT}, data in ${THROWAWAY_REDIS_DIR}"
      return 0
    fi
  done
  die "could not start a throwaway redis-server"
}

stop_throwaway_redis() {
  [[ -n "${THROWAWAY_REDIS_DIR:-}" ]] || return 0
  stop_redis "${THROWAWAY_REDIS_PORT}" nosave "${THROWAWAY_REDIS_DIR}/redis.pid"
  rm -rf "${THROWAWAY_REDIS_DIR}"
  THROWAWAY_REDIS_DIR=""
}

# Starts "$@" in the background with stderr to log file $1 (shifted off) and waits up to 30 s
# for its line "listening on <host:port>". Sets STARTED_PID and STARTED_ADDRESS. On failure the
# process is killed.
start_listening_process() {
  local logfile="$1"
  shift
  : >"${logfile}"
  "$@" 2>"${logfile}" &
  STARTED_PID=$!
  STARTED_ADDRESS=""
  local deadline=$((SECONDS + 30))
  while [[ -z "${STARTED_ADDRESS}" ]]; do
    STARTED_ADDRESS="$(grep -o -m1 'listening on [^ ]*' "${logfile}" | cut -d' ' -f3 || true)"
    [[ -n "${STARTED_ADDRESS}" ]] && return 0
    if ! kill -0 "${STARTED_PID}" 2>/dev/null || ((SECONDS >= deadline)); then
      log "$1 did not start listening; its log:"
      tail -n 20 "${logfile}" >&2
      kill -KILL "${STARTED_PID}" 2>/dev/null || true
      return 1
    fi
    sleep 0.1
  done
}

# Sends SIGTERM to process $1 and waits for it (it must be a child of this shell); returns its
# exit code.
terminate_process() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1"
}
