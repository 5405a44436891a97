"""NATS JetStream: connection, streams and consumers from the declaration, the consumer loop."""
