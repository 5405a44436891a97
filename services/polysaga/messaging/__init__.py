"""NATS JetStream: connection, stream and consumer set-up from the declaration, the consumer loop."""
