# CoreDNS, built static from its Go module: the local cluster's DNS
# Only for the local cluster (`bootstrap.sh cluster`): not part of `all`.
in_all=false
needs=()
groups=()
coredns_version=${POLYSAGA_COREDNS_VERSION:-v1.12.1}

ensure_coredns() {
  local dir="$cache/coredns-$coredns_version"
  if [ ! -x "$dir/coredns" ]; then
    require_go CoreDNS
    log "building CoreDNS $coredns_version (first run only; ~3.5 CPU-minutes)"
    local gobin
    mkdir -p "$dir"
    gobin=$(mktemp -d "$dir/build.XXXXXX")
    # Static (no cgo): it runs in a FROM scratch image.
    GOBIN="$gobin" CGO_ENABLED=0 timed "go install coredns" \
      go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$coredns_version"
    mv "$gobin/coredns" "$dir/coredns"
    rmdir "$gobin"
  fi
  ln -sfn "$dir/coredns" "$venv/bin/coredns"
}
