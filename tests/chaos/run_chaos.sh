#!/usr/bin/env bash
# The run behind `make chaos` (after deps and build): the checker's own tests, then every chaos
# scenario at full length (ctest label "chaos", CHAOS_LEVEL=full), one after the other (they
# start their own redis-server and server processes and time faults against a shared 2-core
# machine). Writes the figures of each scenario to var/chaos/figures.md and prints them. Exits
# non-zero if any test fails.
# Environment: BUILD_DIR (build); CTEST_ARGS (extra ctest arguments, e.g. "-R RestoreOlder");
# CHAOS_SERVER_FLAGS (extra server flags, e.g. "--snapshot_memory_budget=64MiB");
# CHAOS_SNAPSHOT_RSS_MIB, CHAOS_IDLE_STREAM_KIB (the memory bounds of NeverReadingStreams).
set -euo pipefail
# shellcheck source=SCRIPTDIR/../../scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

BUILD_DIR="${BUILD_DIR:-${TOKENSTATUS_ROOT}/build}"
OUT_DIR="${TOKENSTATUS_ROOT}/var/chaos"
mkdir -p "${OUT_DIR}"
export CHAOS_FIGURES_FILE="${OUT_DIR}/figures.md"
{
  echo "Chaos run of $(git -C "${TOKENSTATUS_ROOT}" rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u +%Y-%m-%dT%H:%MZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "| scenario | length | s | operations | faults | acknowledged | acknowledged lost | RESETs | watch events | answers checked | max server RSS MiB | violations | notes |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
} >"${CHAOS_FIGURES_FILE}"

status=0
ctest --test-dir "${BUILD_DIR}" --output-on-failure -R '^Chaos(Checker|Branch)Test\.' || status=1
# shellcheck disable=SC2086 # CTEST_ARGS is a list of words.
ctest --test-dir "${BUILD_DIR}" --output-on-failure -L '^chaos$' --timeout 600 ${CTEST_ARGS:-} ||
  status=1
echo
cat "${CHAOS_FIGURES_FILE}"
exit "${status}"
