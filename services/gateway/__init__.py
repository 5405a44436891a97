"""The gateway: API composition over the other services' HTTP APIs; it owns no data."""
