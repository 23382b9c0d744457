#!/usr/bin/env bash
# make deploy-test: the deploy files, run for real on this machine.
#   1. podman makes the base images if no registry has them (deploy/test/offline-images.sh) and
#      builds the server and sidecar images from deploy/Dockerfile;
#   2. the compose file is validated by Debian's docker-compose 1.29 and started with Debian's
#      podman-compose (Redis, server, sidecar, throwaway secrets in var/deploy-test/secrets);
#   3. over TLS from this machine, with the host's tokenctl: health, create, disable, the
#      sidecar answering the disable, both programs' metrics (published on the host's loopback)
#      counting it, a credentials file rewritten in place taking effect, a
#      Redis failover (the primary SIGKILLed: writes resume through the promoted replica,
#      nothing acknowledged is lost, the old primary comes back as a replica), the server
#      stopping cleanly;
#   4. the Kubernetes overlays render (kubectl kustomize), pass yamllint and an offline schema
#      check (deploy/test/validate_k8s.mjs, npm package kubernetes-models).
# Each step prints its time. Runs as root (podman); podman's settings come from
# deploy/test/containers.conf through CONTAINERS_CONF. Leaves nothing running.
# DEPLOY_TEST_K8S=optional (what .ci/run sets) skips step 4, saying so, where kubectl is not
# installed (it is not in Debian's archive); otherwise a missing kubectl is an error.
set -euo pipefail
# shellcheck source=SCRIPTDIR/../../scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

ROOT="${TOKENSTATUS_ROOT}"
BUILD_DIR="${BUILD_DIR:-${ROOT}/build}"
TOKENCTL="${BUILD_DIR}/client/tokenctl/tokenctl"
WORK="${ROOT}/var/deploy-test"
SECRETS="${WORK}/secrets"
PROJECT=tokenstatus-deploy-test
COMPOSE_FILE="${ROOT}/deploy/docker-compose.yml"
export CONTAINERS_CONF="${ROOT}/deploy/test/containers.conf"
export TOKENSTATUS_SECRETS_DIR="${SECRETS}"

for tool in podman podman-compose docker-compose debootstrap yamllint openssl node npm; do
  command -v "${tool}" >/dev/null || die "${tool} not found: run deploy/install-deps.sh --deploy"
done
check_k8s=true
if ! command -v kubectl >/dev/null; then
  [[ "${DEPLOY_TEST_K8S:-required}" == optional ]] ||
    die "kubectl not found (install it from Kubernetes' packages, or DEPLOY_TEST_K8S=optional)"
  check_k8s=false
fi
[[ -x "${TOKENCTL}" ]] || die "no ${TOKENCTL}: run make build"

started=${SECONDS}
step_started=${SECONDS}
step() {
  log "step done in $((SECONDS - step_started)) s"
  step_started=${SECONDS}
  log "== $*"
}

compose() { podman-compose -p "${PROJECT}" -f "${COMPOSE_FILE}" "$@"; }
# Containers, volumes and the project's network (made anew each run, so that it gets the dnsname
# plugin: services find each other by name).
cleanup() {
  compose down -v >/dev/null 2>&1 || true
  podman network rm -f "${PROJECT}_default" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# Waits up to $1 seconds until the command after it succeeds.
wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}

step "base images"
"${ROOT}/deploy/test/offline-images.sh"

step "images: tokenstatus:0.1.0 (server) and token-sidecar:0.1.0 (podman build)"
# Docker's image format keeps the HEALTHCHECK (OCI's has none).
for target in server sidecar; do
  name=tokenstatus
  [[ "${target}" == sidecar ]] && name=token-sidecar
  podman build -q --format docker -f "${ROOT}/deploy/Dockerfile" --target "${target}" \
    --ignorefile "${ROOT}/deploy/Dockerfile.dockerignore" -t "${name}:0.1.0" "${ROOT}" >/dev/null
done
help="$(podman run --rm --entrypoint /usr/local/bin/tokenstatus-server tokenstatus:0.1.0 --help)" ||
  die "tokenstatus-server --help did not exit 0"
[[ "${help}" == *--credentials_file* ]] || die "tokenstatus-server --help does not list the flags"
[[ "$(podman run --rm --entrypoint id tokenstatus:0.1.0 -u)" == 65532 ]] ||
  die "the server image does not run as uid 65532"
podman run --rm --entrypoint /usr/local/bin/tokenctl tokenstatus:0.1.0 --help >/dev/null ||
  die "the server image has no working tokenctl"
log "$(podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E 'tokenstatus|token-sidecar')"

