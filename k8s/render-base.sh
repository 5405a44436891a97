#!/usr/bin/env bash
# Renders the kustomize base from the two charts with their default values, so kubectl
# kustomize needs no Helm. The NATS passwords and operator token Secrets are left out (no
# secret in a committed file): create them once with k8s/nats-users-secret.sh and
# k8s/operator-token-secret.sh. tests/charts/test_kustomize.py fails
# when the committed base differs from a fresh rendering: run this after changing a chart.
#   bash k8s/render-base.sh [OUTPUT_DIR]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$repo/k8s/base}
helm=${HELM:-$repo/.venv/bin/helm}
[ -x "$helm" ] || helm=helm
namespace=polysaga
header="# Rendered by k8s/render-base.sh from charts/%s; do not edit by hand.\n"
{
  printf "$header" polysaga-operator
  "$helm" template polysaga-operator "$repo/charts/polysaga-operator" --namespace "$namespace" --include-crds
} >"$out/polysaga-operator.yaml"
{
  printf "$header" polysaga
  "$helm" template polysaga "$repo/charts/polysaga" --namespace "$namespace" --set nats.usersSecret.create=false \
    --set auth.operatorToken.create=false --set auth.operatorToken.existingSecret=polysaga-operator-token
} >"$out/polysaga.yaml"
