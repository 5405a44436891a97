#!/usr/bin/env bash
# Creates the Secret of NATS passwords (one random password per service that uses NATS) that
# the kustomize base expects, once: an existing Secret is left alone, so running clients keep
# working. The Helm chart generates this Secret itself.
#   bash k8s/nats-users-secret.sh [NAMESPACE]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
namespace=${1:-polysaga}
secret=polysaga-nats-users
if kubectl get secret "$secret" --namespace "$namespace" >/dev/null 2>&1; then
  echo "secret/$secret exists in $namespace; left as it is"
  exit 0
fi
args=()
for user in $(python3 -c 'import json, sys; print(" ".join(sorted(json.load(open(sys.argv[1])))))' \
  "$repo/charts/polysaga/files/nats-permissions.json"); do
  args+=("--from-literal=$user=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')")
done
kubectl create secret generic "$secret" --namespace "$namespace" "${args[@]}"
