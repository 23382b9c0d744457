#!/usr/bin/env bash
# The client library as another project uses it: installs the client-dev component of BUILD_DIR
# into a temporary prefix, builds examples/cpp-client against that prefix alone (find_package),
# checks that its link line has neither hiredis nor libevent, then runs it against a real
# tokenstatus-server (on TOKENSTATUS_TEST_REDIS, else a throwaway Redis): a new token is VALID,
# then DISABLED once disabled. ctest runs it (label integration); so does `make test`.
# Usage: example_client_test.sh BUILD_DIR (EXAMPLE_CXX_FLAGS: the example's compile and link
# flags, for a BUILD_DIR built with sanitizers)
set -euo pipefail
# shellcheck source=SCRIPTDIR/../../scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

BUILD_DIR="$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/tokenstatus-example.XXXXXX")"
SERVER_PID=""
cleanup() {
  [[ -n "${SERVER_PID}" ]] && kill "${SERVER_PID}" 2>/dev/null && wait_for_exit "${SERVER_PID}" 10
  stop_throwaway_redis
  rm -rf "${WORK}"
}
trap cleanup EXIT

cmake --install "${BUILD_DIR}" --prefix "${WORK}/prefix" --component client-dev >/dev/null
[[ ! -e "${WORK}/prefix/include/tokenstatus/client/cache_table.h" ]] ||
  die "an internal header was installed"
cmake -S "${TOKENSTATUS_ROOT}/examples/cpp-client" -B "${WORK}/build" \
  -DCMAKE_PREFIX_PATH="${WORK}/prefix" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS="${EXAMPLE_CXX_FLAGS:-}" >/dev/null
cmake --build "${WORK}/build" -j2 >/dev/null
EXAMPLE="${WORK}/build/check_token"
if ldd "${EXAMPLE}" | grep -E 'libhiredis|libevent'; then
  die "the example links the server's dependencies (above)"
fi
log "built ${EXAMPLE} against ${WORK}/prefix; ldd: no hiredis, no libevent"

if [[ -z "${TOKENSTATUS_TEST_REDIS:-}" ]]; then
  start_throwaway_redis
  TOKENSTATUS_TEST_REDIS="127.0.0.1:${THROWAWAY_REDIS_PORT}"
fi
start_listening_process "${WORK}/server.log" "${BUILD_DIR}/server/tokenstatus-server" \
  --listen 127.0.0.1:0 --redis "${TOKENSTATUS_TEST_REDIS}" \
  --redis_key_prefix "{example-$$-${RANDOM}}" --insecure_allow_unauthenticated
SERVER_PID="${STARTED_PID}"
TOKENCTL=("${BUILD_DIR}/client/tokenctl/tokenctl" --server "${STARTED_ADDRESS}")

created="$("${TOKENCTL[@]}" --json create --account ACC-1000-0001 --name example)"
secret="$(sed -E 's/.*"secret": *"([^"]+)".*/\1/' <<<"${created}")"
token_id="$(sed -E 's/.*"id": *"(TKN-[0-9]{4}-[0-9]{4})".*/\1/' <<<"${created}")"
[[ "${secret}" == idt:* && "${token_id}" == TKN-* ]] || die "tokenctl create said: ${created}"

answer="$(printf '%s\n' "${secret}" | "${EXAMPLE}" "${STARTED_ADDRESS}")" ||
  die "a new token was not valid: ${answer}"
[[ "${answer}" == "RESULT_VALID token=${token_id}" ]] || die "unexpected answer: ${answer}"
"${TOKENCTL[@]}" disable "${token_id}" --reason example --yes >/dev/null
status=0
answer="$(printf '%s\n' "${secret}" | "${EXAMPLE}" "${STARTED_ADDRESS}")" || status=$?
[[ "${status}" == 1 && "${answer}" == "RESULT_DISABLED token=${token_id}" ]] ||
  die "a disabled token: exit ${status}, answer ${answer}"
log "the example answered VALID, then DISABLED after the disable"
