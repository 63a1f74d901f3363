"""The Kafka event bus: topic names, the envelope codec, trace propagation, producers and consumers."""
