"""The corrections to Faust in streams/kafka/faust_compat/fixes.py, without a broker."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP
from hypothesis import given
from hypothesis import strategies as st
from intervaltree import IntervalTree

from cxstream.streams.kafka.faust_compat import fixes as faust_fixes
from testkit.support import fake_consumer


@pytest.fixture(autouse=True)
def fixed_faust() -> Iterator[None]:
    """Each test with the fixes applied, and Faust as it was afterwards."""
    with faust_fixes.applied():
        yield


def test_undo_puts_fausts_own_methods_back() -> None:
    patched = Consumer.ack
    faust_fixes.undo()
    try:
        assert Consumer.ack is not patched and not faust_fixes.is_applied()
        assert Consumer.ack.__module__ == "faust.transport.consumer"
    finally:
        faust_fixes.apply()  # as the fixture left it, for its own undo



def test_partitions_without_a_committed_offset_are_sought_to_the_start() -> None:
    committed = {TP("in", 0): None, TP("in", 1): 0, TP("in", 2): 5,
                 TP("app-table-changelog", 0): None, TP("other", 0): 0}
    assert faust_fixes.unsought_partitions(committed, {"in", "other"}, "earliest") == [
        TP("in", 0), TP("in", 1), TP("other", 0)]
    assert faust_fixes.unsought_partitions(committed, {"in"}, "latest") == []


@given(st.dictionaries(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 3)),
                       st.none() | st.integers(0, 50)),
       st.sets(st.sampled_from(["a", "b", "c"])))
def test_exactly_the_acking_partitions_aiokafka_does_not_seek_are_chosen(
        offsets: dict[tuple[str, int], int | None], acking: set[str]) -> None:
    committed = {TP(topic, partition): offset for (topic, partition), offset in offsets.items()}
    chosen = faust_fixes.unsought_partitions(committed, acking, "earliest")
    for tp, offset in committed.items():
        # aiokafka seeks only when the committed offset is above 0
        assert (tp in chosen) == (tp.topic in acking and not (offset and offset > 0))


class FakeAiokafkaConsumer:
    def __init__(self, committed: dict[TP, int | None]) -> None:
        self.committed = committed
        self.sought: list[Any] = []

    async def seek_to_committed(self) -> dict[TP, int | None]:
        return self.committed

    async def seek_to_beginning(self, *partitions: TP) -> None:
        self.sought.extend(partitions)


def fake_thread(consumer: FakeAiokafkaConsumer, policy: str = "earliest") -> Any:
    async def call_thread(fun: Any, *args: Any) -> Any:
        result = fun(*args)
        return await result if inspect.isawaitable(result) else result

    return SimpleNamespace(
        app=SimpleNamespace(topics=SimpleNamespace(acking_topics={"in"}),
                            conf=SimpleNamespace(consumer_auto_offset_reset=policy)),
        call_thread=call_thread, _ensure_consumer=lambda: consumer)


def test_the_patched_seek_moves_unsought_input_partitions_to_their_start() -> None:
    committed = {TP("in", 0): None, TP("in", 1): 7, TP("in-changelog", 0): None}
    consumer = FakeAiokafkaConsumer(committed)
    returned = asyncio.run(AIOKafkaConsumerThread.seek_to_committed(fake_thread(consumer)))
    assert returned == committed  # Faust records the committed offsets as before
    assert consumer.sought == [TP("in", 0)]

    consumer = FakeAiokafkaConsumer(committed)
    asyncio.run(AIOKafkaConsumerThread.seek_to_committed(fake_thread(consumer, "latest")))
    assert consumer.sought == []


def test_a_message_no_stream_took_is_never_acknowledged() -> None:
    faust_fixes.apply()  # idempotent: patched once (the fixture applied them)
    untouched = SimpleNamespace()  # the original ack would need the consumer's bookkeeping
    assert Consumer.ack(untouched, SimpleNamespace(tracked=False)) is False  # type: ignore[arg-type]
    assert vars(untouched) == {}


def test_the_message_at_the_committed_offset_holds_the_commit_back() -> None:
    # Faust's own check let 101, 102 be committed past an unprocessed 100
    acked, index = [101, 102], {101, 102}
    assert faust_fixes.commit_offset(acked, index, IntervalTree(), 100) is None
    assert acked == [101, 102]  # kept for the next commit
    acked.append(100)
    index.add(100)
    assert faust_fixes.commit_offset(acked, index, IntervalTree(), 100) == 103
    assert acked == [] and index == set()


def test_gaps_count_as_processed_and_a_hole_stops_the_run() -> None:
    acked = [5, 6, 9, 12]
    gaps = IntervalTree.from_tuples([(7, 9)])  # 7 and 8 never existed (compaction)
    assert faust_fixes.commit_offset(acked, set(acked), gaps, 5) == 10
    assert acked == [12]  # 10 and 11 are still to process
    assert faust_fixes.commit_offset([3, 4], {3, 4}, IntervalTree(), None) == 5
    assert faust_fixes.commit_offset([], set(), IntervalTree(), 4) is None


@given(st.integers(0, 20), st.sets(st.integers(0, 40)),
       st.lists(st.tuples(st.integers(0, 40), st.integers(1, 4)), max_size=4))
def test_the_commit_is_the_end_of_the_run_of_processed_offsets_from_the_committed_one(
        committed: int, acked_offsets: set[int], gap_specs: list[tuple[int, int]]) -> None:
    acked_offsets = {offset for offset in acked_offsets if offset >= committed}  # as ack()
    gaps = [(start, start + length) for start, length in gap_specs if start >= committed]
    acked = sorted(acked_offsets)
    result = faust_fixes.commit_offset(acked, set(acked_offsets),
                                       IntervalTree.from_tuples(gaps), committed)
    if not acked_offsets:
        assert result is None
        return
    top = max(acked_offsets)  # gaps are taken in once the acknowledgements pass them
    done = acked_offsets | {o for start, end in gaps if start < top for o in range(start, end)}
    expected = committed
    while expected in done:
        expected += 1
    assert result == (None if expected == committed else expected)
    assert all(offset >= (result or committed) for offset in acked)  # the rest stays


def test_a_revocation_commits_what_is_acknowledged_before_faust_forgets_it() -> None:
    steps: list[str] = []

    async def commit() -> bool:
        steps.append("commit")
        return True

    fake = SimpleNamespace(commit=commit)  # Faust's own handler then fails on the fake
    try:
        asyncio.run(Consumer.on_partitions_revoked(fake, set()))  # type: ignore[arg-type]
    except AttributeError:
        steps.append("faust's revocation")
    assert steps == ["commit", "faust's revocation"]


IN, CHANGELOG = TP("in", 0), TP("in-changelog", 0)


def test_input_fetched_before_a_seek_is_not_delivered_once_the_seek_begins() -> None:
    batch = faust_fixes.SeekOverlap(2, {"in"})
    assert batch.deliver(IN, 2)  # no seek yet
    assert not batch.needs_seek(2)
    assert not batch.deliver(IN, 3)  # a seek began: the rest was read before it
    assert batch.deliver(CHANGELOG, 4)  # the table recovery positions changelogs itself
    assert not batch.deliver(IN, 4)
    assert batch.dropped == {IN: 2}
    assert batch.needs_seek(4)


def test_a_batch_fetched_while_a_seek_runs_delivers_no_input() -> None:
    batch = faust_fixes.SeekOverlap(5, {"in"})
    assert not batch.deliver(IN, 5)
    assert batch.needs_seek(5)
    only_changelogs = faust_fixes.SeekOverlap(5, {"in"})
    assert only_changelogs.deliver(CHANGELOG, 6)
    assert not only_changelogs.needs_seek(6)  # no input read: nothing to read again


@given(st.integers(0, 6),
       st.lists(st.tuples(st.booleans(), st.integers(0, 2)), max_size=30))
def test_input_is_delivered_exactly_while_no_seek_has_touched_the_batch(
        start: int, steps: list[tuple[bool, int]]) -> None:
    batch = faust_fixes.SeekOverlap(start, {"in"})
    seeks, delivered, dropped, saw_input = start, [], 0, False
    for n, (is_input, seeks_since) in enumerate(steps):
        seeks += seeks_since
        tp = IN if is_input else CHANGELOG
        saw_input = saw_input or is_input
        if batch.deliver(tp, seeks):
            delivered.append(n)
        else:
            dropped += 1
    touched = seeks != start or start % 2 == 1
    expected = [n for n, (is_input, _) in enumerate(steps)
                if not is_input or (start % 2 == 0
                                    and sum(s for _, s in steps[:n + 1]) == 0)]
    assert delivered == expected
    assert sum(batch.dropped.values()) == dropped
    assert batch.needs_seek(seeks) == (saw_input and touched)


def test_a_seek_during_a_batch_makes_the_consumer_read_again_from_the_committed_offsets() -> None:
    fake = fake_consumer({IN: [5, 6, 7], CHANGELOG: [1, 2]}, {IN: 5})

    async def drain() -> list[tuple[str, int]]:
        delivered = []
        async for tp, message in Consumer.getmany(fake, 1.0):  # type: ignore[arg-type]
            delivered.append((tp.topic, message.offset))
            if len(delivered) == 1:
                await fake.perform_seek()  # the recovery seeks while the batch is delivered
        return delivered

    assert asyncio.run(drain()) == [("in", 5), ("in-changelog", 1), ("in-changelog", 2)]
    assert fake.sought == 2  # the recovery's seek, then once more after the batch
    assert fake._read_offset == {IN: 5}  # the next record read is the committed one

    untouched = fake_consumer({IN: [5, 6]}, {IN: 5})
    assert [m.offset for _, m in asyncio.run(collect(Consumer.getmany(untouched, 1.0)))] == [5, 6]
    assert untouched.sought == 0


async def collect(iterator: Any) -> list[Any]:
    return [item async for item in iterator]


def fake_aiokafka(states: dict[TopicPartition, Any] | None) -> Any:
    assignment = None if states is None else SimpleNamespace(state_value=states.get)
    return SimpleNamespace(_fetcher=SimpleNamespace(_subscriptions=SimpleNamespace(
        subscription=SimpleNamespace(assignment=assignment))))


def test_the_livelock_check_skips_a_partition_whose_fetch_position_is_unknown() -> None:
    states = {TopicPartition("in", 0): SimpleNamespace(has_valid_position=False),
              TopicPartition("in", 1): SimpleNamespace(has_valid_position=True)}
    consumer = fake_aiokafka(states)
    assert not faust_fixes.has_fetch_position(consumer, IN)
    assert faust_fixes.has_fetch_position(consumer, TP("in", 1))
    assert faust_fixes.has_fetch_position(consumer, TP("in", 2))  # not assigned: Faust's call
    assert faust_fixes.has_fetch_position(fake_aiokafka(None), IN)

    thread = SimpleNamespace(_ensure_consumer=lambda: consumer)
    # Faust's own check raises AttributeError on this fake: skipped, it is not reached
    AIOKafkaConsumerThread.verify_event_path(thread, 0.0, IN)  # type: ignore[arg-type]
    try:
        AIOKafkaConsumerThread.verify_event_path(thread, 0.0, TP("in", 1))  # type: ignore[arg-type]
    except AttributeError:
        pass  # reached Faust's own check, which needs a real consumer
    else:
        raise AssertionError("a partition with a known position must be checked by Faust")


def test_every_rocksdb_database_shares_one_cache_that_holds_the_memtables(
        tmp_path: Path) -> None:
    """Fix 7: Faust gives each table partition a block cache and write buffers of its
    own; with the fix, every database shares one cache, charged with the memtables."""
    import os

    from faust.stores.rocksdb import RocksDBOptions

    faust_fixes.unshare_rocksdb_memory()
    faust_fixes.share_rocksdb_memory(64 * 2**20)
    shared = faust_fixes.shared_rocksdb()
    assert shared is not None
    cache, manager = shared
    try:
        with faust_fixes.applied():
            options = RocksDBOptions(write_buffer_size=4 * 2**20, block_cache_size=2**20)
            dbs = [options.open(tmp_path / f"table-{n}") for n in range(4)]
            after_first = 0
            for n, db in enumerate(dbs):
                for key in range(2_000):
                    db[b"k%d" % key] = os.urandom(200)
                if n == 0:
                    after_first = manager.get_usage()
            # the memtables of all four databases are counted by the one manager, and
            # charged to the one cache
            assert 0 < after_first < manager.get_usage() <= 32 * 2**20
            assert cache.get_usage() >= manager.get_usage()
            for db in dbs:
                db.close()
    finally:
        faust_fixes.unshare_rocksdb_memory()


def test_a_consumer_closed_while_stopping_is_closed_on_its_own_threads_loop() -> None:
    """Fix 8: Faust closed the aiokafka client and coordinator on the app's loop, though
    they live on the consumer thread's loop (with uvloop: a SIGSEGV in that thread)."""
    import threading

    thread_loop, app_loop = asyncio.new_event_loop(), asyncio.new_event_loop()
    runner = threading.Thread(target=thread_loop.run_forever, daemon=True)
    runner.start()
    closed_on: dict[str, Any] = {}
    done = threading.Event()

    def closer(name: str) -> Any:
        async def close() -> None:
            closed_on[name] = asyncio.get_running_loop()
            if len(closed_on) == 2:
                done.set()
        return close

    consumer = SimpleNamespace(_closed=False, _client=SimpleNamespace(close=closer("client")),
                               _coordinator=SimpleNamespace(close=closer("coordinator")))
    thread = SimpleNamespace(_consumer=consumer, thread_loop=thread_loop,
                             app=SimpleNamespace(loop=app_loop))
    try:
        AIOKafkaConsumerThread.close(thread)  # type: ignore[arg-type]
        assert done.wait(timeout=5), "nothing was closed on the consumer thread's loop"
        assert closed_on == {"client": thread_loop, "coordinator": thread_loop}
        assert consumer._closed
    finally:
        thread_loop.call_soon_threadsafe(thread_loop.stop)
        runner.join(timeout=5)
        thread_loop.close()
        app_loop.close()


