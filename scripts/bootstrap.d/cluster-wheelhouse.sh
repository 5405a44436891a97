# the wheelhouse the images install from with --no-index: every wheel of the runtime and operator sets of uv.lock, downloaded on the host
# Exported from uv.lock exactly as locked (with hashes), for the Debian base's Python (CPython
# 3.11 on glibc 2.36, x86_64), plus pip's own wheel (the images run pip from it and keep no pip).
# Cached by the lock's hash; linked into .polysaga/wheelhouse, inside the images' build context.
# Only for the local cluster (`bootstrap.sh cluster`): not part of `all`.
in_all=false
needs=(uv)
groups=()

cluster_wheelhouse_pip=25.3

ensure_cluster_wheelhouse() {
  local key dir
  key=$(cat "$repo/uv.lock" "$parts_dir/cluster-wheelhouse.sh" | sha256sum | cut -c1-16)
  dir="$cache/wheelhouse-$key"
  if [ ! -s "$dir/runtime.txt" ]; then
    log "downloading the images' wheels from uv.lock (first run after a lock change)"
    local scratch platforms=() minor
    mkdir -p "$cache"
    scratch=$(mktemp -d "$cache/wheelhouse.XXXXXX")
    (cd "$repo" && "$uv" export --quiet --frozen --no-emit-workspace --no-dev -o "$scratch/runtime.txt")
    (cd "$repo" && "$uv" export --quiet --frozen --no-emit-workspace --only-group operator \
      -o "$scratch/operator.txt")
    for minor in $(seq 36 -1 17); do platforms+=(--platform "manylinux_2_${minor}_x86_64"); done
    platforms+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64
      --platform manylinux1_x86_64)
    timed "pip download (wheelhouse)" "$python" -m pip download --quiet --no-deps \
      --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 "${platforms[@]}" \
      --require-hashes -r "$scratch/runtime.txt" -r "$scratch/operator.txt" -d "$scratch"
    "$python" -m pip download --quiet --no-deps --only-binary=:all: -d "$scratch/pip" \
      "pip==$cluster_wheelhouse_pip"
    mv "$scratch"/pip/pip-*.whl "$scratch/pip.whl"
    rmdir "$scratch/pip"
    rm -rf "$dir"
    mv "$scratch" "$dir"
  fi
  # Hard links where the cache shares the repository's file system, copies elsewhere: Docker
  # sends only what is inside the context.
  rm -rf "$repo/.polysaga/wheelhouse"
  mkdir -p "$repo/.polysaga"
  cp -al "$dir" "$repo/.polysaga/wheelhouse" 2>/dev/null || cp -a "$dir" "$repo/.polysaga/wheelhouse"
}
