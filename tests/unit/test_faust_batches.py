"""Fix 14: ``Stream.take_events`` in batches (streams/kafka/faust_compat/batches.py), on a Faust
app without a broker: events put on the channel's queue as the conductor puts them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import faust
import pytest
from faust.events import Event
from faust.types import TP
from faust.types.tuples import ConsumerMessage
from hypothesis import given, settings
from hypothesis import strategies as st

from cxstream.streams.kafka.faust_compat import batches
from cxstream.streams.kafka.faust_compat import fixes as faust_fixes
from cxstream.streams.kafka.lean_monitor import LeanMonitor

TOPIC = "in"


@pytest.fixture(autouse=True)
def fixed_faust() -> Iterator[None]:
    with faust_fixes.applied():
        yield


class Flow:
    """A Faust app whose flow runs, a stream on an iterator channel, and the input topic
    acknowledged as a subscribed topic is."""

    def __init__(self, monitor: type = LeanMonitor) -> None:
        self.app = faust.App("batches", broker="kafka://localhost:1", autodiscover=False,
                             Monitor=monitor)
        self.app.flow_control.resume()
        self.app.sensors.add(self.app.monitor)  # as the app's start does
        self.channel = aiter(self.app.channel())
        self.stream = self.app.stream(self.channel)
        self.app.topics.acking_topics.add(TOPIC)
        self.offsets: dict[int, int] = {}

    def put(self, partition: int = 0, generation: int | None = None) -> Event:
        offset = self.offsets.get(partition, 0)
        self.offsets[partition] = offset + 1
        message = ConsumerMessage(TOPIC, partition, offset, 0.0, 0, None, b"k", b"v", None, None,
                          generation_id=(self.app.consumer_generation_id
                                         if generation is None else generation))
        message.incref()  # the conductor counts the channels it delivers to
        event = Event(self.app, b"k", b"v", {}, message)
        self.channel.queue.put_nowait(event)
        return event

    def acked(self, partition: int = 0) -> list[int]:
        return list(self.app.consumer._acked[TP(TOPIC, partition)])


def offsets(batch: list[Any]) -> list[tuple[int, int]]:
    return [(event.message.partition, event.message.offset) for event in batch]


async def test_events_come_in_batches_of_at_most_max_and_the_rest_after_within() -> None:
    flow = Flow()
    for _ in range(7):
        flow.put()
    taken = flow.stream.take_events(3, within=0.05)
    seen = [offsets(await anext(taken)) for _ in range(3)]
    await taken.aclose()
    assert seen == [[(0, 0), (0, 1), (0, 2)], [(0, 3), (0, 4), (0, 5)], [(0, 6)]]
    assert taken.ag_code.co_name == "take_events" and taken.ag_frame is None
    assert batches.__name__ in taken.ag_code.co_filename.replace("/", ".")


async def test_a_batch_is_acknowledged_when_the_next_one_is_asked_for_not_before() -> None:
    flow = Flow()
    for _ in range(4):
        flow.put()
    taken = flow.stream.take_events(2, within=0.05)
    first = await anext(taken)
    assert flow.acked() == [] and {e.message for e in first} <= flow.app.consumer.unacked
    await anext(taken)
    assert flow.acked() == [0, 1]
    await taken.aclose()  # closing acknowledges the batch in hand too
    assert flow.acked() == [0, 1, 2, 3] and not flow.app.consumer.unacked


async def test_a_batch_waits_for_events_until_within_then_goes_with_what_it_has() -> None:
    flow = Flow()
    taken = flow.stream.take_events(10, within=0.2)
    waiting = asyncio.ensure_future(anext(taken))
    await asyncio.sleep(0.05)
    flow.put()
    await asyncio.sleep(0.02)
    assert not waiting.done()  # not full: it waits for more until the deadline
    flow.put()
    batch = await asyncio.wait_for(waiting, 2)
    assert offsets(batch) == [(0, 0), (0, 1)]
    await taken.aclose()


async def test_events_taken_in_a_rebalance_or_of_an_old_generation_are_skipped_unacked() -> None:
    flow = Flow()
    flow.put(generation=flow.app.consumer_generation_id + 1)  # of another generation
    flow.put()
    taken = flow.stream.take_events(5, within=0.05)
    assert offsets(await anext(taken)) == [(0, 1)]
    flow.app.flow_control.suspend()  # a rebalance begins
    flow.put()
    waiting = asyncio.ensure_future(anext(taken))
    await asyncio.sleep(0.15)
    assert not waiting.done()  # the event taken while suspended was not delivered
    waiting.cancel()
    # offset 0 and 2 were never processed: not acknowledged, so the commit stops before
    # them and they are read again after the seek that ends the rebalance
    assert flow.acked() == [1]
    assert [m.offset for m in flow.app.consumer.unacked] == []


async def test_an_error_thrown_into_the_channel_is_raised_by_the_batch() -> None:
    flow = Flow()
    await flow.channel.throw(ValueError("the channel broke"))
    with pytest.raises(ValueError, match="the channel broke"):
        await anext(flow.stream.take_events(5, within=0.05))


async def test_an_actors_cancel_ends_the_batches_after_the_events_in_hand() -> None:
    flow = Flow()
    for _ in range(2):
        flow.put()
    taken = flow.stream.take_events(5, within=30)
    waiting = asyncio.ensure_future(anext(taken))
    await asyncio.sleep(0.05)  # both taken, the batch waits for more
    flow.channel._throw(StopAsyncIteration())  # what faust.agents.actor's cancel throws
    flow.put()  # after the end: not taken
    assert offsets(await asyncio.wait_for(waiting, 2)) == [(0, 0), (0, 1)]
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(taken), 2)
    assert flow.acked() == [0, 1]


async def test_a_stream_with_a_processor_gets_fausts_own_take_events() -> None:
    flow = Flow()
    processed: list[int] = []

    def processor(value: Any) -> Any:
        processed.append(1)
        return value

    flow.stream.add_processor(processor)
    assert not batches.batches_mean_the_same(flow.stream)
    for _ in range(2):
        flow.put()
    taken = flow.stream.take_events(2, within=0.05)
    batch = await asyncio.wait_for(anext(taken), 5)
    assert offsets(batch) == [(0, 0), (0, 1)] and processed == [1, 1]
    assert "faust" in taken.ag_code.co_filename
    await taken.aclose()
    await flow.stream.stop()


class Counting(faust.Sensor):
    """A sensor of Faust's kind: it wants every event."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[str, int] = {"in": 0, "out": 0, "message_in": 0, "message_out": 0}

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> Any:
        self.calls["in"] += 1
        return {"offset": offset}

    def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any,
                            state: Any = None) -> None:
        assert state == {"offset": offset}  # its own state of that event
        self.calls["out"] += 1

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        self.calls["message_in"] += 1

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        self.calls["message_out"] += 1


