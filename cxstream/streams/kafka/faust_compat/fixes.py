"""Corrections to faust-streaming 0.15.3 that the worker cannot do without, each
written up as a bug report in docs/faust-fixes.md. Written by hand because no release of
faust-streaming has them; ``apply`` installs them all, once per process, and checks
nothing else (faust_compat.install checks the versions first).

Around a rebalance, none may skip an input message for good:
 1. ``Consumer.ack``: a message no stream took for real is never acknowledged.
 2. ``AIOKafkaConsumerThread.seek_to_committed``: a partition without a committed offset
    is sought to its start (``earliest``), so dropped records are read again.
 3. ``Consumer._new_offset``: no commit past an unprocessed first message.
 4. ``Consumer.getmany``: records fetched before a seek are not delivered after it.
Keeping the consumer alive and the work bounded:
 5. ``AIOKafkaConsumerThread.verify_event_path``: no crash on an unknown fetch position.
 6. ``Consumer.on_partitions_revoked``: commit before Faust forgets acknowledgements.
 7. ``RocksDBOptions.as_options``: one RocksDB memory budget for every table partition.
 8. ``AIOKafkaConsumerThread.close``: the consumer closed from its own thread's loop.
 9. ``Producer._settings_extra``: idempotent produce requests (acks=all).
10. ``faust.web.drivers.aiohttp.Web``: a slow request no longer holds the stop.
11. ``Recovery._build_offsets``: a changelog restored in bulk (restore.py).
12. ``Conductor._compile_message_handler``: no lock taken per message.
13. ``Consumer.wait_first``: a hand-over that need not wait runs in place.
14. ``Stream.take_events``: events taken in batches from the channel (batches.py).

At-least-once is kept in every case; the state's de-duplication by event id and offset
makes a second read harmless. Offsets Faust still counts as processed without a delivery
are logged as a warning: on these topics there should be none. The decisions each patch
makes are plain functions in fix_parts.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from aiohttp.web import AppRunner
from faust.stores.rocksdb import RocksDBOptions
from faust.streams import Stream
from faust.tables.recovery import Recovery
from faust.transport.conductor import Conductor
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Producer as AIOKafkaProducer
from faust.web.drivers.aiohttp import Web as AiohttpWeb
from mode.services import WaitResults

from cxstream.streams.kafka.faust_compat import batches, restore
from cxstream.streams.kafka.faust_compat.fix_parts import (
    _SHARED_ROCKSDB,
    SeekOverlap,
    commit_offset,
    first_step,
    go_on,
    has_fetch_position,
    is_flow_wait,
    seeks_of,
    share_rocksdb_memory,
    shared_rocksdb,
    unlocked_handler,
    unshare_rocksdb_memory,
    unsought_partitions,
    with_shared_memory,
)

__all__ = ["HANDLER_SHUTDOWN_SECONDS", "SeekOverlap", "applied", "apply", "commit_offset",
           "has_fetch_position", "is_applied", "share_rocksdb_memory", "shared_rocksdb",
           "undo", "unshare_rocksdb_memory", "unsought_partitions"]
log = logging.getLogger(__name__)

#: how long a stop waits for requests still being handled, twice (fix 10): well inside
#: the worker's stop grace, longer than a request of the API or the console should take
HANDLER_SHUTDOWN_SECONDS = 3.0
Patches = dict[tuple[type, str], Any]


#: (class, attribute) -> what Faust had there before ``apply``
_ORIGINALS: dict[tuple[type, str], Any] = {}
_INHERITED = object()  # the class had no attribute of its own there


def is_applied() -> bool:
    return bool(_ORIGINALS)


def undo() -> None:
    """Put Faust's own methods back (tests)."""
    for (owner, name), original in _ORIGINALS.items():
        if original is _INHERITED:
            delattr(owner, name)
        else:
            setattr(owner, name, original)
    _ORIGINALS.clear()


@contextlib.contextmanager
def applied() -> Iterator[None]:
    """The fixes for the duration of a block, then Faust as it was (tests)."""
    already = is_applied()
    apply()
    try:
        yield
    finally:
        if not already:
            undo()


