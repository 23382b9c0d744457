#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) in FUZZ_BUILD_DIR (build-fuzz) and runs
# each for FUZZ_SECONDS (default 60; `make test` runs them for 10 s each, `make fuzz` for 60).
# The corpus of each target grows in var/fuzz/<target> (kept between runs), seeded from
# tests/fuzz/seeds/<target>. A crash stops the run with exit 1 and leaves the input in
# var/fuzz/crashes/ (reproduce: build-fuzz/tests/fuzz/<target> <that file>).
set -euo pipefail
# shellcheck source=SCRIPTDIR/../../scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

FUZZ_BUILD_DIR="${FUZZ_BUILD_DIR:-${TOKENSTATUS_ROOT}/build-fuzz}"
FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
TARGETS=(token_id_fuzz secret_fuzz page_token_fuzz credentials_file_fuzz)

command -v clang++ >/dev/null || die "clang++ not found: run make deps"
cmake -S "${TOKENSTATUS_ROOT}" -B "${FUZZ_BUILD_DIR}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++ -DTOKENSTATUS_FUZZ=ON >/dev/null
cmake --build "${FUZZ_BUILD_DIR}" -j"$(nproc)" --target "${TARGETS[@]}"

crashes="${TOKENSTATUS_ROOT}/var/fuzz/crashes"
mkdir -p "${crashes}"
for target in "${TARGETS[@]}"; do
  corpus="${TOKENSTATUS_ROOT}/var/fuzz/${target}"
  mkdir -p "${corpus}"
  log "${target}: ${FUZZ_SECONDS} s"
  output="${FUZZ_BUILD_DIR}/${target}.log"
  if ! "${FUZZ_BUILD_DIR}/tests/fuzz/${target}" -max_total_time="${FUZZ_SECONDS}" -max_len=4096 \
    -timeout=10 -artifact_prefix="${crashes}/${target}-" -print_final_stats=1 \
    "${corpus}" "${TOKENSTATUS_ROOT}/tests/fuzz/seeds/${target}" >"${output}" 2>&1; then
    tail -n 40 "${output}" >&2
    die "${target} failed: the input is in ${crashes}"
  fi
  grep -E '^stat::(number_of_executed_units|new_units_added)' "${output}" | sed "s/^/  /" >&2
done
log "no crash in ${#TARGETS[@]} fuzz targets (${FUZZ_SECONDS} s each)"
