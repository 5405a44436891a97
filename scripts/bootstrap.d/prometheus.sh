# Prometheus and promtool, from Debian's packages when the machine lacks them
# For `polysaga up --with-prometheus` and the alert-rule and dashboard-query tests; both are
# linked into .venv/bin.
ensure_prometheus() {
  if [ ! -x /usr/bin/prometheus ] || [ ! -x /usr/bin/promtool ]; then
    log "installing Prometheus from Debian's packages"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  fi
  local tool
  for tool in prometheus promtool; do
    ln -sfn "/usr/bin/$tool" "$venv/bin/$tool"
  done
}