def apply() -> None:
    """Patch Faust once per process."""
    if is_applied():
        return
    replacements = {**_no_skipped_messages(), **_consumer_alive(), **_bounded_work(),
                    **_hot_path()}
    for (owner, name), replacement in replacements.items():
        _ORIGINALS[owner, name] = owner.__dict__.get(name, _INHERITED)
        setattr(owner, name, replacement)


def _no_skipped_messages() -> Patches:
    """Fixes 1 to 4 and 6: no input message skipped for good around a rebalance."""
    original_ack = Consumer.ack

    def ack(self: Any, message: Any) -> bool:
        if not message.tracked:
            return False  # skipped without being processed: leave it to be read again
        return original_ack(self, message)

    original_seek = AIOKafkaConsumerThread.seek_to_committed

    async def seek_to_committed(self: Any) -> Mapping[Any, int]:
        committed = await original_seek(self)
        unset = unsought_partitions(committed, self.app.topics.acking_topics,
                                    self.app.conf.consumer_auto_offset_reset)
        if unset:
            await self.call_thread(self._ensure_consumer().seek_to_beginning, *unset)
        return committed

    original_add_gap = Consumer._add_gap

    async def add_gap(self: Any, tp: Any, offset_from: int, offset_to: int) -> None:
        # offsets Faust will count as done without reading them since its last seek:
        # right for compacted or transactional topics and after a rebalance (see above),
        # a loss anywhere else, so say it
        log.warning("Faust counts offsets %d..%d of %s[%d] as processed without a "
                    "delivery since its last seek", offset_from, offset_to - 1, tp.topic,
                    tp.partition)
        await original_add_gap(self, tp, offset_from, offset_to)

    def new_offset(self: Any, tp: Any) -> int | None:
        return commit_offset(self._acked[tp], self._acked_index[tp], self._gap[tp],
                             self._committed_offset[tp])

    original_revoked = Consumer.on_partitions_revoked

    async def on_partitions_revoked(self: Any, revoked: Any) -> None:
        try:
            await self.commit()  # before Faust forgets what was acknowledged
        except Exception as exc:  # the revocation must go on: the events are read again
            log.warning("could not commit before the revocation: %r", exc)
        await original_revoked(self, revoked)

    return {(Consumer, "ack"): ack,
            (AIOKafkaConsumerThread, "seek_to_committed"): seek_to_committed,
            (Consumer, "_add_gap"): add_gap, (Consumer, "_new_offset"): new_offset,
            (Consumer, "on_partitions_revoked"): on_partitions_revoked,
            **_no_stale_fetches()}


def _no_stale_fetches() -> Patches:
    """Fix 4: records fetched before a seek are not delivered after it."""
    original_perform_seek = Consumer.perform_seek

    async def perform_seek(self: Any) -> None:
        # counted at the start and at the end: odd while a seek runs, so a batch that
        # overlaps one in any way sees the count change or start odd
        self._cxstream_seeks = seeks_of(self) + 1
        try:
            await original_perform_seek(self)
        finally:
            self._cxstream_seeks = seeks_of(self) + 1

    original_getmany = Consumer.getmany

    async def getmany(self: Any, timeout: float) -> AsyncIterator[tuple[Any, Any]]:
        batch = SeekOverlap(seeks_of(self), self.app.topics.acking_topics)
        async for tp, message in original_getmany(self, timeout):
            if batch.deliver(tp, seeks_of(self)):
                yield tp, message
        if batch.needs_seek(seeks_of(self)) and self.flow_active:
            if batch.dropped:
                log.info("dropped %d input records of %s fetched before a seek to the "
                         "committed offsets; seeking again to read them in order",
                         sum(batch.dropped.values()), ", ".join(
                             f"{tp.topic}[{tp.partition}]" for tp in sorted(batch.dropped)))
            try:
                await self.perform_seek()
            except Exception as exc:  # a rebalance is under way: it seeks when it ends
                log.warning("could not seek to the committed offsets again: %r", exc)
    return {(Consumer, "perform_seek"): perform_seek, (Consumer, "getmany"): getmany}


