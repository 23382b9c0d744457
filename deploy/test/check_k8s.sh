#!/usr/bin/env bash
# Renders deploy/ (the base) and every overlay under deploy/k8s/overlays with kubectl kustomize,
# then checks each rendering with yamllint and against the Kubernetes API schemas
# (validate_k8s.mjs; kubernetes-models and js-yaml are installed with npm into var/tools/k8s).
# Renderings are kept in var/deploy-test/k8s/<name>.yaml.
set -euo pipefail
# shellcheck source=SCRIPTDIR/../../scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

ROOT="${TOKENSTATUS_ROOT}"
OUT="${ROOT}/var/deploy-test/k8s"
TOOLS="${ROOT}/var/tools/k8s"
mkdir -p "${OUT}" "${TOOLS}"
if [[ ! -d "${TOOLS}/node_modules/kubernetes-models" ]]; then
  log "installing kubernetes-models and js-yaml into ${TOOLS} (npm)"
  (cd "${TOOLS}" && npm install --silent --no-audit --no-fund --prefix . \
    kubernetes-models@5.1.0 js-yaml@4.1.0 >/dev/null)
fi
cp "${ROOT}/deploy/test/validate_k8s.mjs" "${TOOLS}/validate_k8s.mjs"

declare -A targets=([base]="${ROOT}/deploy")
for overlay in "${ROOT}"/deploy/k8s/overlays/*/; do
  targets[$(basename "${overlay}")]="${overlay}"
done
for name in "${!targets[@]}"; do
  kubectl kustomize "${targets[${name}]}" >"${OUT}/${name}.yaml"
  log "${name}: $(grep -c '^kind:' "${OUT}/${name}.yaml") objects"
done
yamllint -d '{extends: default, rules: {line-length: {max: 160}, document-start: disable, indentation: {indent-sequences: whatever}}}' \
  "${OUT}"/*.yaml "${ROOT}"/deploy/kustomization.yaml "${ROOT}"/deploy/k8s
node "${TOOLS}/validate_k8s.mjs" "${OUT}"/*.yaml
