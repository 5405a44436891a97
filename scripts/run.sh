#!/usr/bin/env bash
# Bootstrap what the command needs (and only that: bootstrap.sh --for), then run a polysaga
# command, e.g.
#   bash scripts/run.sh demo --orders 300 --payment-failure-rate 0.2 --scarce-stock
#   bash scripts/run.sh up --with-jaeger
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$repo/scripts/bootstrap.sh" --for "$@"
exec "$repo/.venv/bin/polysaga" "$@"
