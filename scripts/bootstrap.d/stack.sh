# the local stack as `polysaga up` and `polysaga demo` run it: NATS, PostgreSQL, FerretDB, the CLI
# (`--with-jaeger` and `--with-prometheus` add the jaeger and prometheus parts: scripts/run.sh).
needs=(cli nats postgresql ferretdb)

ensure_stack() { :; }
