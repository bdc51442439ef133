"""``Stream.take_events`` in batches (fix 14, docs/faust-fixes.md).

Faust's ``take_events`` adds a processor to the stream and drains it in a background task
through the stream's own iterator, so every event costs a ``sleep(0)``, the processor as
a coroutine, a ``wait_first`` when the buffer is full, the sensors' calls and one awaited
``ack``. This one takes the events from the channel's queue in the generator itself:
``get_nowait`` while events are waiting, one await on the queue when it is empty (with
the batch's deadline), and after the batch is used, one synchronous pass that
acknowledges it.

What Faust's iterator does per event is kept, in the same order: an event taken while
the flow is suspended (a rebalance) or from an older consumer generation is skipped and
left to be read again (fix 1 keeps it unacknowledged); an input message is tracked as
unacknowledged when taken, so a rebalance waits for it and a commit stops before it
until the batch is acknowledged; an error thrown into the channel is raised, except
``StopAsyncIteration`` (an actor's ``cancel``), which ends the batches after the events
in hand are yielded; the channel's pressure callbacks run as events leave the queue
(``get_nowait``).

Written by hand because Faust offers no batched read of a channel. Used only where it
means the same as Faust's: a stream on a channel with a queue, no processors, no join,
not combined and not already drained in the background; anything else gets Faust's.

Sensors: a sensor whose class sets ``calls_per_batch = True`` (the worker's
``LeanMonitor``) is called once per partition and batch, with the batch's last event of
that partition. When every sensor of the app is such a sensor, the per-event calls are
skipped; otherwise every sensor gets Faust's calls per event.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from faust.types import ChannelT, EventT
from mode.utils.times import want_seconds


def batches_mean_the_same(stream: Any) -> bool:
    """Whether this stream's ``take_events`` may be the batched one."""
    channel = stream.channel
    return (isinstance(channel, ChannelT) and not stream._processors
            and stream.join_strategy is None and not stream.combined and not stream._passive)


def sensors_per_batch(sensors: Any) -> bool:
    """Whether every sensor of the app takes its calls per batch (``calls_per_batch``)."""
    return all(getattr(sensor, "calls_per_batch", False) for sensor in sensors)


class _Taking:
    """What the batched ``take_events`` reads at every event, looked up once."""

    def __init__(self, stream: Any, channel: Any) -> None:
        app = stream.app
        self.stream = stream
        self.app = app
        self.queue = channel.queue
        self.get_nowait = channel.queue.get_nowait  # raises an error thrown into the channel
        self.flow_control = app.flow_control
        self.acking_topics = app.topics.acking_topics
        self.add_unacked = app.consumer.unacked.add
        self.per_batch = sensors_per_batch(app.sensors)
        self.on_message_in = stream._on_message_in
        self.on_event_in = stream._on_stream_event_in
        self.on_event_out = stream._on_stream_event_out
        self.on_message_out = stream._on_message_out
        self.ended = False  # the actor's ``cancel`` threw StopAsyncIteration into the channel

    async def fill(self, events: list[Any], states: list[Any], max_: int,
                   deadline: float | None, loop: asyncio.AbstractEventLoop) -> None:
        """Events into ``events`` until there are ``max_``, the deadline passes or the
        stream ends. Events of a rebalance or an older generation are skipped without
        being acknowledged (fix 1): they are read again after the seek."""
        queue, get_nowait, app = self.queue, self.get_nowait, self.app
        per_batch, stream = self.per_batch, self.stream
        while len(events) < max_:
            try:
                if queue.empty():
                    if deadline is not None and loop.time() >= deadline:
                        return
                    try:
                        async with asyncio.timeout_at(deadline):
                            item = await queue.get()  # cancelled: the item stays queued
                    except TimeoutError:
                        return
                else:
                    item = get_nowait()
            except StopAsyncIteration:  # the end of the stream, as Faust's iterator ends
                self.ended = True
                return
            if not isinstance(item, EventT):
                raise TypeError(f"a batched stream took {item!r}, not an event")
            message = item.message
            if (not self.flow_control.is_active()
                    or message.generation_id != app.consumer_generation_id):
                item.ack()  # untracked: not recorded (fix 1), read again after the seek
                continue
            if message.topic in self.acking_topics and not message.tracked:
                message.tracked = True
                self.add_unacked(message)
                if not per_batch:
                    self.on_message_in(message.tp, message.offset, message)
            events.append(item)
            if not per_batch:
                states.append(self.on_event_in(message.tp, message.offset, stream, item))

    def batch_in(self, batch: list[Any]) -> None:
        """The sensors' calls for a batch taken, once per partition."""
        last = {event.message.tp: event for event in batch}
        for tp, event in last.items():
            self.on_message_in(tp, event.message.offset, event.message)
            self.on_event_in(tp, event.message.offset, self.stream, event)


async def take_events(stream: Any, max_: int, within: Any) -> AsyncIterator[list[Any]]:
    """Lists of up to ``max_`` events, each yielded when full or ``within`` seconds after
    the previous one ended (an empty batch is not yielded); acknowledged when the
    consumer asks for the next one or closes the generator."""
    stream._finalized = True
    started_by_us = await stream.maybe_start()
    # an agent's stream reads an iterator already; any other channel is subscribed to
    # here, as Faust's take_events does
    channel = aiter(stream.channel)
    taking = _Taking(stream, channel)
    timeout = want_seconds(within) if within else None
    loop = asyncio.get_running_loop()
    events: list[Any] = []
    states: list[Any] = []
    # events taken while an older batch's are not yet acknowledged cannot happen: the
    # batch is acknowledged before the next one is taken
    try:
        while not stream.should_stop and not taking.ended:
            deadline = None if timeout is None else loop.time() + timeout
            await taking.fill(events, states, max_, deadline, loop)
            if not events:
                continue
            batch, events = events, []
            if taking.per_batch:
                taking.batch_in(batch)
            stream.events_total += len(batch)
            try:
                yield batch
            finally:
                acknowledge(batch, states, stream, taking.per_batch, taking.on_event_out,
                            taking.on_message_out)
                states = []
    finally:
        stream._channel_stop_iteration(channel)
        if started_by_us:
            await stream.stop()
            stream.service_reset()


def acknowledge(batch: list[Any], states: list[Any], stream: Any, per_batch: bool,
                on_event_out: Any, on_message_out: Any) -> None:
    """Acknowledge a used batch as Faust's ``Stream.ack`` does each event, its sensors
    called per event or, per batch, once per partition."""
    if per_batch:
        last: dict[Any, tuple[Any, bool]] = {}
        for event in batch:
            last[event.message.tp] = (event, event.ack())
        for tp, (event, last_to_ack) in last.items():
            on_event_out(tp, event.message.offset, stream, event, None)
            if last_to_ack:
                on_message_out(tp, event.message.offset, event.message)
        return
    for event, state in zip(batch, states, strict=True):
        message = event.message
        last_to_ack = event.ack()
        on_event_out(message.tp, message.offset, stream, event, state)
        if last_to_ack:
            on_message_out(message.tp, message.offset, message)
