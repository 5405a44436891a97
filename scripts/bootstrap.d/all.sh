# everything the default test run needs: every part in this folder but the local cluster's
# A part added to this folder is part of `all` (and so of scripts/test.sh) without an edit here,
# unless it says `in_all=false` (the local cluster's parts: `bootstrap.sh cluster` installs them
# for `pytest -m cluster`, and the default test run deselects those tests).
needs=()
for all_part in "$parts_dir"/*.sh; do
  [ "$(basename "$all_part" .sh)" = all ] && continue
  grep -qx 'in_all=false' "$all_part" || needs+=("$(basename "$all_part" .sh)")
done

ensure_all() { :; }
