#!/usr/bin/env bash
# The test of `make package`: checks the Debian packages CPack wrote into BUILD_DIR (names,
# dependencies, contents with dpkg-deb --info/--contents), then unpacks
# libtokenstatus-client-dev into a throwaway root and builds examples/cpp-client against it.
# Usage: check_debs.sh BUILD_DIR
set -euo pipefail
# shellcheck source=SCRIPTDIR/../../scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

BUILD_DIR="$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/tokenstatus-debs.XXXXXX")"
trap 'rm -rf "${WORK}"' EXIT

deb_of() {
  local found
  found="$(find "${BUILD_DIR}" -maxdepth 1 -name "$1_*.deb" | head -n 1)"
  [[ -n "${found}" ]] || die "no $1_*.deb in ${BUILD_DIR}: run make package"
  echo "${found}"
}
# expect_field DEB FIELD REGEX: the control field FIELD of DEB matches REGEX.
expect_field() {
  local value
  value="$(dpkg-deb --field "$1" "$2")"
  grep -Eq -- "$3" <<<"${value}" || die "$(basename "$1"): $2 is '${value}', expected /$3/"
}
# expect_file DEB PATH: DEB installs PATH.
expect_file() {
  dpkg-deb --contents "$1" | awk '{print $6}' | grep -qx -- "./$2" ||
    die "$(basename "$1") does not install /$2"
}

server="$(deb_of tokenstatus-server)"
tools="$(deb_of tokenstatus-tools)"
dev="$(deb_of libtokenstatus-client-dev)"
for deb in "${server}" "${tools}" "${dev}"; do
  dpkg-deb --info "${deb}" >/dev/null || die "${deb} is not a Debian package"
done

expect_field "${server}" Package '^tokenstatus-server$'
expect_field "${server}" Depends 'libgrpc\+\+1\.51'
expect_field "${server}" Depends 'libhiredis'
expect_field "${server}" Depends 'libevent'
expect_field "${server}" Recommends 'redis-server'
expect_file "${server}" usr/bin/tokenstatus-server

expect_field "${tools}" Package '^tokenstatus-tools$'
expect_field "${tools}" Depends 'libgrpc\+\+1\.51'
expect_file "${tools}" usr/bin/tokenctl
expect_file "${tools}" usr/bin/token-sidecar
if dpkg-deb --field "${tools}" Depends | grep -Eq 'hiredis|libevent'; then
  die "tokenstatus-tools depends on the server's Redis libraries"
fi

expect_field "${dev}" Package '^libtokenstatus-client-dev$'
expect_field "${dev}" Depends 'libgrpc\+\+-dev'
expect_field "${dev}" Depends 'libprotobuf-dev'
expect_field "${dev}" Depends 'libabsl-dev'
for file in include/tokenstatus/client/token_cache.h include/tokenstatus/client/token_client.h \
  include/tokenstatus/core/status_util.h include/tokenstatus/apitoken/v1/token_service.pb.h \
  lib/libtokenstatus_client.a lib/cmake/tokenstatus/tokenstatusConfig.cmake; do
  dpkg-deb --contents "${dev}" | awk '{print $6}' | grep -q -- "^\./usr/.*${file#*/}$" ||
    die "$(basename "${dev}") does not install ${file}"
done
if dpkg-deb --contents "${dev}" | grep -q 'cache_table.h'; then
  die "$(basename "${dev}") installs an internal header"
fi

# The -dev package as a user gets it: unpacked into a root of its own, the example built
# against that root alone.
dpkg-deb --extract "${dev}" "${WORK}/root"
cmake -S "${TOKENSTATUS_ROOT}/examples/cpp-client" -B "${WORK}/example" \
  -DCMAKE_PREFIX_PATH="${WORK}/root/usr" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "${WORK}/example" -j2 >/dev/null
[[ -x "${WORK}/example/check_token" ]] || die "the example did not build against the package"
log "3 packages checked; the example builds against libtokenstatus-client-dev"
for deb in "${server}" "${tools}" "${dev}"; do
  log "  $(basename "${deb}"): $(du -h "${deb}" | cut -f1)"
done
