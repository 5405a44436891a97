# PostgreSQL, from Debian's packages when the machine lacks it
# Its binaries are linked into .venv/bin so `postgres`, `initdb` and `pg_ctl` are found without
# the versioned directory.
postgres_major=${POLYSAGA_POSTGRES_MAJOR:-15}

ensure_postgresql() {
  local bindir="/usr/lib/postgresql/$postgres_major/bin"
  if [ ! -x "$bindir/postgres" ]; then
    log "installing PostgreSQL $postgres_major from Debian's packages"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "postgresql-$postgres_major" >/dev/null
  fi
  local tool
  for tool in postgres initdb pg_ctl pg_isready psql createdb; do
    ln -sfn "$bindir/$tool" "$venv/bin/$tool"
  done
}
