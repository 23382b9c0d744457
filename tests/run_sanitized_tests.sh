#!/usr/bin/env bash
# The test run behind `make test-sanitize`: builds everything (but the benchmarks and the chaos
# suite) with AddressSanitizer and UndefinedBehaviorSanitizer in SANITIZE_BUILD_DIR
# (build-sanitize), then runs the unit, contract and integration tests against a throwaway
# Redis, the server, token-sidecar and tokenctl processes instrumented too. Any error report
# fails its test (halt_on_error; UBSan does not recover).
# Environment: SANITIZE_BUILD_DIR (build-sanitize), CMAKE_ARGS (extra configure arguments),
# CTEST_ARGS (extra ctest arguments), JOBS (build jobs, nproc).
set -euo pipefail
# shellcheck source=SCRIPTDIR/../scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

SANITIZE_BUILD_DIR="${SANITIZE_BUILD_DIR:-${TOKENSTATUS_ROOT}/build-sanitize}"

# shellcheck disable=SC2086 # CMAKE_ARGS is a list of words.
cmake -S "${TOKENSTATUS_ROOT}" -B "${SANITIZE_BUILD_DIR}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DTOKENSTATUS_SANITIZE=ON -DTOKENSTATUS_BUILD_BENCH_AND_CHAOS=OFF ${CMAKE_ARGS:-} >/dev/null
cmake --build "${SANITIZE_BUILD_DIR}" -j"${JOBS:-$(nproc)}"

trap stop_throwaway_redis EXIT
start_throwaway_redis
export TOKENSTATUS_TEST_REDIS="127.0.0.1:${THROWAWAY_REDIS_PORT}"
TOKENSTATUS_BUF="$(buf_bin)"
export TOKENSTATUS_BUF
# Leaks are reported too (detect_leaks); gRPC's and protobuf's process-wide singletons are
# freed at exit, so a report is a leak of ours.
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:abort_on_error=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

# shellcheck disable=SC2086 # CTEST_ARGS is a list of words.
ctest --test-dir "${SANITIZE_BUILD_DIR}" --output-on-failure -j2 --timeout 600 \
  -L '^(unit|contract|integration)$' ${CTEST_ARGS:-}
