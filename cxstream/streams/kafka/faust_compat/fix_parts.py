"""The pure parts of the Faust fixes (fixes.py): what each patched method decides,
written as plain functions so that tests can check them without a broker, and the
RocksDB memory shared by every table partition (fix 7)."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Mapping
from typing import Any

from aiokafka import TopicPartition
from intervaltree import IntervalTree

log = logging.getLogger(__name__)

#: the block cache and write-buffer manager every RocksDB database of the process
#: shares (fix 7); empty: Faust's own, one cache per database
_SHARED_ROCKSDB: dict[str, Any] = {}


def share_rocksdb_memory(capacity: int) -> None:
    """One RocksDB memory budget for the process: every database opened from now on
    shares a block cache of ``capacity`` bytes, which also accounts for the memtables
    (at most half of it). Called before the worker opens its tables."""
    import rocksdict

    if _SHARED_ROCKSDB.get("capacity") == capacity:
        return  # already shared (several apps in one process: tests)
    cache = rocksdict.Cache(capacity)
    log.info("RocksDB: one cache of %d MiB for every table partition, write buffers "
             "included", capacity // 2**20)
    _SHARED_ROCKSDB.update(
        capacity=capacity, cache=cache,
        manager=rocksdict.WriteBufferManager.new_write_buffer_manager_with_cache(
            capacity // 2, False, cache))


def shared_rocksdb() -> tuple[Any, Any] | None:
    """The shared (cache, write-buffer manager), None when not shared."""
    if not _SHARED_ROCKSDB:
        return None
    return _SHARED_ROCKSDB["cache"], _SHARED_ROCKSDB["manager"]


def unshare_rocksdb_memory() -> None:
    """Databases opened from now on get Faust's own cache again (tests)."""
    _SHARED_ROCKSDB.clear()


def with_shared_memory(options: Any, bloom_filter_size: int) -> Any:
    """``options`` (rocksdict.Options) with the shared cache and write-buffer manager."""
    import rocksdict

    table = rocksdict.BlockBasedOptions()
    table.set_bloom_filter(bloom_filter_size, True)
    table.set_block_cache(_SHARED_ROCKSDB["cache"])
    table.set_cache_index_and_filter_blocks(True)
    table.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
    options.set_block_based_table_factory(table)
    options.set_write_buffer_manager(_SHARED_ROCKSDB["manager"])
    return options


def is_flow_wait(coro: Any, suspend_flow: Any) -> bool:
    """Whether ``coro`` is ``suspend_flow.wait()`` not yet started (fix 13: the only
    ``wait_first`` of Faust's consumer, in ``_drain_messages``, races a delivery with
    it)."""
    frame = getattr(coro, "cr_frame", None)
    return (getattr(coro, "__qualname__", None) == "Event.wait" and frame is not None
            and frame.f_locals.get("self") is suspend_flow)


def first_step(coro: Any) -> tuple[bool, Any]:
    """Run ``coro`` until it ends or first waits: (True, its value) or (False, what it
    waits for). Its exception, if it raises, is raised."""
    try:
        awaited = coro.send(None)
    except StopIteration as stop:
        return True, stop.value
    return False, awaited


async def go_on(coro: Any, awaited: Any, context: contextvars.Context) -> Any:
    """Go on with ``coro``, which waits for ``awaited``, as an asyncio task would: each
    step in ``context``; a cancellation cancels what it waits for and is thrown in."""
    while True:
        try:
            if awaited is None:  # a bare yield (asyncio.sleep(0))
                await asyncio.sleep(0)
            elif getattr(awaited, "_asyncio_future_blocking", None) is not None:
                awaited._asyncio_future_blocking = False  # taken, as a task does
                await asyncio.wait([awaited])  # done, whatever its outcome
            else:
                raise RuntimeError(f"a delivery yielded {awaited!r}, not a future")
        except asyncio.CancelledError:
            if awaited is not None and hasattr(awaited, "cancel"):
                awaited.cancel()
            try:
                awaited = context.run(coro.throw, asyncio.CancelledError())
            except StopIteration as stop:
                return stop.value
            continue
        try:
            awaited = context.run(coro.send, None)
        except StopIteration as stop:
            return stop.value


