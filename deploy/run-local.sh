#!/usr/bin/env bash
# The local run behind `make run` (after deps and build): starts redis-server with
# deploy/redis.conf on 127.0.0.1:${REDIS_PORT:-6379} with its data in var/redis (AOF, kept across
# runs), then the server in the foreground. Ctrl-C (SIGINT) or SIGTERM stops the server (it drains
# and exits), then Redis (SHUTDOWN, which flushes the AOF). Extra arguments go to the server,
# e.g. `deploy/run-local.sh --listen=127.0.0.1:50052`.
# If a Redis already listens on the port with its data in var/redis (an earlier run that crashed),
# it is reused; any other listener on the port is an error.
set -euo pipefail
# shellcheck source=SCRIPTDIR/../scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

BUILD_DIR="${BUILD_DIR:-${TOKENSTATUS_ROOT}/build}"
REDIS_PORT="${REDIS_PORT:-6379}"
REDIS_DIR="${TOKENSTATUS_ROOT}/var/redis"
SERVER="${BUILD_DIR}/server/tokenstatus-server"

[[ -x "${SERVER}" ]] || die "${SERVER} not found: run make build first"
mkdir -p "${REDIS_DIR}"

started_redis=0
if redis_ping "${REDIS_PORT}"; then
  dir="$(redis-cli -h 127.0.0.1 -p "${REDIS_PORT}" config get dir | sed -n 2p)"
  [[ "${dir}" == "$(cd "${REDIS_DIR}" && pwd -P)" ]] ||
    die "port ${REDIS_PORT} is taken by another Redis (data in ${dir:-unknown}), e.g. Debian's" \
      "redis-server service (sudo systemctl disable --now redis-server); stop it, or choose" \
      "another port: REDIS_PORT=6380 make run"
  log "reusing the redis-server already running on port ${REDIS_PORT} with data in var/redis"
elif port_in_use "${REDIS_PORT}"; then
  die "port ${REDIS_PORT} is in use by something that is not Redis; choose another port:" \
    "REDIS_PORT=6380 make run"
else
  start_redis "${REDIS_PORT}" "${REDIS_DIR}" || die "redis-server did not start"
  started_redis=1
  log "redis-server on 127.0.0.1:${REDIS_PORT}, data in var/redis (log: var/redis/redis.log)"
fi

# The server gets its own session, so the terminal's Ctrl-C reaches only this script, which
# forwards it once as SIGTERM (a second signal would cut the server's drain short).
# Development mode: unauthenticated calls on loopback (the server warns about it at start);
# README "Access control" shows how to run with TLS and credentials instead.
setsid "${SERVER}" --redis="127.0.0.1:${REDIS_PORT}" --insecure_allow_unauthenticated "$@" &
server_pid=$!
forwarded=0
# shellcheck disable=SC2317 # Invoked by the trap.
forward_stop() {
  forwarded=1
  kill -TERM "${server_pid}" 2>/dev/null || true
}
trap forward_stop INT TERM HUP

# A trapped signal ends `wait` early: then wait again, for the server's own exit status.
while :; do
  forwarded=0
  status=0
  wait "${server_pid}" || status=$?
  ((forwarded)) || break
done
trap - INT TERM HUP
if ((started_redis)); then
  log "server exited with status ${status}; stopping redis-server (data kept in var/redis)"
  stop_redis "${REDIS_PORT}" "" "${REDIS_DIR}/redis.pid"
else
  # Another run may be using it (e.g. a second server on another --listen port).
  log "server exited with status ${status}; leaving the redis-server that was already running"
fi
exit "${status}"