def test_a_consumer_whose_thread_loop_has_ended_is_left_to_the_threads_own_stop() -> None:
    calls: list[str] = []
    consumer = SimpleNamespace(
        _closed=False, _client=SimpleNamespace(close=lambda: calls.append("client")),
        _coordinator=SimpleNamespace(close=lambda: calls.append("coordinator")))
    thread_loop = asyncio.new_event_loop()
    thread_loop.close()
    thread = SimpleNamespace(_consumer=consumer, thread_loop=thread_loop,
                             app=SimpleNamespace(loop=None))
    AIOKafkaConsumerThread.close(thread)  # type: ignore[arg-type]
    assert consumer._closed and calls == []
    AIOKafkaConsumerThread.close(SimpleNamespace(_consumer=None))  # type: ignore[arg-type]


def test_the_producer_is_idempotent_outside_transactions_too() -> None:
    """Fix 9: Faust's producer was idempotent only in a transaction, so a request retried
    after a leader died could be stored twice (an alert twice on cx.alerts)."""
    from faust.transport.drivers.aiokafka import Producer

    at_least_once = SimpleNamespace(app=SimpleNamespace(in_transaction=False))
    extra = Producer._settings_extra(at_least_once)  # type: ignore[arg-type]
    assert extra["enable_idempotence"] is True and extra["acks"] == "all"


