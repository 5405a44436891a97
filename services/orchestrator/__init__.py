"""The saga orchestrator: runs the sagas of orders placed with "saga": "orchestration" by
sending commands to inventory and payment and reacting to their replies."""
