"""Table writes in bulk: values go to the table's memory at once, and their changelog
records to Kafka in record batches, one batch per changelog partition and flush.

Why by hand: a Faust table write (``table[key] = value``) sends its changelog record on
its own, through Faust's producer buffer, a future and callbacks per record. The naive
baseline of bench/throughput.py, which writes one record per event, spends about two
thirds of its time there. aiokafka's ``create_batch``/``send_batch`` builds one Kafka
record batch from many records, and Faust has no bulk API of its own.

What stays the same as a Faust write: the memory store holds the value, the changelog
topic and partition are the table's (partition = the input partition), keys and values
are serialized with the table's own codecs, so Faust's recovery reads the records as its
own. Records go through the app's producer, whose flush Faust awaits before every offset
commit: an input offset is committed only once the changelog holds what it caused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from cxstream.streams.kafka.faust_compat.access import (
    aiokafka_producer,
    is_durable,
    store_writes,
    table_store,
)

#: how the records of one (topic, partition) are sent: (topic, partition, records) ->
#: what to await for Kafka's acknowledgement of them all (or None)
Send = Callable[[str, int, list[tuple[bytes, bytes | None]]], Awaitable[Any]]


class Pending(dict[tuple[str, int], dict[bytes, bytes | None]]):
    """Changelog records by (topic, partition), and the writes of durable stores that wait
    for them: (table, partition) -> key -> value (None: delete)."""

    def __init__(self) -> None:
        super().__init__()
        self.staged: dict[tuple[int, int], tuple[Any, dict[Any, Any]]] = {}


class BulkChangelog:
    """Collects table writes of one batch of events; ``flush`` sends their records.

    A memory store holds a value at once. A durable store (RocksDB) gets it only once
    Kafka has its changelog record, so what survives a crash on disk is never ahead of
    the changelog: a worker killed before the acknowledgement finds its old state and
    reads the batch again as new; after it, the changelog tail restores what is missing.
    """

    def __init__(self, send: Send) -> None:
        self.send = send
        self.pending = Pending()
        self._tables: dict[int, tuple[bool, str]] = {}  # id -> (durable, changelog topic)

    def set(self, table: Any, partition: int, key: Any, value: Any) -> None:
        self.write_many(table, partition, {key: value})

    def delete(self, table: Any, partition: int, key: Any) -> None:
        self.write_many(table, partition, {key: None})  # a tombstone: compaction drops it

    def write_many(self, table: Any, partition: int, writes: dict[Any, Any]) -> None:
        """Set each key to its value (None: delete it) in one partition of ``table``."""
        durable, topic = self._table(table)
        keys, values = table.key_serializer, table.value_serializer
        encoded = [(_encode(keys, key), None if value is None else _encode(values, value))
                   for key, value in writes.items()]  # first: a value that fails stays out
        if durable:
            self.pending.staged.setdefault((id(table), partition), (table, {}))[1].update(
                writes)
        else:
            store = table_store(table)
            for key, value in writes.items():
                if value is None:
                    store.pop(key, None)
                else:
                    store[key] = value
        # the last write of a key wins, as it would once compacted
        self.pending.setdefault((topic, partition), {}).update(encoded)

    def _table(self, table: Any) -> tuple[bool, str]:
        known = self._tables.get(id(table))
        if known is None:
            known = self._tables[id(table)] = (is_durable(table),
                                                table.changelog_topic.get_topic_name())
        return known

    def take(self) -> Pending:
        """The records collected so far (and a fresh collection for the next batch)."""
        pending, self.pending = self.pending, Pending()
        return pending

    async def send_all(self, pending: Pending) -> None:
        """Send ``pending`` (from ``take``), one record batch per changelog partition at a
        time, and return once Kafka acknowledged every one (safe to call again); then
        durable stores get their writes and the changelog offsets they now hold."""
        acks = [await self.send(topic, partition, list(records.items()))
                for (topic, partition), records in pending.items()]
        offsets: dict[tuple[str, int], int] = {}
        for (topic, partition), ack in zip(pending, acks, strict=True):
            if ack is not None:
                last = await ack
                if isinstance(last, int):
                    offsets[topic, partition] = last
        for (_, partition), (table, writes) in pending.staged.items():
            _, topic = self._table(table)
            offset = offsets.get((topic, partition))
            store_writes(table, partition, writes, None if offset is None else (topic, offset))
        pending.staged.clear()  # applied: a second call sends again, nothing more

    async def flush(self) -> None:
        await self.send_all(self.take())


class RecordTooLargeError(ValueError):
    """A table value is larger than a producer batch can hold (retrying cannot help)."""


def _encode(serializer: str, value: Any) -> bytes:
    if serializer == "raw":
        if not isinstance(value, bytes):
            raise TypeError(f"a raw table value must be bytes, not {type(value).__name__}")
        return value
    from faust.serializers import codecs  # Faust's own codec, as its recovery decodes it

    encoded: bytes = codecs.dumps(serializer, value)
    return encoded


def kafka_sender(app: Any) -> Send:
    """Send records through the app's aiokafka producer as record batches."""

    async def send(topic: str, partition: int, records: list[tuple[bytes, bytes | None]]
                   ) -> Awaitable[Any]:
        producer = aiokafka_producer(app)
        acks = []  # send_batch queues a batch and returns the future of its acknowledgement
        counts = []
        batch = producer.create_batch()
        for key, value in records:
            if batch.append(key=key, value=value, timestamp=None) is None:  # batch full
                counts.append(batch.record_count())
                acks.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None) is None:
                    raise RecordTooLargeError(
                        f"a changelog record of {len(value or b'')} bytes does not fit in a "
                        f"producer batch of {topic}")
        if batch.record_count():
            counts.append(batch.record_count())
            acks.append(await producer.send_batch(batch, topic, partition=partition))
        return _last_offset(acks, counts)

    return send


async def _last_offset(acks: list[Any], counts: list[int]) -> int | None:
    """The offset of the last record of the batches, once Kafka acknowledged them all (a
    batch's metadata carries the offset of its first record)."""
    sent = await asyncio.gather(*acks)
    return max((meta.offset + count - 1 for meta, count in zip(sent, counts, strict=True)),
               default=None)

