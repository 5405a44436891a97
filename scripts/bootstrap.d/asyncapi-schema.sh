# AsyncAPI 3.0.0's JSON schema, from the npm package @asyncapi/specs: the test of docs/asyncapi.yaml
# The package is fetched with npm (the registry's own client) and checked against the sha256
# below before anything is taken from it; only the schema file is kept, in the cache.
asyncapi_specs_version=6.11.1
asyncapi_specs_sha256=01af8744dc33c0c7eb2e908f6a955319ee58b70ecadc9387d1aeb16c0cd28928

ensure_asyncapi_schema() {
  local dir="$cache/asyncapi-specs-$asyncapi_specs_version"
  local schema="$dir/3.0.0.json"
  if [ ! -s "$schema" ]; then
    command -v npm >/dev/null || { log "npm is needed to fetch @asyncapi/specs"; exit 1; }
    log "fetching @asyncapi/specs $asyncapi_specs_version's schema 3.0.0 (first run only)"
    local scratch
    scratch=$(mktemp -d)
    (cd "$scratch" && npm pack --silent "@asyncapi/specs@$asyncapi_specs_version" >/dev/null)
    echo "$asyncapi_specs_sha256  $scratch/asyncapi-specs-$asyncapi_specs_version.tgz" | sha256sum -c --quiet -
    # The variant without $id refers to its parts by JSON pointer: it validates offline, alone.
    local member="package/schemas/3.0.0-without-\$id.json"
    tar -xzf "$scratch/asyncapi-specs-$asyncapi_specs_version.tgz" -C "$scratch" "$member"
    mkdir -p "$dir"
    mv "$scratch/$member" "$schema.partial"
    mv "$schema.partial" "$schema"
    rm -rf "$scratch"
  fi
  mkdir -p "$venv/share/asyncapi"
  ln -sfn "$schema" "$venv/share/asyncapi/3.0.0.json"
}
