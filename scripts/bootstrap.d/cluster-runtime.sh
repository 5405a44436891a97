# containerd, runc, the CNI plugins, Docker, the image registry and debootstrap, from Debian: the local cluster's runtime
# Installed without starting any service (there is no systemd here, and `polysaga cluster up`
# starts dockerd, containerd and the registry itself, stopping them by PID on `down`).
# Only for the local cluster (`bootstrap.sh cluster`): not part of `all`.
in_all=false
needs=()
groups=()

cluster_runtime_packages=(containerd runc containernetworking-plugins docker.io docker-registry
  debootstrap iptables conntrack)

ensure_cluster_runtime() {
  local missing=() package
  for package in "${cluster_runtime_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' \
      || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} from Debian's packages"
    as_root apt-get update -qq
    # Installed packages must not start their daemons: a policy-rc.d that says no, for the
    # length of this install only (an existing one is kept as it is).
    local policy=/usr/sbin/policy-rc.d ours=
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
      as_root chmod 755 "$policy"
      ours=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
    [ -z "$ours" ] || as_root rm -f "$policy"
  fi
  local tool
  for tool in /usr/bin/containerd /usr/bin/containerd-shim-runc-v2 /usr/sbin/runc \
      /usr/sbin/dockerd /usr/bin/docker-registry; do
    ln -sfn "$tool" "$venv/bin/$(basename "$tool")"
  done
  # Debian's docker CLI (20.10), the one that matches its dockerd; the machine's own may differ.
  ln -sfn /usr/bin/docker "$venv/bin/docker"
}
