"""The order service: an event-sourced Order aggregate that starts and ends each saga."""