def test_a_request_still_running_at_the_stop_holds_it_no_longer_than_the_handler_timeout(
        ) -> None:
    """Fix 10: Faust built its aiohttp runner without its own ``handler_shutdown_timeout``,
    so a stop waited aiohttp's 60 s for a request still being handled (the worker's stop
    guard then ended the process with exit 73)."""
    import faust
    import httpx

    from cxstream.cli.processes import free_port

    async def run() -> float:
        port = free_port()
        app = faust.App("fix10", broker="kafka://127.0.0.1:1", web_port=port,
                        web_bind="127.0.0.1")
        entered = asyncio.Event()

        async def hang(request: Any) -> Any:
            entered.set()
            await asyncio.sleep(3600)

        app.web.web_app.router.add_get("/hang", hang)
        await app.web.start_server()
        async with httpx.AsyncClient(timeout=120) as client:  # the client waits on
            request = asyncio.ensure_future(client.get(f"http://127.0.0.1:{port}/hang"))
            await asyncio.wait_for(entered.wait(), 10)
            began = asyncio.get_running_loop().time()
            # without the fix this waits aiohttp's 60 s: the guard turns that into a failure
            await asyncio.wait_for(app.web.stop_server(), 30)
            took = asyncio.get_running_loop().time() - began
            with contextlib.suppress(httpx.HTTPError):
                await request  # the client sees the connection closed
        return took

    took = asyncio.run(run())
    # aiohttp waits the timeout for the handler, then as long again once it is cancelled
    assert took < 2 * faust_fixes.HANDLER_SHUTDOWN_SECONDS + 5, took


