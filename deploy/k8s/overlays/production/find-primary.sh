#!/bin/sh
# Prints the host name of the Redis primary of "tokenstatus" as the sentinels know it, asking
# each pod's sentinel in turn (3 s each); when none answers (the very first start, or every pod
# restarted at once), pod 0's. Needs NAMESPACE and REDIS_PASSWORD.
set -eu
pod() { echo "tokenstatus-redis-$1.tokenstatus-redis.${NAMESPACE}.svc.cluster.local"; }
for i in 0 1 2; do
  primary="$(REDISCLI_AUTH="${REDIS_PASSWORD}" timeout 3 redis-cli -h "$(pod "$i")" -p 26379 \
    sentinel get-master-addr-by-name tokenstatus 2>/dev/null | head -1)" || true
  if [ -n "${primary}" ]; then
    echo "${primary}"
    exit 0
  fi
done
pod 0