def _consumer_alive() -> Patches:
    """Fixes 5, 8 and 9: the consumer and producer keep running and write once."""
    original_verify_event_path = AIOKafkaConsumerThread.verify_event_path

    def verify_event_path(self: Any, now: float, tp: Any) -> None:
        if not has_fetch_position(self._ensure_consumer(), tp):
            return None  # aiokafka is still resolving where to read: nothing to verify
        return original_verify_event_path(self, now, tp)

    def close(self: Any) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        consumer._closed = True
        loop = self.thread_loop
        if loop.is_closed() or not loop.is_running():
            return  # the thread's own stop closes the consumer (``on_thread_stop``)
        for closing in (consumer._client.close, consumer._coordinator.close):
            coroutine = closing()
            try:
                asyncio.run_coroutine_threadsafe(coroutine, loop)
            except RuntimeError:  # the loop closed in between: the thread's stop closes it
                coroutine.close()
                return

    original_settings_extra = AIOKafkaProducer._settings_extra

    def settings_extra(self: Any) -> Mapping[str, Any]:
        return {**original_settings_extra(self), "acks": "all", "enable_idempotence": True}

    return {(AIOKafkaConsumerThread, "verify_event_path"): verify_event_path,
            (AIOKafkaConsumerThread, "close"): close,
            (AIOKafkaProducer, "_settings_extra"): settings_extra}


def _bounded_work() -> Patches:
    """Fixes 7, 10 and 11: RocksDB's memory, the stop's wait, the restore's reads."""
    original_as_options = RocksDBOptions.as_options

    def as_options(self: Any) -> Any:
        options = original_as_options(self)
        if not _SHARED_ROCKSDB or not self.use_rocksdict:
            return options
        return with_shared_memory(options, self.bloom_filter_size)

    original_web_init = AiohttpWeb.__init__

    def web_init(self: Any, app: Any, **kwargs: Any) -> None:
        original_web_init(self, app, **kwargs)
        self._runner = AppRunner(self.web_app, access_log=None,
                                 shutdown_timeout=self.handler_shutdown_timeout)

    original_build_offsets = Recovery._build_offsets

    async def build_offsets(self: Any, consumer: Any, tps: Any, destination: Any,
                            title: str) -> None:
        if title == "active":
            await restore.restore_in_bulk(self, tps, destination)
        await original_build_offsets(self, consumer, tps, destination, title)

    return {(RocksDBOptions, "as_options"): as_options, (AiohttpWeb, "__init__"): web_init,
            (AiohttpWeb, "handler_shutdown_timeout"): HANDLER_SHUTDOWN_SECONDS,
            (Recovery, "_build_offsets"): build_offsets}


def _hot_path() -> Patches:
    """Fixes 12 to 14: Faust's path per message, without a lock, tasks or a coroutine."""
    original_compile_handler = Conductor._compile_message_handler

    def compile_message_handler(self: Any) -> Any:
        locked_path = original_compile_handler(self)
        if self.app.client_only:
            return locked_path
        return unlocked_handler(self._tp_to_callback, self._tp_to_callback_lock, locked_path)

    original_wait_first = Consumer.wait_first

    async def wait_first(self: Any, *coros: Any, timeout: Any = None) -> Any:
        if (timeout is not None or len(coros) != 2
                or not is_flow_wait(coros[1], self.suspend_flow)
                or self.suspend_flow.is_set() or self._stopped.is_set()
                or self._crashed.is_set()):
            return await original_wait_first(self, *coros, timeout=timeout)
        delivery, flow_wait = coros
        context = contextvars.copy_context()
        try:
            done, value = context.run(first_step, delivery)
        except BaseException:
            flow_wait.close()
            raise
        if done:
            flow_wait.close()
            return WaitResults([delivery], [value], False)
        return await original_wait_first(self, go_on(delivery, value, context), flow_wait)

    original_take_events = Stream.take_events

    def take_events(self: Any, max_: int, within: Any) -> Any:
        if not batches.batches_mean_the_same(self):
            return original_take_events(self, max_, within)
        generator = batches.take_events(self, max_, within)
        self._active_agens.add(generator)  # closed by the stream's stop, as Faust's are
        return generator

    return {(Conductor, "_compile_message_handler"): compile_message_handler,
            (Consumer, "wait_first"): wait_first, (Stream, "take_events"): take_events}