class CountingLock(asyncio.Lock):
    acquired = 0

    async def acquire(self) -> bool:
        self.acquired += 1
        return await super().acquire()


def stand_in_conductor(callbacks: dict[Any, Any]) -> Any:
    """Just what the conductor's handler reads (faust.transport.conductor.Conductor)."""
    return SimpleNamespace(app=SimpleNamespace(client_only=False),
                           _tp_to_callback=callbacks, _tp_to_callback_lock=CountingLock())


async def test_a_message_goes_to_its_partitions_callback_without_the_lock() -> None:
    from faust.transport.conductor import Conductor

    seen: list[tuple[str, int]] = []

    def callback(name: str) -> Any:
        async def deliver(message: Any) -> str:
            seen.append((name, message.offset))
            return name
        return deliver

    conductor = stand_in_conductor({TP("in", 0): callback("zero"), TP("in", 1): callback("one")})
    handler = Conductor._compile_message_handler(conductor)
    assert await handler(SimpleNamespace(tp=TP("in", 1), offset=5)) == "one"
    assert await handler(SimpleNamespace(tp=TP("in", 0), offset=6)) == "zero"
    assert seen == [("one", 5), ("zero", 6)]
    assert conductor._tp_to_callback_lock.acquired == 0  # Faust's took it for each
    with pytest.raises(KeyError):  # a partition with no callback, as in Faust
        await handler(SimpleNamespace(tp=TP("in", 2), offset=7))


