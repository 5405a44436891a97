# kube-apiserver, etcd and kubectl, built from their Go modules: the tests in tests/k8s
# They are built through the wrapper modules in scripts/kube-apiserver and scripts/etcd, which pin
# every version. kubectl comes from the machine when it has one, else from the same module set.
# A cold build costs about 11 CPU-minutes for kube-apiserver and 1.5 for etcd (measured: 575 s
# user + 84 s system; 61 min wall on a 2-core machine shared at load ~30), so roughly 6-10 minutes
# on an idle 2-core machine; once cached by version, a run only relinks.

k8s_module_version() { # the version of $2 required by the wrapper module in directory $1
  awk -v mod="$2" '$1 == mod && $2 ~ /^v/ { print $2; exit }
                   $1 == "require" && $2 == mod { print $3; exit }' "$1/go.mod"
}

k8s_build() { # k8s_build <module dir> <package> <destination> [go build flags...]
  local module_dir=$1 package=$2 dest=$3
  shift 3
  require_go "$package"
  mkdir -p "$(dirname "$dest")"
  (cd "$module_dir" && timed "go build $package" go build -trimpath "$@" -o "$dest.partial.$$" "$package")
  mv "$dest.partial.$$" "$dest"
}

ensure_kubernetes() {
  local k8s_dir="$repo/scripts/kube-apiserver" etcd_dir="$repo/scripts/etcd"
  local k8s_version etcd_version minor version_flags
  k8s_version=$(k8s_module_version "$k8s_dir" k8s.io/kubernetes)
  etcd_version=$(k8s_module_version "$etcd_dir" go.etcd.io/etcd/server/v3)
  minor=${k8s_version#v1.}
  minor=${minor%%.*}
  # The module carries no release stamp; without it the server reports v0.0.0, which clients
  # such as Helm compare against charts' kubeVersion.
  version_flags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version"
  version_flags+=" -X k8s.io/component-base/version.gitMajor=1"
  version_flags+=" -X k8s.io/component-base/version.gitMinor=$minor"
  version_flags+=" -X k8s.io/component-base/version.gitTreeState=clean"

  local apiserver="$cache/kube-apiserver-$k8s_version/kube-apiserver"
  if [ ! -x "$apiserver" ]; then
    log "building kube-apiserver $k8s_version (first run only; ~11 CPU-minutes)"
    k8s_build "$k8s_dir" k8s.io/kubernetes/cmd/kube-apiserver "$apiserver" -ldflags "$version_flags"
  fi
  ln -sfn "$apiserver" "$venv/bin/kube-apiserver"

  local etcd="$cache/etcd-$etcd_version/etcd"
  if [ ! -x "$etcd" ]; then
    log "building etcd $etcd_version (first run only)"
    k8s_build "$etcd_dir" go.etcd.io/etcd/server/v3 "$etcd" -ldflags "-s -w"
  fi
  ln -sfn "$etcd" "$venv/bin/etcd"

  local kubectl
  if kubectl=$(command -v kubectl); then
    [ "$kubectl" = "$venv/bin/kubectl" ] || ln -sfn "$kubectl" "$venv/bin/kubectl"
  else
    kubectl="$cache/kubectl-$k8s_version/kubectl"
    if [ ! -x "$kubectl" ]; then
      log "building kubectl $k8s_version (the machine has none)"
      k8s_build "$k8s_dir" k8s.io/kubernetes/cmd/kubectl "$kubectl" -ldflags "$version_flags"
    fi
    ln -sfn "$kubectl" "$venv/bin/kubectl"
  fi
}
