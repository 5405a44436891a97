"""Events: who publishes and consumes what (the declaration) and how one travels (the envelope)."""
