# Jaeger v2, built from its Go module: `polysaga up --with-jaeger` and the tracing e2e test
# (`cmd/jaeger`: one binary with an OTLP receiver, in-memory storage and the query API.)
# The module has a `replace` directive, so `go install …@version` refuses it: it is built by
# build_go_module_copy (scripts/bootstrap.sh) instead. Cached by version.
jaeger_version=${POLYSAGA_JAEGER_VERSION:-v1.76.0}

ensure_jaeger() {
  local dest="$cache/jaeger-$jaeger_version/jaeger"
  if [ ! -x "$dest" ]; then
    log "building Jaeger $jaeger_version (first run only; several minutes)"
    build_go_module_copy "github.com/jaegertracing/jaeger@$jaeger_version" ./cmd/jaeger "$dest"
  fi
  ln -sfn "$dest" "$venv/bin/jaeger"
}
