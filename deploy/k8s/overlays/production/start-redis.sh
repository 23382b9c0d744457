#!/bin/sh
# The Redis of a tokenstatus-redis pod: the primary if the sentinels (or, on a first start, the
# pod's ordinal) say so, else its replica; announced to the sentinels by the pod's stable name.
set -eu
REDIS_PASSWORD="$(cat /etc/redis-secret/password)"
export REDIS_PASSWORD
printf 'requirepass "%s"\nmasterauth "%s"\n' "${REDIS_PASSWORD}" "${REDIS_PASSWORD}" >/tmp/auth.conf
self="$(hostname).tokenstatus-redis.${NAMESPACE}.svc.cluster.local"
primary="$(/scripts/find-primary.sh)"
set -- /usr/local/etc/redis/redis.conf --bind 0.0.0.0 --dir /data --maxmemory "${REDIS_MAXMEMORY}" \
  --replica-announce-ip "${self}" --min-replicas-to-write 1 --min-replicas-max-lag 10 \
  --include /tmp/auth.conf
[ "${primary}" = "${self}" ] || set -- "$@" --replicaof "${primary}" 6379
exec redis-server "$@"
