"""Kafka plumbing: client options, topic creation and a local single-node broker."""
