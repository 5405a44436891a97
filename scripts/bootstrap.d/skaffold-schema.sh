# skaffold's JSON schema, from its Go module: the tests of skaffold.yaml
# The schema of the apiVersion skaffold.yaml declares, taken from the skaffold Go module
# (docs-v2/content/en/schemas/), so the tests validate skaffold.yaml without a skaffold binary.
# v2.16.1 is the newest release the module proxy serves with a checksum.
skaffold_module_version=${POLYSAGA_SKAFFOLD_MODULE_VERSION:-v2.16.1}
skaffold_api_version=v4beta13

ensure_skaffold_schema() {
  local dir="$cache/skaffold-schema-$skaffold_module_version"
  local schema="$dir/$skaffold_api_version.json"
  if [ ! -s "$schema" ]; then
    require_go "skaffold's module"
    log "fetching skaffold $skaffold_module_version's schema $skaffold_api_version (first run only)"
    local scratch module_dir
    scratch=$(mktemp -d)
    module_dir=$(cd "$scratch" && go mod download -json "github.com/GoogleContainerTools/skaffold/v2@$skaffold_module_version" \
      | "$python" -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
    rm -rf "$scratch"
    mkdir -p "$dir"
    cp "$module_dir/docs-v2/content/en/schemas/$skaffold_api_version.json" "$schema.partial"
    mv "$schema.partial" "$schema"
  fi
  mkdir -p "$venv/share/skaffold"
  ln -sfn "$schema" "$venv/share/skaffold/$skaffold_api_version.json"
}
