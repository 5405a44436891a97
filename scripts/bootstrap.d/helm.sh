# Helm, built from its Go module (no release downloads reach this machine); the charts' lint
# and install tests and `skaffold dev` use it. Cached by version, linked into .venv/bin.
helm_version=${POLYSAGA_HELM_VERSION:-v3.22.0}

ensure_helm() {
  local dir="$cache/helm-$helm_version"
  if [ ! -x "$dir/helm" ]; then
    command -v go >/dev/null || { log "Go is required to build Helm"; exit 1; }
    log "building Helm $helm_version (first run only)"
    local gobin
    mkdir -p "$dir"
    # A private GOBIN keeps the binary out of ~/go/bin, and a failed or concurrent build never
    # leaves a half-written helm in the cache.
    gobin=$(mktemp -d "$dir/build.XXXXXX")
    GOBIN="$gobin" go install -trimpath "helm.sh/helm/v3/cmd/helm@$helm_version"
    mv "$gobin/helm" "$dir/helm"
    rmdir "$gobin"
  fi
  ln -sfn "$dir/helm" "$venv/bin/helm"
}

ensure_helm
