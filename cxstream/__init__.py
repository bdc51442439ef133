"""cxstream: real-time customer-experience stream processing on Kafka and Faust."""

__version__ = "0.4.0"