async def test_while_the_map_is_rebuilt_under_the_lock_a_message_waits_for_the_new_map() -> None:
    from faust.transport.conductor import Conductor

    seen: list[str] = []

    def callback(name: str) -> Any:
        async def deliver(message: Any) -> None:
            seen.append(name)
        return deliver

    callbacks = {TP("in", 0): callback("old")}
    conductor = stand_in_conductor(callbacks)
    handler = Conductor._compile_message_handler(conductor)
    lock = conductor._tp_to_callback_lock
    await lock.acquire()  # as _update_indices holds it while it rebuilds the map
    callbacks.clear()
    delivery = asyncio.ensure_future(handler(SimpleNamespace(tp=TP("in", 0), offset=1)))
    await asyncio.sleep(0.05)
    assert not delivery.done() and seen == []  # held while the map is half-built
    callbacks[TP("in", 0)] = callback("new")
    lock.release()
    await asyncio.wait_for(delivery, 5)
    assert seen == ["new"]


def flowing_consumer() -> Any:
    """What Faust's consumer gives wait_first: a mode service with a suspend_flow event."""
    from mode import Service

    class Flowing(Service):
        def __init__(self) -> None:
            super().__init__()
            self.suspend_flow = asyncio.Event()

    return Flowing()


async def test_a_delivery_that_need_not_wait_runs_in_place_without_a_task() -> None:
    consumer = flowing_consumer()
    tasks_before = len(asyncio.all_tasks())
    tasks_during: list[int] = []
    mark: Any = __import__("contextvars").ContextVar("mark", default="caller's")

    async def deliver() -> str:
        tasks_during.append(len(asyncio.all_tasks()))
        mark.set("the delivery's")  # in a context of its own, as in a task
        return "delivered"

    flow_wait = consumer.suspend_flow.wait()
    result = await Consumer.wait_first(consumer, deliver(), flow_wait)
    assert result.done and result.results == ["delivered"] and not result.stopped
    assert tasks_during == [tasks_before]  # Faust's made four tasks for it
    assert mark.get() == "caller's"
    assert flow_wait.cr_frame is None  # closed, never left "never awaited"


