"""Fix 11's writes: each fetch goes to the partition's database in one batch with the
offset it reaches, whatever way the changelog is cut into fetches."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import rocksdict
from hypothesis import given, settings
from hypothesis import strategies as st

from cxstream.streams.kafka.faust_compat.restore import Partition, write_fetched

OFFSET_KEY = b"__faust\0offset__"
_folders = itertools.count()


def database(folder: Path) -> Any:
    options = rocksdict.Options(raw_mode=True)
    options.create_if_missing(True)
    return rocksdict.Rdict(str(folder / f"db{next(_folders)}"), options=options)


def record(offset: int, key: bytes, value: bytes | None) -> Any:
    return SimpleNamespace(offset=offset, key=key, value=value)


def contents(db: Any) -> dict[bytes, bytes]:
    return {key: value for key, value in db.items()}


def test_a_fetch_is_written_with_the_offset_it_reaches_and_nothing_past_the_end(
        tmp_path: Path) -> None:
    db = database(tmp_path)
    partition = Partition("tp", db, OFFSET_KEY, last=-1, end=3)
    fetched = [record(0, b"a", b"1"), record(1, b"b", b"2"), record(2, b"a", None),
               record(3, b"c", b"3"), record(4, b"d", b"past the end")]
    assert write_fetched(partition, fetched) == 4
    assert contents(db) == {b"b": b"2", b"c": b"3", OFFSET_KEY: b"3"}
    assert partition.last == 3
    # read again after a seek: what the database holds is not written twice
    assert write_fetched(partition, fetched[2:4]) == 0
    assert contents(db) == {b"b": b"2", b"c": b"3", OFFSET_KEY: b"3"}
    db.close()


def test_an_empty_fetch_writes_nothing_not_even_an_offset(tmp_path: Path) -> None:
    db = database(tmp_path)
    partition = Partition("tp", db, OFFSET_KEY, last=-1, end=10)
    assert write_fetched(partition, []) == 0
    assert contents(db) == {} and partition.last == -1
    db.close()


changelogs = st.lists(st.tuples(st.sampled_from([b"k1", b"k2", b"k3", b"k4"]),
                                st.one_of(st.none(), st.binary(min_size=1, max_size=4))),
                      max_size=40)


@settings(max_examples=60, deadline=None)
@given(changelog=changelogs, cuts=st.lists(st.integers(0, 40), max_size=6),
       gaps=st.lists(st.integers(1, 3), min_size=40, max_size=40),
       end_at=st.integers(0, 40))
def test_any_cut_into_fetches_gives_the_database_of_one_pass_in_order(
        tmp_path_factory: Any, changelog: list[tuple[bytes, bytes | None]],
        cuts: list[int], gaps: list[int], end_at: int) -> None:
    """Offsets with gaps (a compacted changelog), fetches cut anywhere: the database holds
    the last value of each key up to the end, and the last offset written."""
    offsets = list(itertools.accumulate(gaps[:len(changelog)]))
    records = [record(offset, key, value)
               for offset, (key, value) in zip(offsets, changelog, strict=True)]
    end = offsets[min(end_at, len(offsets) - 1)] if offsets else 0
    expected: dict[bytes, bytes] = {}
    for item in records:
        if item.offset <= end:
            if item.value is None:
                expected.pop(item.key, None)
            else:
                expected[item.key] = item.value
    last = max((item.offset for item in records if item.offset <= end), default=None)
    if last is not None:
        expected[OFFSET_KEY] = str(last).encode()
    db = database(tmp_path_factory.mktemp("bulk"))
    partition = Partition("tp", db, OFFSET_KEY, last=-1, end=end)
    bounds = sorted({0, len(records), *(min(cut, len(records)) for cut in cuts)})
    for start, stop in itertools.pairwise(bounds):
        write_fetched(partition, records[start:stop])
    assert contents(db) == expected
    assert partition.last == (-1 if last is None else last)
    db.close()


class FakeReader:
    """Just what read_into uses of an aiokafka consumer: a log per partition, fetches of
    at most ``per_fetch`` records per partition, positions and seeks."""

    def __init__(self, logs: dict[Any, list[Any]], per_fetch: int,
                 after_fetch: Any = None) -> None:
        self.logs, self.per_fetch, self.after_fetch = logs, per_fetch, after_fetch
        self.positions: dict[Any, int] = {}
        self.fetches = 0
        self.largest = 0  # the most records one fetch returned
        self.asked: set[int] = set()  # the max_records asked for

    def assign(self, partitions: list[Any]) -> None:
        assert set(partitions) <= set(self.logs)

    async def seek_to_beginning(self, key: Any) -> None:
        self.positions[key] = self.logs[key][0].offset if self.logs[key] else 0

    def seek(self, key: Any, offset: int) -> None:
        self.positions[key] = offset

    async def position(self, key: Any) -> int:
        return self.positions[key]

    async def getmany(self, *keys: Any, timeout_ms: int, max_records: int
                      ) -> dict[Any, list[Any]]:
        self.fetches += 1
        self.asked.add(max_records)
        fetched = {}
        room = max_records  # as aiokafka: at most max_records across the partitions
        for key in keys:
            found = [r for r in self.logs[key] if r.offset >= self.positions[key]]
            found = found[:min(self.per_fetch, room)]
            room -= len(found)
            if found:
                fetched[key] = found
                self.positions[key] = found[-1].offset + 1
            elif self.logs[key]:
                self.positions[key] = max(self.positions[key],
                                          self.logs[key][-1].offset + 1)
        if self.after_fetch is not None:
            self.after_fetch(self)
        self.largest = max(self.largest, sum(len(found) for found in fetched.values()))
        return fetched


def two_partitions(tmp_path: Path) -> tuple[list[Partition], dict[Any, list[Any]]]:
    from aiokafka import TopicPartition
    from faust.types import TP

    partitions, logs = [], {}
    for number in (0, 1):
        tp = TP("t-changelog", number)
        logs[TopicPartition(tp.topic, number)] = [
            record(offset, f"k{offset % 7}".encode(), f"v{offset}".encode())
            for offset in range(100)]
        partitions.append(Partition(tp, database(tmp_path), OFFSET_KEY, last=-1, end=89))
    return partitions, logs


async def test_a_bulk_read_brings_every_partition_to_its_end_and_no_further(
        tmp_path: Path) -> None:
    from cxstream.streams.kafka.faust_compat.restore import read_into

    partitions, logs = two_partitions(tmp_path)
    partitions[1].last = 40  # this one holds up to 40 already
    offsets: dict[Any, int] = {partitions[1].tp: 40}
    reader = FakeReader(logs, per_fetch=25)
    written = await read_into(reader, partitions, offsets, lambda: False)
    assert written == 90 + 49
    assert offsets == {partitions[0].tp: 89, partitions[1].tp: 89}
    for partition in partitions:
        stored = contents(partition.db)
        assert stored[OFFSET_KEY] == b"89"
        assert stored[b"k5"] == b"v89" and stored[b"k6"] == b"v83"  # the last of each key
        partition.db.close()


async def test_a_rebalance_ends_the_bulk_read_with_each_database_and_its_offset_agreeing(
        tmp_path: Path) -> None:
    from cxstream.streams.kafka.faust_compat.restore import read_into

    partitions, logs = two_partitions(tmp_path)
    rebalance = []
    reader = FakeReader(logs, per_fetch=25,
                        after_fetch=lambda fake: rebalance.append(fake.fetches >= 2))
    offsets: dict[Any, int] = {}
    written = await read_into(reader, partitions, offsets,
                              lambda: bool(rebalance and rebalance[-1]))
    assert reader.fetches == 2 and written == 2 * 50
    for partition in partitions:
        stored = contents(partition.db)
        # what Faust reads next starts right after what the database holds
        assert offsets[partition.tp] == partition.last == int(stored[OFFSET_KEY]) == 49
        assert stored[b"k0"] == b"v49"
        partition.db.close()


async def test_a_reader_with_nothing_to_give_leaves_the_rest_to_faust(tmp_path: Path) -> None:
    from cxstream.streams.kafka.faust_compat.restore import read_into

    partitions, logs = two_partitions(tmp_path)
    for key in logs:
        logs[key] = []  # the high-water mark said 89, the reader sees nothing
    offsets: dict[Any, int] = {}
    assert await read_into(FakeReader(logs, per_fetch=25), partitions, offsets,
                           lambda: False, idle_seconds=0.2) == 0
    assert offsets == {}
    for partition in partitions:
        partition.db.close()


async def test_a_bulk_read_ends_within_half_of_fausts_time_for_it_and_says_so(
        tmp_path: Path, monkeypatch: Any) -> None:
    """Faust gives _build_offsets its broker_request_timeout and then stops its recovery
    service: a long bulk read must end before, leaving the rest to Faust."""
    import time

    from cxstream.streams.kafka.faust_compat import restore

    partitions, logs = two_partitions(tmp_path)
    for partition in partitions:
        partition.end = 10**9  # far more than the time allows
    endless = {key: [record(offset, b"k", b"v") for offset in range(5_000)]
               for key in logs}

    class SlowReader(FakeReader):
        async def start(self) -> None:
            return None

        async def stop(self) -> None:
            self.stopped = True

        async def getmany(self, *keys: Any, timeout_ms: int, max_records: int
                          ) -> dict[Any, list[Any]]:
            await asyncio.sleep(0.05)
            return await super().getmany(*keys, timeout_ms=timeout_ms,
                                         max_records=max_records)

    reader = SlowReader(endless, per_fetch=10)
    class App:  # weak-referenceable, as Faust's apps are
        conf = SimpleNamespace(broker_request_timeout=0.6)

    app = App()
    told: list[tuple[int, int, float]] = []
    restore.read_changelogs_with(app, lambda: reader, min_records=1,
                                 on_restored=lambda *figures: told.append(figures))
    recovery = SimpleNamespace(app=app, should_stop=False,
                               signal_recovery_start=asyncio.Event())
    monkeypatch.setattr(restore, "plan", lambda *_: partitions)
    offsets: dict[Any, int] = {}
    began = time.monotonic()
    written = await restore.restore_in_bulk(recovery, [], offsets)
    assert time.monotonic() - began < 0.6  # inside Faust's time for the step
    assert written > 0 and reader.stopped
    assert told == [(written, 2, told[0][2])]
    for partition in partitions:
        assert offsets[partition.tp] == partition.last == int(contents(partition.db)[OFFSET_KEY])
        partition.db.close()


async def test_a_fetch_holds_at_most_fetch_records_and_a_larger_changelog_is_read_whole(
        tmp_path: Path) -> None:
    """The bound of one fetch (FETCH_RECORDS across partitions, the consumer's byte
    limits in streams.topology beside it), reached: two partitions of 15,000 records each,
    offered 20,000 a fetch, are read whole, no fetch holding more."""
    from aiokafka import TopicPartition
    from faust.types import TP

    from cxstream.streams.kafka.faust_compat.restore import FETCH_RECORDS, read_into

    per_partition = FETCH_RECORDS * 3 // 4
    partitions, logs = [], {}
    for number in (0, 1):
        tp = TP("t-changelog", number)
        logs[TopicPartition(tp.topic, number)] = [
            record(offset, b"k%d" % (offset % 1000), b"v%d" % offset)
            for offset in range(per_partition)]
        partitions.append(Partition(tp, database(tmp_path), OFFSET_KEY, last=-1,
                                    end=per_partition - 1))
    reader = FakeReader(logs, per_fetch=FETCH_RECORDS)
    offsets: dict[Any, int] = {}
    assert await read_into(reader, partitions, offsets, lambda: False) == 2 * per_partition
    assert reader.asked == {FETCH_RECORDS}
    assert reader.largest == FETCH_RECORDS  # the bound was reached, never passed
    for partition in partitions:
        stored = contents(partition.db)
        assert stored[OFFSET_KEY] == str(per_partition - 1).encode()
        assert len(stored) == 1000 + 1
        partition.db.close()