step "secrets (throwaway, in ${SECRETS})"
rm -rf "${SECRETS}"
mkdir -p "${WORK}"
mkdir -m 700 "${SECRETS}"
"${ROOT}/scripts/make-dev-certs.sh" "${SECRETS}" tokenstatus >/dev/null
openssl rand -hex 24 >"${SECRETS}/redis_password"
for who in admin sidecar other-admin; do openssl rand -hex 32 >"${SECRETS}/${who}"; done
sha() { head -1 "${SECRETS}/$1" | tr -d '\n' | sha256sum | cut -d' ' -f1; }
printf '%s admin me\n%s verifier sidecar\n' "$(sha admin)" "$(sha sidecar)" >"${SECRETS}/credentials"
chmod a+r "${SECRETS}"/*
chmod a+rx "${SECRETS}"

step "compose file: docker-compose $(docker-compose version --short) config"
docker-compose -f "${COMPOSE_FILE}" config -q

step "compose up (podman-compose, project ${PROJECT})"
cleanup
compose up -d >"${WORK}/compose-up.log" 2>&1 || {
  cat "${WORK}/compose-up.log" >&2
  die "podman-compose up failed"
}
server_container="${PROJECT}_tokenstatus_1"
sidecar_container="${PROJECT}_sidecar_1"
wait_until 90 podman healthcheck run "${server_container}" || {
  podman logs "${server_container}" >"${WORK}/server.log" 2>&1 || true
  tail -20 "${WORK}/server.log" >&2
  die "the server's healthcheck did not pass within 90 s"
}
log "server healthy: $(podman exec "${server_container}" tokenctl --server 127.0.0.1:8081 health)"

step "over TLS from the host: create, disable, the sidecar sees the disable"
ctl() {
  local who="$1"
  shift
  "${TOKENCTL}" --server localhost:50051 --ca "${SECRETS}/ca.pem" \
    --credentials-file "${SECRETS}/${who}" "$@"
}
account="ACC-$((1000 + RANDOM % 9000))-$((1000 + RANDOM % 9000))"
created="$(ctl admin --json create --account "${account}" --name deploy-test)"
token_id="$(printf '%s' "${created}" | sed -n 's/.*"id": *"\(TKN-[0-9-]*\)".*/\1/p' | head -1)"
secret="$(printf '%s' "${created}" | sed -n 's/.*"secret": *"\([^"]*\)".*/\1/p')"
[[ -n "${token_id}" && -n "${secret}" ]] || die "create did not print an id and a secret"
printf '%s' "${secret}" >"${WORK}/token-secret"
sidecar_verify() {
  podman exec -i "${sidecar_container}" tokenctl --server 127.0.0.1:50052 verify \
    <"${WORK}/token-secret"
}
sidecar_says() { sidecar_verify 2>/dev/null | grep -q -w "$1"; }
wait_until 30 sidecar_says VALID || die "the sidecar did not answer VALID for the new token"
ctl admin disable "${token_id}" --yes --reason "deploy test"
wait_until 10 sidecar_says DISABLED || die "the sidecar did not answer DISABLED after the disable"
log "sidecar: $(sidecar_verify | head -1)"

step "metrics, published on the host's loopback: the server counted the disable, the sidecar its verdicts"
# The value of the sample named $2 (with its labels) at http://127.0.0.1:$1/metrics.
metric() {
  curl -s --max-time 5 "http://127.0.0.1:$1/metrics" | awk -v name="$2" '$1 == name { print $2 }'
}
[[ "$(metric 9464 'tokenstatus_changes_total{type="disabled"}')" == 1 ]] ||
  die "the server's tokenstatus_changes_total{type=\"disabled\"} is not 1"
[[ "$(metric 9464 tokenstatus_redis_up)" == 1 ]] || die "the server's tokenstatus_redis_up is not 1"
[[ "$(metric 9465 tokenstatus_cache_fresh)" == 1 ]] || die "the sidecar's cache is not fresh"
denials="$(metric 9465 'tokenstatus_sidecar_decisions_total{rpc="VerifyToken",result="deny"}')"
((${denials:-0} >= 1)) || die "the sidecar counted no denial"
log "server: $(metric 9464 'tokenstatus_changes_total{type="disabled"}') disable; sidecar: ${denials} denials, propagation count $(metric 9465 tokenstatus_cache_propagation_seconds_count)"

step "credentials rewritten in place: the new admin works, the old one is refused"
printf '%s admin me\n%s verifier sidecar\n' "$(sha other-admin)" "$(sha sidecar)" \
  >"${SECRETS}/credentials"
wait_until 30 ctl other-admin get "${token_id}" ||
  die "the new credential was not accepted within 30 s"
if ctl admin get "${token_id}" >/dev/null 2>"${WORK}/refused.err"; then
  die "the removed credential is still accepted"
fi
grep -q UNAUTHENTICATED "${WORK}/refused.err" || die "the removed credential: $(cat "${WORK}/refused.err")"
# (The log goes to a file first: grep -q ending a pipe early would fail the pipe.)
podman logs "${server_container}" >"${WORK}/server.log" 2>&1
grep -q 'event=credentials_reloaded reload=1 cause=file_changed' "${WORK}/server.log" ||
  die "the server did not log the reload"

step "failover: the Redis primary is killed, the sentinels promote the replica"
# Fails with what the server, the sentinels and the replicas logged last (the compose project is
# removed on exit, its logs with it).
die_with_logs() {
  local container
  for container in tokenstatus sentinel-1 sentinel-2 sentinel-3 redis-replica-1 redis-replica-2; do
    log "--- last lines of ${container}:"
    podman logs --tail 15 "${PROJECT}_${container}_1" 2>&1 | grep -v 'systemd connection' >&2 || true
  done
  die "$@"
}
redis_role() {
  podman exec "${PROJECT}_$1_1" sh -c \
    'REDISCLI_AUTH="$(cat /run/secrets/redis_password)" redis-cli role | head -1'
}
redis_role_is() { [[ "$(redis_role "$1" 2>/dev/null)" == "$2" ]]; }
{ wait_until 30 redis_role_is redis-replica-1 slave && wait_until 30 redis_role_is redis-replica-2 slave; } ||
  die "the replicas did not become the primary's replicas"
redis_role_is redis-primary master || die "redis-primary is not the primary"
# SIGKILL at once (stop with no grace, so that its restart policy leaves it down, as a dead
# machine would be).
podman stop --time 0 "${PROJECT}_redis-primary_1" >/dev/null
killed=${SECONDS}
# One change of the token, the opposite of its state as the server shows it. An attempt that
# reached the new primary may have been kept there without being acknowledged (UNAVAILABLE, e.g.
# REPLICATION_UNCONFIRMED while the other replica was still attaching to it): the next enable
# would then be refused as TOKEN_ALREADY_ACTIVE, so the next attempt disables instead.
change_after_failover() {
  local shown change=enable
  shown="$(ctl other-admin get "${token_id}" 2>/dev/null)" || true
  [[ "${shown}" =~ State:\ +ACTIVE ]] && change=disable
  ctl other-admin "${change}" "${token_id}" --reason "after the failover"
}
# The first change after the kill that is acknowledged (changes fail fast meanwhile).
wait_until 60 change_after_failover ||
  die_with_logs "no change was acknowledged within 60 s of the primary's loss"
log "writes resumed $((SECONDS - killed)) s after the primary was killed (sentinel down-after 3 s)"
redis_role_is redis-replica-1 master || redis_role_is redis-replica-2 master ||
  die_with_logs "no replica was promoted"
# Nothing acknowledged was lost: the disable made before the kill is in the token's history.
history="$(ctl other-admin history "${token_id}")"
[[ "${history}" == *'reason="deploy test"'* ]] ||
  die "the disable acknowledged before the failover is gone: ${history}"
podman start "${PROJECT}_redis-primary_1" >/dev/null
wait_until 60 redis_role_is redis-primary slave ||
  die "the old primary did not come back as a replica"
log "the old primary is a replica of the new one"

step "no secret in the server's logs; SIGTERM stops it cleanly"
podman logs "${server_container}" >"${WORK}/server.log" 2>&1
if grep -q -F -e "${secret}" -e "$(head -1 "${SECRETS}/admin")" \
  -e "$(head -1 "${SECRETS}/redis_password")" "${WORK}/server.log"; then
  die "a secret appears in the server's log"
fi
podman stop -t 15 "${server_container}" >/dev/null
[[ "$(podman inspect --format '{{.State.ExitCode}}' "${server_container}")" == 0 ]] ||
  die "the server did not exit 0 on SIGTERM"
compose down -v >/dev/null 2>&1

step "Kubernetes: kubectl kustomize, yamllint, schema check"
if ${check_k8s}; then
  "${ROOT}/deploy/test/check_k8s.sh"
else
  log "SKIPPED: kubectl is not installed (DEPLOY_TEST_K8S=optional)"
fi

step "done"
log "deploy test passed in $((SECONDS - started)) s"
