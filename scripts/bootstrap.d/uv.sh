# uv, exactly the version pinned (with every wheel's hash) in uv-requirements.txt
# Installed from the registry into its own small environment in the cache, keyed by version, and
# linked into .venv/bin once the venv part has made .venv. uv reads none of pip's settings
# (PIP_INDEX_URL, PIP_FIND_LINKS, …): what it installs comes from uv.lock alone.
uv_requirements="$parts_dir/uv-requirements.txt"
uv_version=$(sed -n 's/^uv==\([^ ]*\).*/\1/p' "$uv_requirements")
uv_home="$cache/uv-$uv_version"
uv="$uv_home/bin/uv"

ensure_uv() {
  if [ ! -x "$uv" ]; then
    log "installing uv $uv_version (first run only)"
    local scratch
    scratch=$(mktemp -d "$cache/uv-build.XXXXXX")
    "$python" -m venv "$scratch"
    "$scratch/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
      --require-hashes -r "$uv_requirements"
    # A venv cannot be moved (its scripts name their own path), so only uv's standalone binary
    # is kept, at its versioned place.
    mkdir -p "$uv_home/bin"
    mv "$scratch/bin/uv" "$uv.partial.$$"
    mv "$uv.partial.$$" "$uv"
    rm -rf "$scratch"
  fi
}
