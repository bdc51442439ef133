"""The worker's Faust monitor: the offsets it reads, none of the statistics per event.

Faust calls its monitor (``App(Monitor=...)``, a public setting; ``faust.Sensor``'s
documented hooks) four times per message: when it arrives, when a stream takes it, when
the stream is done, when it is acknowledged. The default ``faust.sensors.Monitor`` counts
per topic, stream and task, timestamps each step and keeps every event's run time for
its statistics, which cxstream never reads: its own metrics are Prometheus counters
(streams.metrics). What is read is kept as Faust keeps it: the read and end offsets per
partition (``cxstream_consumer_lag_messages``), and the time each partition last had an
event taken by a stream, which Faust's consumer checks to log a stream that stopped
taking events.
"""

from __future__ import annotations

from time import monotonic
from typing import Any

from faust.sensors import Monitor


class LeanMonitor(Monitor):
    """faust.sensors.Monitor keeping only the offsets (``tp_read_offsets``, and
    ``tp_end_offsets``/``tp_committed_offsets`` as Monitor keeps them) and
    ``stream_inbound_time``."""

    #: what it keeps is the last offset and time per partition, so the batched
    #: ``take_events`` (faust_compat.batches) may call it once per partition and batch
    calls_per_batch = True

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        self.tp_read_offsets[tp] = offset

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        self.stream_inbound_time[tp] = monotonic()

    def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any,
                            state: Any = None) -> None:
        return None

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_table_get(self, table: Any, key: Any) -> None:
        return None

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        return None

    def on_table_del(self, table: Any, key: Any) -> None:
        return None

    def on_send_initiated(self, producer: Any, topic: str, message: Any, keysize: int,
                          valsize: int) -> Any:
        return None

    def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
        return None
