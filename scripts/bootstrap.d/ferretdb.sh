# FerretDB v1 (MongoDB wire protocol; data kept in PostgreSQL), built from its Go module
# Its module zip lacks the generated build/version/version.txt, which is written into the copy.
ferretdb_version=${POLYSAGA_FERRETDB_VERSION:-v1.24.2}

write_ferretdb_version() { echo "$ferretdb_version" >build/version/version.txt; }

ensure_ferretdb() {
  local dest="$cache/ferretdb-$ferretdb_version/ferretdb"
  if [ ! -x "$dest" ]; then
    log "building FerretDB $ferretdb_version (first run only)"
    build_go_module_copy "github.com/FerretDB/FerretDB@$ferretdb_version" ./cmd/ferretdb "$dest" \
      write_ferretdb_version
  fi
  ln -sfn "$dest" "$venv/bin/ferretdb"
}
