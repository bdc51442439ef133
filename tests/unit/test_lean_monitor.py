"""The worker's Faust monitor keeps what the worker and Faust read, per event nothing else."""

from __future__ import annotations

from types import SimpleNamespace

from faust.sensors import Monitor
from faust.types import TP

from cxstream.streams.health.collectors import WorkerCollector
from cxstream.streams.kafka.lean_monitor import LeanMonitor


def test_the_offsets_and_inbound_times_are_kept_and_the_lag_is_what_faust_s_monitor_gives(
) -> None:
    tp = TP("cx.feedback", 2)

    class Stream:  # what Faust's monitor reads of a stream (weakly referenced)
        task_owner: object = None

    stream = Stream()
    stream.task_owner = Stream()
    lags = []
    for monitor in (Monitor(), LeanMonitor()):
        message = SimpleNamespace(time_in=None, time_out=None, time_total=None)
        monitor.track_tp_end_offset(tp, 120)
        for offset in range(100):
            monitor.on_message_in(tp, offset, message)  # type: ignore[arg-type]
            state = monitor.on_stream_event_in(tp, offset, stream, None)  # type: ignore
            monitor.on_stream_event_out(tp, offset, None, None, state)  # type: ignore
            monitor.on_message_out(tp, offset, message)  # type: ignore[arg-type]
        assert monitor.tp_read_offsets[tp] == 99
        assert tp in monitor.stream_inbound_time  # Faust's consumer checks a stream by it
        app = SimpleNamespace(monitor=monitor)
        collector = WorkerCollector(app, {}, None, set, ())  # type: ignore[arg-type]
        lags += [sample.value for family in collector.collect()
                 if family.name == "cxstream_consumer_lag_messages"
                 for sample in family.samples]
    assert lags == [20, 20]
    lean = LeanMonitor()
    lean.on_message_in(tp, 5, SimpleNamespace())  # type: ignore[arg-type]
    assert lean.events_total == 0 and lean.messages_received_total == 0  # not counted
