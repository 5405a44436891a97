# everything, as the tests need it: every part in this folder (dev brings every dependency group)
# A part added to this folder is part of `all` (and so of scripts/test.sh) without an edit here.
needs=()
for all_part in "$parts_dir"/*.sh; do
  all_part=$(basename "$all_part" .sh)
  [ "$all_part" = all ] || needs+=("$all_part")
done

ensure_all() { :; }
