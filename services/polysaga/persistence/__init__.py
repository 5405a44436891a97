"""PostgreSQL building blocks every Postgres-backed service shares: engine, migrations,
transactional outbox and relay, idempotent inbox, pruning."""
