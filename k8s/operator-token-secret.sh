#!/usr/bin/env bash
# Creates the Secret with the operator token (key "token") that the kustomize base expects,
# once: an existing Secret is left alone, so the tooling that holds the token keeps working.
# Every service accepts it on its operator routes (internal writes, /admin). The Helm chart
# generates this Secret itself.
#   bash k8s/operator-token-secret.sh [NAMESPACE]
set -euo pipefail
namespace=${1:-polysaga}
secret=polysaga-operator-token
if kubectl get secret "$secret" --namespace "$namespace" >/dev/null 2>&1; then
  echo "secret/$secret exists in $namespace; left as it is"
  exit 0
fi
kubectl create secret generic "$secret" --namespace "$namespace" \
  "--from-literal=token=$(head -c 32 /dev/urandom | base64 | tr -d '/+=')"
