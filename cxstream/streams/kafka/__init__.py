"""Kafka and Faust plumbing: clients, confirmed sends, changelog writes, stores, timers,
and the one wall around Faust's private names (faust_compat)."""
