#!/usr/bin/env bash
# The module boundaries (README "How it works"), checked on every #include: `make lint` fails
# on a forbidden one. The build enforces the same with per-library include roots; this names
# the rule that was broken.
#
#   folder            may not include
#   core/             server/, client/
#   client/           server/
#   server/redis/     server/{store,auth,mirror,watch,service}/, grpcpp/ (storage knows no RPC)
#   server/store/     server/{auth,mirror,watch,service}/, grpcpp/
#   server/auth/      server/{redis,store,mirror,watch,service}/
#   server/mirror/    server/{auth,watch,service}/, grpcpp/
#   server/watch/     server/{auth,service}/
set -euo pipefail
cd "$(dirname "$0")/.."

rules=(
  'core|"(server|client)/'
  'client|"server/'
  'server/redis|"server/(store|auth|mirror|watch|service)/|"grpcpp/'
  'server/store|"server/(auth|mirror|watch|service)/|"grpcpp/'
  'server/auth|"server/(redis|store|mirror|watch|service)/'
  'server/mirror|"server/(auth|watch|service)/|"grpcpp/'
  'server/watch|"server/(auth|service)/'
)

violations=0
for rule in "${rules[@]}"; do
  folder=${rule%%|*}
  forbidden=${rule#*|}
  while IFS= read -r hit; do
    echo "forbidden include in ${folder}/: ${hit}" >&2
    violations=$((violations + 1))
  done < <(grep -rnE "^#include (${forbidden})" "${folder}" --include='*.h' --include='*.cc' || true)
done
if ((violations > 0)); then
  echo "check_includes: ${violations} forbidden #include(s); see the table in $0" >&2
  exit 1
fi
echo "check_includes: module boundaries hold"
