# Helm, built from its Go module: the charts' lint and install tests, `skaffold dev`
# (No release downloads reach this machine.) Cached by version, linked into .venv/bin.
helm_version=${POLYSAGA_HELM_VERSION:-v3.22.0}

ensure_helm() {
  local dir="$cache/helm-$helm_version"
  if [ ! -x "$dir/helm" ]; then
    require_go Helm
    log "building Helm $helm_version (first run only)"
    local gobin scratch gomod k8s_minor pkg=helm.sh/helm/v3
    scratch=$(mktemp -d)
    gomod=$(cd "$scratch" && go mod download -json "$pkg@$helm_version" \
      | "$python" -c 'import json, sys; print(json.load(sys.stdin)["GoMod"])')
    rm -rf "$scratch"
    # As Helm's Makefile does: the Kubernetes version that `helm template` and `helm lint`
    # assume (client-go v0.N.x is Kubernetes 1.N), and helm's own version string. Without
    # these a `go install` build assumes Kubernetes 1.20.
    k8s_minor=$(sed -n 's/^[[:space:]]*k8s\.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod")
    [ -n "$k8s_minor" ] || { log "no k8s.io/client-go in $gomod"; exit 1; }
    local ldflags="-s -w -X $pkg/internal/version.version=$helm_version"
    ldflags+=" -X $pkg/pkg/chartutil.k8sVersionMajor=1 -X $pkg/pkg/chartutil.k8sVersionMinor=$k8s_minor"
    ldflags+=" -X $pkg/pkg/lint/rules.k8sVersionMajor=1 -X $pkg/pkg/lint/rules.k8sVersionMinor=$k8s_minor"
    mkdir -p "$dir"
    # A private GOBIN keeps the binary out of ~/go/bin, and a failed or concurrent build never
    # leaves a half-written helm in the cache.
    gobin=$(mktemp -d "$dir/build.XXXXXX")
    timed "go install helm $helm_version" env GOBIN="$gobin" go install -trimpath -ldflags "$ldflags" "$pkg/cmd/helm@$helm_version"
    mv "$gobin/helm" "$dir/helm"
    rmdir "$gobin"
  fi
  ln -sfn "$dir/helm" "$venv/bin/helm"
}
