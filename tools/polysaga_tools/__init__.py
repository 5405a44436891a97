"""The ``polysaga`` command: run the stack locally, drive the demo, check invariants."""
