#!/usr/bin/env bash
# Installs what building, running, testing and benchmarking tokenstatus needs on Debian 12
# (bookworm), behind `make deps`. Idempotent: only missing packages are installed (apt-get update
# runs once, and only then); buf (the protobuf linter and `buf curl`) is installed with npm into
# var/tools unless it is there. Runs as root, or uses sudo.
# With --deploy it also installs what `make deploy-test` needs: podman (with runc), Debian's
# compose tools, debootstrap and yamllint (kubectl is not in Debian's archive: install it from
# Kubernetes' own packages).
set -euo pipefail
# shellcheck source=SCRIPTDIR/../scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

PACKAGES=(
  cmake g++ make pkg-config                                 # build
  dpkg-dev file                                             # make package (CPack, dpkg-shlibdeps)
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libhiredis-dev libevent-dev libssl-dev        # libraries
  libgoogle-perftools-dev                                   # tcmalloc for the servers
  libcli11-dev                                              # tokenctl's command line
  libcpp-httplib-dev                                        # the metrics endpoint (HTTP)
  libgtest-dev libgmock-dev libbenchmark-dev                # tests
  redis-server redis-tools                                  # Redis, redis-cli, redis-benchmark
  redis-sentinel                                            # Sentinel (the failover tests)
  etcd-server etcd-client                                   # etcd, make bench's reference
  prometheus                                                # the metrics test (and promtool)
  curl                                                      # make bench scrapes /metrics
  clang-format                                              # make fmt, make lint
  clang libclang-rt-14-dev                                  # fuzz targets (libFuzzer)
)
if [[ "${1:-}" == "--deploy" ]]; then
  # (golang-...-dnsname: compose services find each other by name on podman's CNI networks.)
  PACKAGES+=(podman runc uidmap slirp4netns fuse-overlayfs golang-github-containernetworking-plugin-dnsname
    docker-compose podman-compose debootstrap yamllint openssl)
fi
BUF_VERSION="1.75.0"
BUF_PREFIX="${TOKENSTATUS_ROOT}/var/tools"

SUDO=()
if ((EUID != 0)); then
  command -v sudo >/dev/null || die "not root and no sudo: install the packages as root"
  SUDO=(sudo)
fi

installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

missing=()
for package in "${PACKAGES[@]}"; do
  installed "${package}" || missing+=("${package}")
done
# npm (and with it Node.js) only when there is no npm at all.
command -v npm >/dev/null || missing+=(nodejs npm)

if ((${#missing[@]} > 0)); then
  log "installing ${missing[*]}"
  "${SUDO[@]}" apt-get update -q
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}"
  # On a machine with systemd, installing redis-server also starts Debian's own Redis on port
  # 6379, which `make run` needs for its Redis (data in var/redis). Only the service this run
  # brought up is stopped and disabled; a Redis that was there before is left alone.
  if [[ " ${missing[*]} " == *" redis-server "* ]] && command -v systemctl >/dev/null &&
    systemctl is-active --quiet redis-server 2>/dev/null; then
    log "stopping and disabling Debian's redis-server service (make run starts its own Redis)"
    "${SUDO[@]}" systemctl disable --now redis-server
  fi
  # The same for Debian's redis-sentinel service (port 26379): the tests start their own.
  if [[ " ${missing[*]} " == *" redis-sentinel "* ]] && command -v systemctl >/dev/null &&
    systemctl is-active --quiet redis-sentinel 2>/dev/null; then
    log "stopping and disabling Debian's redis-sentinel service (the tests start their own)"
    "${SUDO[@]}" systemctl disable --now redis-sentinel
  fi
  # The same for Debian's etcd service (port 2379): make bench starts its own etcd.
  if [[ " ${missing[*]} " == *" etcd-server "* ]] && command -v systemctl >/dev/null &&
    systemctl is-active --quiet etcd 2>/dev/null; then
    log "stopping and disabling Debian's etcd service (make bench starts its own)"
    "${SUDO[@]}" systemctl disable --now etcd
  fi
else
  log "all Debian packages are installed"
fi

if [[ -x "${BUF_PREFIX}/node_modules/.bin/buf" ]] &&
  [[ "$("${BUF_PREFIX}/node_modules/.bin/buf" --version 2>/dev/null)" == "${BUF_VERSION}" ]]; then
  log "buf ${BUF_VERSION} is installed in var/tools"
else
  log "installing buf ${BUF_VERSION} into var/tools (npm)"
  mkdir -p "${BUF_PREFIX}"
  npm install --prefix "${BUF_PREFIX}" --no-audit --no-fund --loglevel=error \
    "@bufbuild/buf@${BUF_VERSION}"
  "${BUF_PREFIX}/node_modules/.bin/buf" --version >/dev/null || die "buf does not run"
fi
