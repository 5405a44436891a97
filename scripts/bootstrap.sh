#!/usr/bin/env bash
# Installs what the named components need, and nothing else:
#   bash scripts/bootstrap.sh [COMPONENT...]     (no component: all of them, as the tests need)
#   bash scripts/bootstrap.sh --for up --with-jaeger   (what a polysaga command needs: run.sh)
#   bash scripts/bootstrap.sh --plan …           (the parts and groups it would install; no change)
#   bash scripts/bootstrap.sh --list             (the components, one line each)
# Each component is one part, scripts/bootstrap.d/NAME.sh (see the README there). Every
# component also gets .venv, synced from uv.lock with the dependency groups its parts ask for.
# Tools are installed into a cache keyed by version and linked into .venv/bin, so a second run
# only checks and relinks. Idempotent; refuses a uv.lock that disagrees with pyproject.toml.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
parts_dir="$repo/scripts/bootstrap.d"
cache=${POLYSAGA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/polysaga}
venv="$repo/.venv"
python=${PYTHON:-python3}

# Each line says how long the bootstrap has run so far: the cold figures in the README come from these.
log() { printf '[bootstrap %ds] %s\n' "$SECONDS" "$*" >&2; }

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Runs a build and logs its wall and CPU time (user and system, of every process it waited for)
# with the load average it ran under: the figures the README quotes for a cold bootstrap.
timed() {
  local label=$1 TIMEFORMAT
  shift
  TIMEFORMAT="[bootstrap] $label: %R s wall, %U s user, %S s system"
  TIMEFORMAT+=" (load average $(cut -d' ' -f1 /proc/loadavg) at the start)"
  time "$@"
  log "$label: load average $(cut -d' ' -f1 /proc/loadavg) at the end"
}

require_go() {
  command -v go >/dev/null || { log "Go is required to build $1 (Go ≥ 1.24; Helm and etcd need ≥ 1.26)"; exit 1; }
}

# Builds a Go program from a module that `go install module@version` refuses (it has `replace`
# directives, or needs generated files): in a writable copy of the downloaded module directory.
# Usage: build_go_module_copy MODULE@VERSION PACKAGE DEST [PREPARE_FN]; PREPARE_FN runs in the
# copy first. The binary lands at DEST atomically.
build_go_module_copy() {
  local module=$1 package=$2 dest=$3 prepare=${4:-}
  require_go "$module"
  local scratch module_dir
  scratch=$(mktemp -d)
  module_dir=$(cd "$scratch" && go mod download -json "$module" \
    | "$python" -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
  cp -r "$module_dir/." "$scratch/src"
  chmod -R u+w "$scratch/src"
  if [ -n "$prepare" ]; then (cd "$scratch/src" && "$prepare"); fi
  mkdir -p "$(dirname "$dest")"
  (cd "$scratch/src" && timed "go build $module" go build -trimpath -o "$dest.partial.$$" "$package")
  mv "$dest.partial.$$" "$dest"
  rm -rf "$scratch"
}

# --- components: resolve the names given into parts, each after the parts it needs -----------

declare -A part_seen=() part_groups=()
ordered=()

part_file() { printf '%s/%s.sh' "$parts_dir" "$1"; }

list_parts() {
  local file name
  for file in "$parts_dir"/*.sh; do
    name=$(basename "$file" .sh)
    printf '%-16s %s\n' "$name" "$(sed -n '1s/^# *//p' "$file")"
  done
}

# A part declares `needs=(…)` (other parts, installed first) and `groups=(…)` (dependency groups
# of uv.lock it needs in .venv), and defines ensure_NAME (NAME with - as _), run afterwards.
resolve() {
  local name=$1 file
  case "${part_seen[$name]:-}" in
    done) return ;;
    active) log "components: $name needs itself (a cycle in bootstrap.d)"; exit 1 ;;
  esac
  file=$(part_file "$name")
  if [ ! -f "$file" ]; then
    log "unknown component '$name'; the components are:"
    list_parts >&2
    exit 2
  fi
  part_seen[$name]=active
  local needs=() groups=()
  # shellcheck source=/dev/null
  source "$file"
  part_groups[$name]="${groups[*]}"
  local need
  for need in "${needs[@]}"; do resolve "$need"; done
  part_seen[$name]="done"
  ordered+=("$name")
}

# The components a `polysaga` command needs (scripts/run.sh passes its arguments): a command that
# starts no server (check --attach, rebuild, dashboards, nats-permissions, …) needs only the CLI.
components_for() {
  local components=(cli) arg
  case "${1:-}" in
    up | demo | bench | chaos) components=(stack) ;;
    cluster) components=(cluster) ;; # the local Kubernetes cluster: bootstrap.d/cluster.sh
  esac
  for arg in "$@"; do
    case "$arg" in
      --with-jaeger) components+=(jaeger) ;;
      --with-prometheus) components+=(prometheus) ;;
    esac
  done
  echo "${components[@]}"
}

plan_only=false
case "${1:-}" in
  --list) list_parts; exit 0 ;;
  --plan) plan_only=true; shift ;;
esac
if [ "${1:-}" = "--for" ]; then
  shift
  # shellcheck disable=SC2046 # one word per component
  set -- $(components_for "$@")
fi
[ $# -gt 0 ] || set -- all

# The interpreter itself, not a launcher such as pyenv's shim (which costs half a second a call):
# the one .venv was made with, unless PYTHON names another.
if [ -z "${PYTHON:-}" ] && [ -x "$venv/bin/python" ]; then
  python=$(readlink -f "$venv/bin/python")
else
  python=$("$python" -c 'import sys; print(sys.executable if sys.version_info >= (3, 11) else "")')
  [ -n "$python" ] || { log "Python >= 3.11 is required (set PYTHON=...)"; exit 1; }
fi

# uv and the environment come first: every other part links into .venv/bin.
for name in uv venv "$@"; do resolve "$name"; done
for name in "${ordered[@]}"; do
  declare -F "ensure_${name//-/_}" >/dev/null \
    || { log "$(part_file "$name") defines no ensure_${name//-/_}"; exit 1; }
done

# The dependency groups the chosen parts asked for, which the venv part syncs.
declare -A wanted_groups=()
for name in "${ordered[@]}"; do
  for group in ${part_groups[$name]}; do wanted_groups[$group]=1; done
done
venv_groups=()
[ ${#wanted_groups[@]} -eq 0 ] || mapfile -t venv_groups < <(printf '%s\n' "${!wanted_groups[@]}" | sort)

if $plan_only; then
  echo "parts: ${ordered[*]}"
  echo "groups: ${venv_groups[*]}"
  exit 0
fi
mkdir -p "$cache"
for name in "${ordered[@]}"; do "ensure_${name//-/_}"; done
log "ready (${*}): source .venv/bin/activate"
