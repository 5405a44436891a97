"""The user service: registers users and keeps their profiles; publishes every change so
other services can keep their own replicas (e-mail addresses, names)."""