async def test_a_delivery_that_waits_goes_on_as_a_task_and_ends_with_its_value() -> None:
    consumer = flowing_consumer()
    room = asyncio.get_running_loop().create_future()
    steps: list[str] = []

    async def deliver() -> str:
        steps.append("before")
        value = await room  # a full stream buffer
        steps.append(f"after {value}")
        return "delivered"

    waiting = asyncio.ensure_future(Consumer.wait_first(consumer, deliver(),
                                                        consumer.suspend_flow.wait()))
    await asyncio.sleep(0.05)
    assert steps == ["before"] and not waiting.done()
    room.set_result("room")
    result = await asyncio.wait_for(waiting, 5)
    assert steps == ["before", "after room"] and result.results == ["delivered"]


async def test_a_rebalance_still_interrupts_a_delivery_that_waits() -> None:
    consumer = flowing_consumer()
    room = asyncio.get_running_loop().create_future()
    seen: list[str] = []

    async def deliver() -> None:
        try:
            await room
        except asyncio.CancelledError:
            seen.append("cancelled at its wait")
            raise

    waiting = asyncio.ensure_future(Consumer.wait_first(consumer, deliver(),
                                                        consumer.suspend_flow.wait()))
    await asyncio.sleep(0.05)
    consumer.suspend_flow.set()  # a rebalance begins
    result = await asyncio.wait_for(waiting, 5)
    await asyncio.sleep(0.05)  # the cancelled delivery task finishes
    assert [c.__qualname__ for c in result.done] == ["Event.wait"]  # the suspension won
    assert seen == ["cancelled at its wait"] and room.cancelled()


async def test_while_the_flow_is_suspended_faust_races_the_delivery_as_before() -> None:
    consumer = flowing_consumer()
    consumer.suspend_flow.set()
    ran: list[str] = []

    async def deliver() -> None:
        ran.append("ran")

    result = await Consumer.wait_first(consumer, deliver(), consumer.suspend_flow.wait())
    assert result.done  # mode's wait_first: whichever came first, in tasks


async def test_a_delivery_that_fails_at_once_raises_as_before() -> None:
    consumer = flowing_consumer()

    async def deliver() -> None:
        raise ValueError("bad message")

    with pytest.raises(ValueError, match="bad message"):
        await Consumer.wait_first(consumer, deliver(), consumer.suspend_flow.wait())
