# the `polysaga` CLI alone: .venv with the tools group (commands that attach to a running stack)
groups=(tools)

ensure_cli() { :; }
