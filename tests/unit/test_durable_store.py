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

from cxstream.streams.app import state_store
from cxstream.streams.changelog import BulkChangelog
from cxstream.streams.faust_compat.access import is_durable, table_store
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
    from cxstream.scoring import plain
    from cxstream.scoring.customer import StateRules
    from cxstream.scoring.value_bands import ValueIndex
    from cxstream.streams.faust_compat.access import stored_items
    from cxstream.streams.state import rebuild_value_index

    for store in ("rocksdb", "memory"):
        table, kafka = tables(tmp_path / store, store), Kafka()
        changelog = BulkChangelog(kafka.send)
        for n in range(40):
            partition = n % 4
            customer = plain.Customer(f"c{n:02d}")
            customer.profile = ("smb" if n % 2 else "enterprise", float(n), None, None, 0)
            changelog.set(table, partition, customer.customer_id.encode(),
                          plain.encode(partition, customer))
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