def unlocked_handler(callbacks: Mapping[Any, Any], lock: asyncio.Lock,
                     locked_path: Any) -> Any:
    """The conductor's message handler (fix 12): the callback of the message's partition,
    looked up under ``lock`` (through ``locked_path``) only while someone holds it."""

    async def on_message(message: Any) -> Any:
        if lock.locked():  # the map is being rebuilt: wait for it, as Faust does
            return await locked_path(message)
        return await callbacks[message.tp](message)

    return on_message


def has_fetch_position(consumer: Any, tp: Any) -> bool:
    """False while aiokafka does not know where it will read ``tp`` next (just assigned,
    or marked for a reset): Faust's livelock check asserts on that position."""
    assignment = consumer._fetcher._subscriptions.subscription
    assignment = assignment.assignment if assignment is not None else None
    if assignment is None:
        return True  # Faust's own check reports a missing assignment
    state = assignment.state_value(TopicPartition(tp.topic, tp.partition))
    return state is None or state.has_valid_position


def seeks_of(consumer: Any) -> int:
    """How many times the consumer began or ended a seek to the committed offsets."""
    return getattr(consumer, "_cxstream_seeks", 0)


class SeekOverlap:
    """One fetched batch, against the seeks to the committed offsets (fix 4).

    ``seeks``: the consumer's seek count when the batch was fetched (odd: a seek was
    running). Once a seek has begun or ended since, the batch's input records (``acking``
    topics) are no longer delivered: they were read from the position before the seek.
    """

    def __init__(self, seeks: int, acking: set[str]) -> None:
        self.seeks = seeks
        self.acking = acking
        self.dropped: dict[Any, int] = {}
        self.touched_input = False

    def overlapped(self, seeks_now: int) -> bool:
        return seeks_now != self.seeks or self.seeks % 2 == 1

    def deliver(self, tp: Any, seeks_now: int) -> bool:
        """Whether to deliver a record of ``tp`` now."""
        if tp.topic not in self.acking:
            return True
        self.touched_input = True
        if self.overlapped(seeks_now):
            self.dropped[tp] = self.dropped.get(tp, 0) + 1
            return False
        return True

    def needs_seek(self, seeks_now: int) -> bool:
        """Whether reading must start again from the committed offsets once the batch
        ends: input records were dropped, or delivered while a seek ran, which moves
        Faust's read position past the committed offset the seek had set."""
        return self.touched_input and self.overlapped(seeks_now)


def unsought_partitions(committed: Mapping[Any, int | None], acking_topics: set[str],
                        reset_policy: str) -> list[Any]:
    """Input partitions that aiokafka's seek_to_committed left where they were: no
    committed offset, or 0 (only under the "earliest" policy, where both mean the start)."""
    if reset_policy != "earliest":
        return []
    return sorted((tp for tp, offset in committed.items()
                   if not offset and tp.topic in acking_topics), key=str)


def commit_offset(acked: list[int], acked_index: set[int], gaps: IntervalTree,
                  committed: int | None) -> int | None:
    """The offset to commit for one partition (the next one to read), or None.

    ``acked``: offsets processed since the last commit (consumed from the list and the
    index when committed); ``gaps``: offset ranges Faust never saw (compaction,
    transaction markers), which count as processed; ``committed``: the next offset to read
    as of the last commit. Commits only a run of consecutive offsets that starts at
    ``committed``: an offset missing there is a message still to process.
    """
    if not acked:
        return None
    if gaps:
        top = max(acked)
        pending = sorted(gaps.overlap(0, top), key=lambda interval: interval.begin)
        if pending:
            filled = [offset for interval in pending
                      for offset in range(interval.begin, interval.end)]
            acked.extend(filled)
            gaps.chop(0, max(filled[-1], top + 1))
    acked[:] = sorted(set(acked))  # a gap may repeat an acknowledged offset
    if committed is not None and acked[0] > committed:
        return None  # the message at ``committed`` has not been processed yet
    end = 1
    while end < len(acked) and acked[end] == acked[end - 1] + 1:
        end += 1
    run = acked[:end]
    del acked[:end]
    acked_index.difference_update(run)
    return run[-1] + 1
