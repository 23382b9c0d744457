#!/bin/sh
# The sentinel of a tokenstatus-redis pod, watching "tokenstatus" (a quorum of 2 of 3). A
# sentinel rewrites its configuration file: it writes one of its own on the pod's tmpfs.
set -eu
REDIS_PASSWORD="$(cat /etc/redis-secret/password)"
export REDIS_PASSWORD
self="$(hostname).tokenstatus-redis.${NAMESPACE}.svc.cluster.local"
primary="$(/scripts/find-primary.sh)"
printf '%s\n' 'port 26379' 'dir /tmp' \
  'sentinel resolve-hostnames yes' 'sentinel announce-hostnames yes' \
  "sentinel announce-ip ${self}" \
  "sentinel monitor tokenstatus ${primary} 6379 2" \
  "sentinel auth-pass tokenstatus \"${REDIS_PASSWORD}\"" "requirepass \"${REDIS_PASSWORD}\"" \
  'sentinel down-after-milliseconds tokenstatus 5000' \
  'sentinel failover-timeout tokenstatus 60000' >/tmp/sentinel.conf
exec redis-server /tmp/sentinel.conf --sentinel
