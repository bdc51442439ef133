"""Corrections to faust-streaming 0.15.3 that the worker cannot do without
(docs/faust-fixes.md gives each as a bug report).

Each of the first four closes a way for an input message to be skipped for good around a
rebalance; the fifth and the eighth keep the consumer from crashing, the sixth saves work,
the seventh bounds RocksDB's memory, the ninth keeps a retried send from being stored
twice, the tenth keeps a slow request from holding a stop, the eleventh restores a
table's changelog in bulk, the twelfth saves a lock per message, the thirteenth four
tasks per message and the fourteenth a coroutine, a ``sleep(0)`` and an await per event.
Written by hand because no release of faust-streaming has them.

1. Acknowledged skips (``Consumer.ack``). When a stream takes a message from its queue
   while flow control is suspended (a rebalance, or the worker stopping) or while the
   message belongs to an older consumer generation, Faust skips the message *and
   acknowledges it* (``Stream._py_aiter``, "Skipping message ... with generation_id").
   The acknowledgement lets the next commit move past a message nobody processed; when
   the partition then moves to another worker, that worker starts after it and the
   message is lost. A two-worker test where one worker stops mid-stream lost about one
   event in six this way, in about a run in four.

   The fix: a message that no stream has started processing (Faust marks it ``tracked``
   the moment a stream takes it for real) is never recorded as acknowledged. Its offset
   stays a gap, so commits stop before it, and it is read again after the seek to the
   committed offsets that follows every rebalance (or by the partition's next owner).

2. No seek without a committed offset (``AIOKafkaConsumerThread.seek_to_committed``).
   Faust drops fetched records it cannot deliver (a generation change in the middle of a
   fetched batch, a paused partition) and relies on "seek back to the committed offset"
   to read them again. aiokafka's ``seek_to_committed`` does nothing for a partition
   whose committed offset is missing or 0, so on a partition the group has not committed
   yet (a new group, or acknowledgements that Faust discarded at a revocation) the
   records were never read again and their gap blocked every later commit. The same
   two-worker test lost the second half of two partitions this way, about a run in 15.

   The fix: with ``consumer_auto_offset_reset="earliest"``, input partitions (the topics
   streams acknowledge) with no committed offset, or 0, are sought to their first offset,
   which is what a missing offset means under that policy. Changelog partitions are left
   to the table recovery, which positions them itself.

3. A commit past an unprocessed first message (``Consumer._new_offset``). Faust keeps the
   committed offset as Kafka does, the next offset to read, but checks for a gap at the
   head of the acknowledged offsets as if it were the last offset read: with offsets
   101, 102... acknowledged after a commit at 100, it committed 103 and the message at
   100 was never processed. Fix 1 made this reachable (the message skipped at 100 is no
   longer acknowledged); the two-worker test lost exactly the first message after the
   committed offset of one partition, about a run in 15.

   The fix: the same computation with the head check corrected (``commit_offset``).

4. Records fetched before a seek, delivered after it (``Consumer.getmany``). After a
   rebalance Faust resumes the input partitions and then seeks them to the committed
   offsets, with the flow already running for the table recovery. A batch fetched before
   that seek is still delivered after it: its first record lies beyond the committed
   offset that the seek just made the read position, so Faust counts the offsets in
   between as processed without a delivery (its "gap", meant for compacted topics), and
   drops them as already read when the seek brings them back. Among them are records
   fetched before the rebalance and never delivered. In 12 runs of the same two-worker
   test, one lost 49 answers on three partitions this way.

   The fix: a batch that overlaps a seek delivers no more input records once the seek has
   begun, and when it ends the consumer seeks to the committed offsets again, so reading
   restarts from there, in order, with nothing counted as processed that was not. Records
   of other topics (changelogs) are delivered as before: the table recovery positions
   those itself.

5. A crash on an unknown fetch position (``AIOKafkaConsumerThread.verify_event_path``).
   Faust's livelock check reads each assigned partition's fetch position, which aiokafka
   0.14 asserts is known; it is not for a partition just assigned or marked to be reset
   (fix 2 marks partitions without a committed offset so). The check then raised an
   AssertionError that crashed the survivor's consumer right after a handover (once in
   25 runs of the two-worker test with fix 4, which seeks once more). The check now skips
   such a partition until aiokafka knows its position. (Seeking those partitions to
   broker-given start offsets instead, known at once, was tried: a table recovery then
   read nothing for 35 s in 1 of 7 runs, until the stall watchdog resumed it. The
   mechanism is not known; Faust's consumer thread runs at most two calls at a time, and
   that seek adds a broker request to them.)

6. Acknowledgements forgotten at a revocation (``Consumer.on_partitions_revoked``): Faust
   drops the acknowledged offsets of revoked partitions before its revocation handler
   commits, so everything processed since the last periodic commit was read and
   processed again after every rebalance (harmless, see below, but wasted). The fix
   commits what is acknowledged first.

7. RocksDB memory multiplied by partitions (``RocksDBOptions.as_options``). Faust opens
   one RocksDB database per table and partition, each with a block cache of its own
   (``block_cache_size``) and its own write buffers, so a worker's memory for RocksDB is
   tables x partitions x (cache + buffers) and fills as it folds: 6 tables on 12
   partitions with 32 MiB caches and two 8 MiB buffers is 2.3 GiB. The fix: with
   ``share_rocksdb_memory(capacity)``, every database of the process shares one block
   cache of ``capacity`` bytes (index and filter blocks in it too), and its memtables are
   charged to that cache by one write-buffer manager (at most half of it), so RocksDB
   holds about ``capacity`` whatever the partitions.

8. The consumer's connections closed from the wrong thread
   (``AIOKafkaConsumerThread.close``). When a rebalance reaches a worker that is already
   stopping, Faust closes the aiokafka client and group coordinator on the app's event
   loop, but both live on the consumer thread's loop. With uvloop, closing a socket of one
   loop from the thread of another crashed the process (SIGSEGV inside the consumer
   thread's loop, after a clean drain and commit; seen once in the test suite, on a
   worker stopped while the other worker left the group). The fix schedules
   the two closes on the consumer thread's own loop, or leaves them to the thread's own
   stop when that loop no longer runs.

9. A retried produce request written twice (``Producer._settings_extra``). Faust makes
   its producer idempotent only inside transactions (exactly-once processing). Under
   at-least-once, a produce request whose answer is lost when a partition leader dies is
   sent again to the new leader and stored twice: in a three-broker test where leaders
   were killed with SIGKILL, an alert's raising message stood twice on ``cx.alerts`` (in
   the eighth run of a loop of that test). The fix: the producer is always idempotent
   (``acks=all`` as before), so the broker drops the repeated batch by its producer id
   and sequence.

10. A request still running holds the stop for a minute (``faust.web.drivers.aiohttp.Web``).
    Faust declares ``Web.handler_shutdown_timeout`` but builds its aiohttp runner without
    it, so aiohttp's own 60 s applies: a stop waits up to a minute for any request still
    being handled once the listening socket is closed. The worker's stop must end within
    its drain timeout plus a grace (30 s by default), so one slow request ended a clean
    SIGTERM stop with exit 73 (seen in the month soak, an alert action arriving as the
    tables closed). The fix builds the runner with ``handler_shutdown_timeout``, set to
    ``HANDLER_SHUTDOWN_SECONDS``: aiohttp waits that long for requests still running, then
    cancels them and waits as long again (the test bounds a stop with a request that
    never ends by twice the timeout plus 5 s).

11. A changelog restored one record at a time (``Recovery._build_offsets``): see
    ``faust_compat.restore``. Before Faust's recovery reads the stores' offsets, the
    active changelog partitions of RocksDB tables are read in bulk by a consumer of
    their own and written a fetch at a time.

12. A lock taken for every message (``Conductor._compile_message_handler``). The
    conductor's handler enters ``_tp_to_callback_lock`` to look up each message's
    callback. The lock is only held while ``_update_indices`` rebuilds the map after a
    subscription change (the map is otherwise changed in place without it), so the
    handler now looks the callback up directly while the lock is free and waits for it,
    as before, while it is held.

13. Four tasks for every message (``Consumer.wait_first``, from ``_drain_messages``).
    Faust hands each fetched message to the conductor through mode's ``wait_first``,
    racing the delivery against ``suspend_flow`` (a rebalance) so that a delivery
    blocked on a full stream buffer can be interrupted. ``wait_first`` makes a task of
    the delivery and of three waits (the suspension, the service's stop and crash),
    waits for the first and cancels the rest: for every message, though a delivery
    almost never blocks. Now, while the flow runs, the delivery is first driven in
    place, in a context of its own as a task would be; only if it has to wait does it go
    on as a task raced against the same three waits, exactly as before.

14. A coroutine, a ``sleep(0)`` and an awaited acknowledgement for every event
    (``Stream.take_events``): see ``faust_compat.batches``. The events are taken from the
    channel's queue in the batch's own generator and acknowledged in one pass per batch.

At-least-once is kept in every case; the state's de-duplication by event id and offset
makes the second read harmless. Any offsets Faust still counts as processed without a
delivery are logged as a warning: on these topics (neither compacted nor transactional)
there should be none.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from aiohttp.web import AppRunner
from aiokafka import TopicPartition
from faust.stores.rocksdb import RocksDBOptions
from faust.streams import Stream
from faust.tables.recovery import Recovery
from faust.transport.conductor import Conductor
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Producer as AIOKafkaProducer
from faust.web.drivers.aiohttp import Web as AiohttpWeb
from intervaltree import IntervalTree
from mode.services import WaitResults

from cxstream.streams.kafka.faust_compat import batches, restore

log = logging.getLogger(__name__)

#: how long a stop waits for requests still being handled, twice (fix 10): well inside
#: the worker's stop grace, longer than a request of the API or the console should take
HANDLER_SHUTDOWN_SECONDS = 3.0

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

    original_verify_event_path = AIOKafkaConsumerThread.verify_event_path

    def verify_event_path(self: Any, now: float, tp: Any) -> None:
        if not has_fetch_position(self._ensure_consumer(), tp):
            return None  # aiokafka is still resolving where to read: nothing to verify
        return original_verify_event_path(self, now, tp)

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

    original_as_options = RocksDBOptions.as_options

    def as_options(self: Any) -> Any:
        options = original_as_options(self)
        if not _SHARED_ROCKSDB or not self.use_rocksdict:
            return options
        return with_shared_memory(options, self.bloom_filter_size)

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

    replacements: dict[tuple[type, str], Any] = {
        (Stream, "take_events"): take_events,
        (Consumer, "wait_first"): wait_first,
        (Conductor, "_compile_message_handler"): compile_message_handler,
        (Recovery, "_build_offsets"): build_offsets,
        (AiohttpWeb, "__init__"): web_init,
        (AiohttpWeb, "handler_shutdown_timeout"): HANDLER_SHUTDOWN_SECONDS,
        (AIOKafkaConsumerThread, "close"): close,
        (AIOKafkaProducer, "_settings_extra"): settings_extra,
        (RocksDBOptions, "as_options"): as_options,
        (Consumer, "getmany"): getmany,
        (Consumer, "perform_seek"): perform_seek,
        (Consumer, "on_partitions_revoked"): on_partitions_revoked,
        (Consumer, "_new_offset"): new_offset,
        (Consumer, "_add_gap"): add_gap,
        (Consumer, "ack"): ack,
        (AIOKafkaConsumerThread, "seek_to_committed"): seek_to_committed,
        (AIOKafkaConsumerThread, "verify_event_path"): verify_event_path,
    }
    for (owner, name), replacement in replacements.items():
        _ORIGINALS[owner, name] = owner.__dict__.get(name, _INHERITED)
        setattr(owner, name, replacement)


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