class CountingPerBatch(Counting):
    calls_per_batch = True

    def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any,
                            state: Any = None) -> None:
        self.calls["out"] += 1


async def test_the_workers_monitor_is_called_once_per_partition_and_batch() -> None:
    flow = Flow()
    sensor = CountingPerBatch()
    flow.app.sensors.add(sensor)
    for partition in (0, 1, 0, 1, 0):
        flow.put(partition)
    taken = flow.stream.take_events(5, within=0.05)
    await anext(taken)
    monitor = flow.app.monitor
    assert monitor.tp_read_offsets == {TP(TOPIC, 0): 2, TP(TOPIC, 1): 1}
    assert set(monitor.stream_inbound_time) == {TP(TOPIC, 0), TP(TOPIC, 1)}
    assert sensor.calls == {"in": 2, "out": 0, "message_in": 2, "message_out": 0}
    await taken.aclose()
    assert sensor.calls == {"in": 2, "out": 2, "message_in": 2, "message_out": 2}
    assert flow.acked(0) == [0, 1, 2] and flow.acked(1) == [0, 1]


async def test_a_sensor_that_wants_every_event_gets_every_call() -> None:
    flow = Flow()
    sensor = Counting()
    flow.app.sensors.add(sensor)
    assert not batches.sensors_per_batch(flow.app.sensors)
    for partition in (0, 1, 0):
        flow.put(partition)
    taken = flow.stream.take_events(3, within=0.05)
    await anext(taken)
    assert sensor.calls == {"in": 3, "out": 0, "message_in": 3, "message_out": 0}
    await taken.aclose()
    assert sensor.calls == {"in": 3, "out": 3, "message_in": 3, "message_out": 3}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 2), max_size=40), st.integers(1, 7))
def test_every_event_is_yielded_once_in_order_and_acknowledged_after_its_batch(
        partitions: list[int], max_: int) -> None:
    async def run() -> None:
        flow = Flow()
        for partition in partitions:
            flow.put(partition)
        taken = flow.stream.take_events(max_, within=0.01)
        seen: list[tuple[int, int]] = []
        while len(seen) < len(partitions):
            batch = await asyncio.wait_for(anext(taken), 5)
            assert 1 <= len(batch) <= max_
            before = {p: flow.acked(p) for p in set(partitions)}
            assert all(offset < flow.offsets[p] for p, offset in offsets(batch))
            assert sum(map(len, before.values())) == len(seen)  # earlier batches only
            seen += offsets(batch)
        await taken.aclose()
        for partition in set(partitions):
            wanted = list(range(partitions.count(partition)))
            assert [o for p, o in seen if p == partition] == wanted
            assert flow.acked(partition) == wanted

    asyncio.run(run())
