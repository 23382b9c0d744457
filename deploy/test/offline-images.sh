#!/usr/bin/env bash
# Makes the base images deploy/Dockerfile and deploy/docker-compose.yml need when no container
# registry is reachable (an offline builder's way), for podman: debian:bookworm and
# debian:bookworm-slim from Debian's archive (debootstrap --variant=minbase, then podman import),
# and the Redis image from Debian's redis-server package. An image that is already there (pulled
# from a real registry, or made by an earlier run) is left alone, so with a registry every step
# is a no-op.
# Environment: DEBIAN_MIRROR (http://deb.debian.org/debian), WORK_DIR (var/deploy-test/rootfs),
# REDIS_IMAGE (the tag deploy/docker-compose.yml and the k8s manifests pin).
set -euo pipefail
# shellcheck source=SCRIPTDIR/../../scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
WORK_DIR="${WORK_DIR:-${TOKENSTATUS_ROOT}/var/deploy-test/rootfs}"
REDIS_IMAGE="${REDIS_IMAGE:-docker.io/library/redis:7.0.15-bookworm}"

has_image() { podman image exists "$1"; }

# debian:bookworm (minbase) and debian:bookworm-slim (minbase without documentation, manuals
# and translations, which dpkg then keeps out, as the official slim image does).
if ! has_image docker.io/library/debian:bookworm || ! has_image docker.io/library/debian:bookworm-slim; then
  rootfs="${WORK_DIR}/bookworm"
  rm -rf "${rootfs}"
  mkdir -p "${WORK_DIR}"
  log "debootstrap --variant=minbase bookworm from ${DEBIAN_MIRROR} (a few minutes)"
  debootstrap --variant=minbase bookworm "${rootfs}" "${DEBIAN_MIRROR}" >"${WORK_DIR}/debootstrap.log" 2>&1 ||
    die "debootstrap failed: see ${WORK_DIR}/debootstrap.log"
  rm -rf "${rootfs}"/var/cache/apt/archives/*.deb "${rootfs}"/var/lib/apt/lists/*
  tar -C "${rootfs}" -c . | podman import -q --change 'CMD ["bash"]' - docker.io/library/debian:bookworm >/dev/null
  log "imported debian:bookworm"
  cat >"${rootfs}/etc/dpkg/dpkg.cfg.d/docker-slim" <<'SLIM'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
SLIM
  find "${rootfs}/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "${rootfs}"/usr/share/man/* "${rootfs}"/usr/share/info/* "${rootfs}"/usr/share/locale/*
  tar -C "${rootfs}" -c . | podman import -q --change 'CMD ["bash"]' - docker.io/library/debian:bookworm-slim >/dev/null
  log "imported debian:bookworm-slim"
  rm -rf "${rootfs}"
fi

# The Redis image: Debian's redis-server 7.0.15 on bookworm-slim, laid out like the official
# image where the deploy files rely on it (redis-server and redis-cli on PATH, user redis, /data).
if ! has_image "${REDIS_IMAGE}"; then
  log "building ${REDIS_IMAGE} from Debian's redis-server"
  podman build -q -t "${REDIS_IMAGE}" -f - "${TOKENSTATUS_ROOT}/deploy/test" >/dev/null <<'REDIS'
FROM docker.io/library/debian:bookworm-slim
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /data /usr/local/etc/redis && chown redis:redis /data
WORKDIR /data
EXPOSE 6379
CMD ["redis-server"]
REDIS
fi
log "images: $(podman images --format '{{.Repository}}:{{.Tag}}' | tr '\n' ' ')"
