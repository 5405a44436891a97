# the test and lint tools: .venv with the dev group, which holds every other group too
groups=(dev)

ensure_dev() { :; }
