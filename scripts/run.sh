#!/usr/bin/env bash
# Bootstrap what the command needs (and only that), then run a polysaga command, e.g.
#   bash scripts/run.sh demo --orders 300 --payment-failure-rate 0.2 --scarce-stock
#   bash scripts/run.sh up --with-jaeger
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# The components of scripts/bootstrap.d each command needs: a command that starts no server
# (check --attach, rebuild, dashboards, nats-permissions, …) needs only the CLI.
components=(cli)
case "${1:-}" in
  up | demo | bench | chaos) components=(stack) ;;
  cluster) components=(cluster) ;; # the local Kubernetes cluster: scripts/bootstrap.d/cluster.sh
esac
for arg in "$@"; do
  case "$arg" in
    --with-jaeger) components+=(jaeger) ;;
    --with-prometheus) components+=(prometheus) ;;
  esac
done

bash "$repo/scripts/bootstrap.sh" "${components[@]}"
exec "$repo/.venv/bin/polysaga" "$@"
