"""Tables on RocksDB (Faust's rocksdb store, rocksdict driver): a value reaches the
database only once Kafka acknowledged its changelog record, with the changelog offset it
is at, so what survives a crash on disk is never ahead of the changelog."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import faust
import pytest
from faust.types import TP

from cxstream.streams.kafka.changelog import BulkChangelog
from cxstream.streams.kafka.faust_compat.access import is_durable, table_store
from cxstream.streams.kafka.stores import state_store
from cxstream.streams.settings import load_settings


def tables(tmp_path: Path, store: str) -> Any:
    settings = load_settings({}, state_store=store, data_dir=str(tmp_path))
    app = faust.App("durable-test", store="memory://", datadir=str(tmp_path),
                    broker="kafka://localhost:1")
    return app.Table("customer_to_state", partitions=4, key_type=bytes, value_type=bytes,
                     **state_store(settings, "customer_to_state"))


class Kafka:
    def __init__(self) -> None:
        self.sent: list[tuple[str, int, list[Any]]] = []
        self.fail = False

    async def send(self, topic: str, partition: int, records: list[Any]) -> Any:
        if self.fail:
            raise ConnectionError("broker gone")
        self.sent.append((topic, partition, records))
        last = sum(len(r) for t, p, r in self.sent if (t, p) == (topic, partition)) - 1

        async def acknowledged() -> int:
            return last
        return acknowledged()


def test_a_durable_table_gets_a_value_once_its_changelog_record_is_acknowledged(
        tmp_path: Path) -> None:
    table, kafka = tables(tmp_path, "rocksdb"), Kafka()
    assert is_durable(table)
    assert str(table_store(table).partition_path(2)).startswith(str(tmp_path))
    changelog = BulkChangelog(kafka.send)
    changelog.set(table, 2, b"c1", b"2|new")
    changelog.set(table, 2, b"c2", b"2|other")
    assert table_store(table).get(b"c1") is None  # not before Kafka has it
    kafka.fail = True
    with pytest.raises(ConnectionError):
        asyncio.run(changelog.flush())
    assert table_store(table).get(b"c1") is None  # a failed send leaves the old state
    kafka.fail = False
    changelog.set(table, 2, b"c1", b"2|newer")
    changelog.delete(table, 2, b"c2")
    asyncio.run(changelog.flush())
    assert table_store(table).get(b"c1") == b"2|newer"
    assert table_store(table).get(b"c2") is None
    topic = table.changelog_topic.get_topic_name()
    assert table_store(table).persisted_offset(TP(topic, 2)) == 1  # two records: 0 and 1


def test_a_batch_is_written_to_rocksdb_in_one_write_with_its_offset(tmp_path: Path) -> None:
    """The batch path gives what Faust's store gives key by key: the same bytes in the
    partition's database, read back through the store, deletes applied, with the offset;
    and one write of the database per partition and batch."""
    table, kafka = tables(tmp_path, "rocksdb"), Kafka()
    store = table_store(table)
    changelog = BulkChangelog(kafka.send)
    for n in range(50):
        changelog.set(table, 1, f"c{n}".encode(), f"1|v{n}".encode())
    asyncio.run(changelog.flush())
    writes: list[int] = []

    class Counting:  # the partition's database, its writes counted
        def __init__(self, db: Any) -> None:
            self.db = db

        def write(self, batch: Any) -> None:
            writes.append(batch.len())
            self.db.write(batch)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.db, name)

    store._dbs[1] = Counting(store._db_for_partition(1))
    changelog.set(table, 1, b"c1", b"1|changed")
    changelog.delete(table, 1, b"c2")
    changelog.set(table, 1, b"c50", b"1|v50")
    asyncio.run(changelog.flush())
    assert writes == [4]  # three keys and the offset, in one write
    assert store.get(b"c1") == b"1|changed" and store.get(b"c2") is None
    assert store.get(b"c50") == b"1|v50" and store.get(b"c3") == b"1|v3"
    assert sorted(key for key in store._dbs[1].keys() if key != store.offset_key) == sorted(
        f"c{n}".encode() for n in range(51) if n != 2)
    topic = table.changelog_topic.get_topic_name()
    assert store.persisted_offset(TP(topic, 1)) == 52  # 53 records: 0..52


def test_a_batch_of_json_values_reads_back_as_faust_wrote_them(tmp_path: Path) -> None:
    settings = load_settings({}, state_store="rocksdb", data_dir=str(tmp_path))
    app = faust.App("durable-json", store="memory://", datadir=str(tmp_path),
                    broker="kafka://localhost:1", key_serializer="raw",
                    value_serializer="raw")
    table = app.Table("group_partials", partitions=4, key_type=bytes,
                      **state_store(settings, "group_partials"))
    store = table_store(table)
    assert store.value_serializer == "json"
    changelog = BulkChangelog(Kafka().send)
    changelog.set(table, 0, b"0|segment|7d|1|smb", {"tally": {"n": 3}, "offset": 9})
    asyncio.run(changelog.flush())
    assert store.get(b"0|segment|7d|1|smb") == {"tally": {"n": 3}, "offset": 9}


def test_a_memory_table_holds_a_value_at_once(tmp_path: Path) -> None:
    table, kafka = tables(tmp_path, "memory"), Kafka()
    assert not is_durable(table)
    changelog = BulkChangelog(kafka.send)
    changelog.set(table, 0, b"c1", b"0|v")
    assert table_store(table).get(b"c1") == b"0|v"
    asyncio.run(changelog.flush())
    assert kafka.sent == [(table.changelog_topic.get_topic_name(), 0, [(b"c1", b"0|v")])]


def test_the_value_index_reads_each_owned_partition_up_to_the_history_keys(
        tmp_path: Path) -> None:
    from cxstream.scoring import plain_codec as codec
    from cxstream.scoring import plain_customer as plain
    from cxstream.scoring.customer import StateRules
    from cxstream.scoring.value_bands import ValueIndex
    from cxstream.streams.customers.value_snapshot import rebuild_value_index
    from cxstream.streams.kafka.faust_compat.access import stored_items

    for store in ("rocksdb", "memory"):
        table, kafka = tables(tmp_path / store, store), Kafka()
        changelog = BulkChangelog(kafka.send)
        for n in range(40):
            partition = n % 4
            customer = plain.Customer(f"c{n:02d}")
            customer.profile = ("smb" if n % 2 else "enterprise", float(n), None, None, 0)
            changelog.set(table, partition, customer.customer_id.encode(),
                          codec.encode(partition, customer))
            changelog.set(table, partition, plain.history_key(customer.customer_id, "i0"),
                          b"[]")
        asyncio.run(changelog.flush())
        read = list(stored_items(table, {1, 3}, below=plain.HISTORY_MARK))
        assert all(not plain.is_history_key(key) for _, key, _ in read)
        if store == "rocksdb":  # each partition's database, in key order, offsets left out
            assert [(p, k) for p, k, _ in read] == sorted(
                (n % 4, f"c{n:02d}".encode()) for n in range(40) if n % 4 in (1, 3))
        index = ValueIndex()
        assert rebuild_value_index(table, index, {1, 3}, StateRules()) == 20
        assert sum(sum(h.values()) for h in index.histograms({1, 3}).values()) == 20
        assert index.histograms({0, 2}) == {}


def _customers_written(table: Any, kafka: Kafka, numbers: range) -> None:
    from cxstream.scoring import plain_codec as codec
    from cxstream.scoring import plain_customer as plain

    changelog = BulkChangelog(kafka.send)
    for n in numbers:
        partition = n % 4
        customer = plain.Customer(f"c{n:02d}")
        customer.profile = ("smb" if n % 2 else "enterprise", float(n), None, None, 0)
        customer.last_scores = {"nps": (n % 11, 0, "f")} if n % 3 else {}
        changelog.set(table, partition, customer.customer_id.encode(),
                      codec.encode(partition, customer))
    asyncio.run(changelog.flush())


def _indexed_and_saved(tmp_path: Path, owned: set[int], saved: set[int]
                       ) -> tuple[Any, Any, Path]:
    """40 customers written to a RocksDB table, the value index rebuilt over ``owned`` and
    snapshots written for ``saved``: (table, the index, the snapshots' folder)."""
    from cxstream.scoring.customer import StateRules
    from cxstream.scoring.value_bands import ValueIndex
    from cxstream.streams.customers.value_snapshot import rebuild_value_index, write_snapshots

    table, folder = tables(tmp_path, "rocksdb"), tmp_path / "value-index"
    _customers_written(table, Kafka(), range(40))
    read = ValueIndex()
    assert rebuild_value_index(table, read, owned, StateRules()) == 10 * len(owned)
    assert write_snapshots(folder, table, read, saved) == 10 * len(owned & saved)
    return table, read, folder


def test_a_clean_stop_saves_the_value_index_and_a_start_takes_only_snapshots_that_match(
        tmp_path: Path) -> None:
    from cxstream.scoring import plain_codec as codec
    from cxstream.scoring import plain_customer as plain
    from cxstream.scoring.customer import StateRules
    from cxstream.scoring.value_bands import ValueIndex
    from cxstream.streams.customers.value_snapshot import rebuild_value_index
    from cxstream.streams.kafka.faust_compat.access import store_writes

    # partition 0 is asked for but not indexed: no snapshot of it
    table, read, folder = _indexed_and_saved(tmp_path, {1, 2, 3}, {1, 2, 3, 0})
    kafka = Kafka()
    assert sorted(p.name for p in folder.iterdir()) == ["1.json", "2.json", "3.json"]

    # after the stop: partition 1 moves on (its offset with it); a value reaches
    # partition 3's store without its offset moving, which only a snapshot taken
    # instead of the table can miss; partition 2's snapshot is spoilt
    _customers_written(table, kafka, range(41, 42))
    odd = plain.Customer("odd")
    odd.profile = ("smb", 5.0, None, None, 0)
    store_writes(table, 3, {b"odd": codec.encode(3, odd)})
    (folder / "2.json").write_bytes(b"{not json")

    started = ValueIndex()
    assert rebuild_value_index(table, started, {1, 2, 3}, StateRules(), folder) == 31
    assert list(folder.iterdir()) == []  # every snapshot is gone once looked at
    assert started.rows(3) == read.rows(3)  # from its snapshot: "odd" is not read
    moved_on = {row[0]: row for row in started.rows(1)}  # read again, with c41
    assert moved_on.pop("c41")[:3] == ("c41", "smb", 41.0)
    assert sorted(moved_on.values()) == sorted(read.rows(1))
    assert sorted(started.rows(2)) == sorted(read.rows(2))  # read again
    assert started.histograms({1, 2, 3}) != read.histograms({1, 2, 3})
    assert started.indexed == {1, 2, 3}
    again = ValueIndex()  # and a start with no snapshot reads everything
    assert rebuild_value_index(table, again, {1, 2, 3}, StateRules(), folder) == 32
    assert ("odd", "smb", 5.0, None) in again.rows(3)


def test_a_memory_store_saves_no_value_index(tmp_path: Path) -> None:
    from cxstream.scoring.customer import StateRules
    from cxstream.scoring.value_bands import ValueIndex
    from cxstream.streams.customers.value_snapshot import rebuild_value_index, write_snapshots

    table, kafka = tables(tmp_path, "memory"), Kafka()
    _customers_written(table, kafka, range(8))
    index = ValueIndex()
    assert rebuild_value_index(table, index, {0, 1, 2, 3}, StateRules()) == 8
    assert write_snapshots(tmp_path / "value-index", table, index, {0, 1, 2, 3}) == 0
    assert not (tmp_path / "value-index").exists()


def test_a_snapshot_whose_histograms_do_not_count_its_rows_is_not_taken(
        tmp_path: Path) -> None:
    import orjson

    from cxstream.streams.customers.value_snapshot import take_snapshot

    table, _, folder = _indexed_and_saved(tmp_path, {0, 1}, {0, 1})
    body = orjson.loads((folder / "1.json").read_bytes())
    assert body["histograms"] and len(body["rows"]) == 10
    rows, histograms = take_snapshot(folder, table, 0) or ([], {})
    assert len(rows) == 10 and sum(sum(c.values()) for c in histograms.values()) == 10
    segment = next(iter(body["histograms"]))
    bucket = next(iter(body["histograms"][segment]))
    body["histograms"][segment][bucket] += 1  # one customer too many
    (folder / "1.json").write_bytes(orjson.dumps(body))
    assert take_snapshot(folder, table, 1) is None
    assert list(folder.iterdir()) == []  # looked at: removed either way
    body["histograms"][segment][bucket] -= 1  # counts right, one row cut short
    body["rows"][0] = body["rows"][0][:3]
    (folder / "1.json").write_bytes(orjson.dumps(body))
    assert take_snapshot(folder, table, 1) is None
