#!/usr/bin/env bash
# The whole test suite on a fresh machine: bootstrap, then lint, types, layer rules, tests
# (unit, integration and end-to-end, against real NATS JetStream and PostgreSQL).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
bash scripts/bootstrap.sh all
bin=.venv/bin
echo "== ruff"; "$bin/ruff" check services tools operator tests && "$bin/ruff" format --check services tools operator tests
# The parts in bootstrap.d are sourced by bootstrap.sh, which sets what they use (SC2154) and
# reads what they declare (SC2034).
echo "== shellcheck"
"$bin/shellcheck" -x scripts/*.sh .ci/run \
  && "$bin/shellcheck" -s bash -e SC2034,SC2154 scripts/bootstrap.d/*.sh
echo "== mypy"; "$bin/mypy"
echo "== import layers"; "$bin/lint-imports"
# Each distribution declares what its code imports, and nothing it does not use.
echo "== dependencies"
"$bin/deptry" --no-ansi services && (cd tools && "../$bin/deptry" --no-ansi .) \
  && (cd operator && "../$bin/deptry" --no-ansi .)
echo "== pytest"; "$bin/pytest" -p no:cacheprovider "$@"
