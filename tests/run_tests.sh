#!/usr/bin/env bash
# The test run behind `make test` (after deps and build): starts a throwaway redis-server on a
# free port (data in a temporary directory, removed afterwards), runs every ctest test (unit,
# contract, integration, bench, and the short chaos scenarios) against it except the full-length
# chaos scenarios (label "chaos": make chaos runs them), stops it, then runs the libFuzzer targets
# for a short fixed time each (tests/fuzz/run_fuzz.sh). Exits non-zero if any test or fuzz target
# fails.
# Environment: BUILD_DIR (build); CTEST_ARGS (extra ctest arguments, e.g. "-R Redis");
# FUZZ_SECONDS (per fuzz target, default 10; 0 skips fuzzing).
set -euo pipefail
# shellcheck source=SCRIPTDIR/../scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

BUILD_DIR="${BUILD_DIR:-${TOKENSTATUS_ROOT}/build}"

trap stop_throwaway_redis EXIT
start_throwaway_redis
export TOKENSTATUS_TEST_REDIS="127.0.0.1:${THROWAWAY_REDIS_PORT}"
TOKENSTATUS_BUF="$(buf_bin)"
export TOKENSTATUS_BUF
# The reflection tests skip without buf when ctest is run by hand; `make test` proves them.
[[ -n "${TOKENSTATUS_BUF}" ]] || die "buf not found: run make deps (it installs buf into var/tools)"

# shellcheck disable=SC2086 # CTEST_ARGS is a list of words.
ctest --test-dir "${BUILD_DIR}" --output-on-failure -j2 --timeout 300 -LE '^chaos$' ${CTEST_ARGS:-}

# The parsers of untrusted input under libFuzzer, a short fixed time each (make fuzz: longer).
if [[ "${FUZZ_SECONDS:-10}" != 0 ]]; then
  FUZZ_SECONDS="${FUZZ_SECONDS:-10}" "${TOKENSTATUS_ROOT}/tests/fuzz/run_fuzz.sh"
fi
