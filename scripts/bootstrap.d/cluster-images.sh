# the Debian root filesystems (debootstrap) and the static pause binary that the local cluster's images are built from
# Packages go in on the host, through debootstrap --include, never through apt inside a container:
# an image build then needs no network. Each root filesystem is cached by suite and package list.
# Only for the local cluster (`bootstrap.sh cluster`): not part of `all`.
in_all=false
needs=(cluster-runtime kubernetes)
groups=()

cluster_suite=bookworm
declare -gA cluster_rootfs_packages=(
  [python]="python3"
  [postgres]="postgresql-15"
)

# What an image needs none of: package lists and archives, documentation, manuals, translations.
trim_rootfs() {
  local root=$1
  rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/var/log/* \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
    "$root"/usr/share/locale/* "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old
}

# The services' base: Python reads no iconv modules, and nothing in an image runs perl (only
# dpkg's maintainer scripts would, and no image installs packages).
trim_rootfs_python() {
  local root=$1
  rm -rf "$root"/usr/lib/x86_64-linux-gnu/gconv "$root"/usr/lib/x86_64-linux-gnu/perl-base \
    "$root"/usr/bin/perl "$root"/usr/bin/perl5.* "$root"/usr/share/perl5
}

# PostgreSQL runs with jit = off: its LLVM JIT and bitcode are 130 MB that never load.
trim_rootfs_postgres() {
  local root=$1
  rm -rf "$root"/usr/lib/x86_64-linux-gnu/libLLVM-* "$root"/usr/lib/postgresql/*/lib/bitcode \
    "$root"/usr/lib/postgresql/*/lib/llvmjit*
}

ensure_rootfs() { # ensure_rootfs NAME: $cache/rootfs-<suite>-<name>-<key>/rootfs.tar
  local name=$1 packages=${cluster_rootfs_packages[$1]} key dir
  # The key covers what the root filesystem is made of: suite, packages and the trimming.
  key=$({ printf '%s %s\n' "$cluster_suite" "$packages"; declare -f trim_rootfs "trim_rootfs_$name"; } \
    | sha256sum | cut -c1-12)
  dir="$cache/rootfs-$cluster_suite-$name-$key"
  if [ ! -s "$dir/rootfs.tar" ]; then
    log "debootstrap $cluster_suite with $packages (first run only; about a minute)"
    mkdir -p "$dir"
    local scratch
    scratch=$(mktemp -d "$dir/build.XXXXXX")
    timed "debootstrap $name" as_root debootstrap --variant=minbase --include="$packages" \
      "$cluster_suite" "$scratch/root" http://deb.debian.org/debian >"$dir/debootstrap.log"
    trim_rootfs "$scratch/root"
    if declare -F "trim_rootfs_$name" >/dev/null; then "trim_rootfs_$name" "$scratch/root"; fi
    as_root tar --numeric-owner -C "$scratch/root" -cf "$dir/rootfs.tar.partial" .
    mv "$dir/rootfs.tar.partial" "$dir/rootfs.tar"
    as_root rm -rf "$scratch"
  fi
  ln -sfn "$dir/rootfs.tar" "$venv/share/polysaga-cluster/rootfs-$name.tar"
}

ensure_pause() { # pause.c from the k8s.io/kubernetes module, static, for a FROM scratch image
  local k8s_dir="$repo/scripts/kube-apiserver" version module_dir
  version=$(k8s_module_version "$k8s_dir" k8s.io/kubernetes)
  local dest="$cache/pause-$version/pause"
  if [ ! -x "$dest" ]; then
    module_dir=$(cd "$k8s_dir" && go mod download -json "k8s.io/kubernetes@$version" \
      | "$python" -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
    mkdir -p "$(dirname "$dest")"
    cc -Os -static -Wall -Werror -DVERSION="$version" -o "$dest.partial.$$" \
      "$module_dir/build/pause/linux/pause.c"
    strip "$dest.partial.$$"
    mv "$dest.partial.$$" "$dest"
  fi
  ln -sfn "$dest" "$venv/share/polysaga-cluster/pause"
}

ensure_cluster_images() {
  mkdir -p "$venv/share/polysaga-cluster"
  ensure_pause
  local name
  for name in "${!cluster_rootfs_packages[@]}"; do ensure_rootfs "$name"; done
}
