# Jaeger v2 (`cmd/jaeger`: one binary with an OTLP receiver, in-memory storage and the query
# API), built from its Go module for `polysaga up --with-jaeger` and the tracing e2e test.
# The module has a `replace` directive, so `go install …@version` refuses it: it is built in a
# writable copy of the downloaded module directory instead. Cached by version.
jaeger_version=${POLYSAGA_JAEGER_VERSION:-v1.76.0}

ensure_jaeger() {
  local dest="$cache/jaeger-$jaeger_version/jaeger"
  if [ ! -x "$dest" ]; then
    command -v go >/dev/null || { log "Go is required to build Jaeger"; exit 1; }
    log "building Jaeger $jaeger_version (first run only; several minutes)"
    local scratch module_dir
    scratch=$(mktemp -d)
    module_dir=$(cd "$scratch" && go mod download -json "github.com/jaegertracing/jaeger@$jaeger_version" \
      | "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
    cp -r "$module_dir/." "$scratch/src"
    chmod -R u+w "$scratch/src"
    mkdir -p "$(dirname "$dest")"
    (cd "$scratch/src" && go build -trimpath -o "$dest.partial" ./cmd/jaeger)
    mv "$dest.partial" "$dest"
    rm -rf "$scratch"
  fi
  ln -sfn "$dest" "$venv/bin/jaeger"
}

ensure_jaeger
