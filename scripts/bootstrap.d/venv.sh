# .venv: the Python environment, synced from uv.lock with the groups the chosen parts need
# Only the runtime (the project's own dependencies) unless a part asks for a group: stack asks for
# `tools`, all for `dev` (which holds every group). With every group the sync is exact (it also
# removes what the lock no longer has); with fewer it adds only, so a demo run keeps the test tools.
# `--locked` refuses a uv.lock that disagrees with pyproject.toml (run `.venv/bin/uv lock`).
needs=(uv)

ensure_venv() {
  local args=(sync --locked --no-default-groups --python "$python")
  local group
  for group in "${venv_groups[@]}"; do args+=(--group "$group"); done
  [[ " ${venv_groups[*]} " == *" dev "* ]] || args+=(--inexact)
  log "syncing .venv from uv.lock (groups: ${venv_groups[*]:-none, the runtime only})"
  # Never a Python download (none reaches this machine): the interpreter is $python.
  UV_PROJECT_ENVIRONMENT="$venv" UV_PYTHON_DOWNLOADS=never \
    "$uv" --directory "$repo" --quiet "${args[@]}"
  ln -sfn "$uv" "$venv/bin/uv"
}
