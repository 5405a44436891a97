# skaffold v2.16.1, built from its Go module: `skaffold run/dev/delete -p local` on the local cluster
# The module has `replace` directives, so `go install` refuses it: it is built in a writable copy of
# the downloaded module, as FerretDB is, with the version stamp its release builds carry.
# Only for the local cluster (`bootstrap.sh cluster`): not part of `all`.
in_all=false
needs=()
groups=()
skaffold_version=${POLYSAGA_SKAFFOLD_VERSION:-v2.16.1}

ensure_skaffold() {
  local dest="$cache/skaffold-$skaffold_version/skaffold"
  if [ ! -x "$dest" ]; then
    require_go skaffold
    log "building skaffold $skaffold_version (first run only)"
    local pkg=github.com/GoogleContainerTools/skaffold/v2 scratch module_dir
    scratch=$(mktemp -d)
    module_dir=$(cd "$scratch" && go mod download -json "$pkg@$skaffold_version" \
      | "$python" -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
    cp -r "$module_dir/." "$scratch/src"
    chmod -R u+w "$scratch/src"
    mkdir -p "$(dirname "$dest")"
    (cd "$scratch/src" && timed "go build skaffold" go build -trimpath \
      -ldflags "-s -w -X $pkg/pkg/skaffold/version.version=$skaffold_version" \
      -o "$dest.partial.$$" ./cmd/skaffold)
    mv "$dest.partial.$$" "$dest"
    rm -rf "$scratch"
  fi
  ln -sfn "$dest" "$venv/bin/skaffold"
}
