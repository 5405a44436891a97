# kubelet, kube-controller-manager, kube-scheduler, kube-proxy and kubectl v1.34: the local cluster's node
# Built from the k8s.io/kubernetes module through the wrapper module in scripts/kube-apiserver (the
# same pins as kube-apiserver), in one `go build`, with the release stamp the API server has. With
# kube-apiserver already in the Go build cache this costs about 3 CPU-minutes more (the packages
# are mostly shared); cold, about 14 CPU-minutes for all of them.
# Only for the local cluster (`bootstrap.sh cluster`): not part of `all`.
in_all=false
needs=(kubernetes)
groups=()

ensure_cluster_node() {
  local k8s_dir="$repo/scripts/kube-apiserver" version minor
  version=$(k8s_module_version "$k8s_dir" k8s.io/kubernetes)
  minor=${version#v1.}
  minor=${minor%%.*}
  local dir="$cache/kubernetes-node-$version"
  local tools=(kubelet kube-controller-manager kube-scheduler kube-proxy kubectl) tool missing=
  for tool in "${tools[@]}"; do [ -x "$dir/$tool" ] || missing=1; done
  if [ -n "$missing" ]; then
    require_go "the Kubernetes node components"
    log "building ${tools[*]} $version (first run only)"
    local flags="-s -w -X k8s.io/component-base/version.gitVersion=$version"
    flags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
    flags+=" -X k8s.io/component-base/version.gitTreeState=clean"
    local scratch
    mkdir -p "$dir"
    scratch=$(mktemp -d "$dir/build.XXXXXX")
    (cd "$k8s_dir" && timed "go build kubelet, controller-manager, scheduler, kube-proxy, kubectl" \
      go build -trimpath -ldflags "$flags" -o "$scratch/" \
        "${tools[@]/#/k8s.io/kubernetes/cmd/}")
    for tool in "${tools[@]}"; do mv "$scratch/$tool" "$dir/$tool"; done
    rmdir "$scratch"
  fi
  for tool in "${tools[@]}"; do ln -sfn "$dir/$tool" "$venv/bin/$tool"; done
}
