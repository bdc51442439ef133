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

from cxstream.streams.faust_compat.access import aiokafka_producer, table_store

#: how the records of one (topic, partition) are sent: (topic, partition, records) ->
#: what to await for Kafka's acknowledgement of them all (or None)
Send = Callable[[str, int, list[tuple[bytes, bytes | None]]], Awaitable[Any]]


class BulkChangelog:
    """Collects table writes of one batch of events; ``flush`` sends their records."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.pending: dict[tuple[str, int], dict[bytes, bytes | None]] = {}

    def set(self, table: Any, partition: int, key: Any, value: Any) -> None:
        encoded = _encode(table.value_serializer, value)
        table_store(table)[key] = value
        self._add(table, partition, key, encoded)

    def delete(self, table: Any, partition: int, key: Any) -> None:
        table_store(table).pop(key, None)
        self._add(table, partition, key, None)  # a tombstone: compaction drops the key

    def _add(self, table: Any, partition: int, key: Any, value: bytes | None) -> None:
        topic = table.changelog_topic.get_topic_name()
        # the last write of a key wins, as it would once compacted
        self.pending.setdefault((topic, partition), {})[
            _encode(table.key_serializer, key)] = value

    def take(self) -> dict[tuple[str, int], dict[bytes, bytes | None]]:
        """The records collected so far (and a fresh collection for the next batch)."""
        pending, self.pending = self.pending, {}
        return pending

    async def send_all(self, pending: dict[tuple[str, int], dict[bytes, bytes | None]]
                       ) -> None:
        """Send ``pending`` (from ``take``), one record batch per changelog partition at a
        time, and return once Kafka acknowledged every one (safe to call again)."""
        acks = [await self.send(topic, partition, list(records.items()))
                for (topic, partition), records in pending.items()]
        for ack in acks:
            if ack is not None:
                await ack

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
        batch = producer.create_batch()
        for key, value in records:
            if batch.append(key=key, value=value, timestamp=None) is None:  # batch full
                acks.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None) is None:
                    raise RecordTooLargeError(
                        f"a changelog record of {len(value or b'')} bytes does not fit in a "
                        f"producer batch of {topic}")
        if batch.record_count():
            acks.append(await producer.send_batch(batch, topic, partition=partition))
        return asyncio.gather(*acks)

    return send
