"""Plain Kafka producing and reading for the CLI, the demo and tests (no Faust)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from cxstream.streams.kafka.clients import aiokafka_options
from cxstream.streams.kafka.topic_admin import existing_topics
from cxstream.streams.settings import Settings


@dataclass(frozen=True)
class Record:
    """One message as it sits in a topic."""

    topic: str
    key: bytes | None
    value: bytes | None
    partition: int = -1
    offset: int = -1
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp: float = 0.0  # record timestamp, epoch seconds


async def produce(settings: Settings, records: Iterable[Record]) -> int:
    """Send ``records`` (acks=all, idempotent producer) and wait until all are stored."""
    producer = AIOKafkaProducer(**aiokafka_options(settings), acks="all",
                                enable_idempotence=True, max_request_size=16_777_216)
    try:
        await producer.start()
        futures = [
            await producer.send(record.topic, key=record.key, value=record.value,
                                headers=list(record.headers) or None)
            for record in records
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return len(futures)


async def partitions_of(settings: Settings, topic: str) -> list[int]:
    """The partition numbers of ``topic`` (empty if it does not exist)."""
    admin = AIOKafkaAdminClient(**aiokafka_options(settings))
    try:
        await admin.start()
        described = await existing_topics(admin, [topic])
    finally:
        await admin.close()
    return sorted(p["partition"] for item in described.values() for p in item["partitions"])


async def read_topic(settings: Settings, topic: str, timeout_seconds: float = 30.0,
                     since: float | None = None) -> list[Record]:
    """Every message now in ``topic`` (stored at or after ``since``, epoch seconds, if
    given), from the beginning to the current end, in order per partition."""
    consumer = AIOKafkaConsumer(**aiokafka_options(settings), enable_auto_commit=False,
                                group_id=None, auto_offset_reset="earliest")
    try:
        await consumer.start()
        assigned = [TopicPartition(topic, p) for p in await partitions_of(settings, topic)]
        if not assigned:
            return []
        consumer.assign(assigned)
        end = await consumer.end_offsets(assigned)
        if since is None:
            for tp, first in (await consumer.beginning_offsets(assigned)).items():
                consumer.seek(tp, first)
        else:
            starts = await consumer.offsets_for_times(
                {tp: int(since * 1000) for tp in assigned})
            for tp in assigned:
                found = starts.get(tp)
                consumer.seek(tp, found.offset if found is not None else end[tp])
        records: list[Record] = []
        async with asyncio.timeout(timeout_seconds):
            while [tp for tp in assigned if await consumer.position(tp) < end[tp]]:
                batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
                for tp, messages in batches.items():
                    records.extend(
                        Record(tp.topic, m.key, m.value, tp.partition, m.offset,
                               tuple(m.headers or ()), m.timestamp / 1000)
                        for m in messages if m.offset < end[tp]
                    )
        return records
    finally:
        await consumer.stop()
