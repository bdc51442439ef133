"""Simulated records to Kafka (paced or as fast as possible) and to or from JSONL files.

A JSONL line: ``{"at": 12.345, "topic": "feedback", "key": "c-00012", "value": "..."}``.
``topic`` is the input kind (customers, interactions, feedback), mapped to the configured
topic names when sent; a value that is not UTF-8 is stored as ``value_b64`` instead, so
malformed bytes are replayed exactly. ``malformed`` and ``incident`` say what a line is.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from cxstream.cli.simulator.generator import SimRecord
from cxstream.streams.kafka.clients import aiokafka_options
from cxstream.streams.kafka.plain_clients import partitions_of
from cxstream.streams.settings import Settings

KINDS = ("customers", "interactions", "feedback")
IN_FLIGHT = 2_000  # sends awaited together; bounds memory when sending millions


class ReplayFileError(ValueError):
    """A line of a replay file is not a simulated record; the message names the line."""


def to_json_line(record: SimRecord) -> str:
    line: dict[str, Any] = {"at": round(record.at, 6), "topic": record.kind,
                            "key": record.key.decode("utf-8", "replace")}
    try:
        line["value"] = record.value.decode("utf-8")
    except UnicodeDecodeError:
        line["value_b64"] = base64.b64encode(record.value).decode()
    if record.malformed:
        line["malformed"] = record.malformed
    if record.incident:
        line["incident"] = record.incident
    return json.dumps(line, ensure_ascii=False)


def write_jsonl(records: Iterable[SimRecord], out: TextIO,
                on_record: Callable[[SimRecord], None] | None = None) -> int:
    count = 0
    for record in records:
        out.write(to_json_line(record) + "\n")
        count += 1
        if on_record is not None:
            on_record(record)
    return count


def read_jsonl(path: Path) -> Iterator[SimRecord]:
    """Records of a file written by ``cxstream simulate --out``; raises ReplayFileError."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                kind = data["topic"]
                if kind not in KINDS:
                    raise ValueError(f"topic must be one of {', '.join(KINDS)}, not {kind!r}")
                value = (base64.b64decode(data["value_b64"]) if "value_b64" in data
                         else data["value"].encode("utf-8"))
                yield SimRecord(float(data["at"]), kind, data["key"].encode("utf-8"), value,
                                data.get("malformed"), data.get("incident"))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise ReplayFileError(f"{path}:{number}: not a simulated record "
                                      f"({type(exc).__name__}: {exc})") from exc


@dataclass
class SendStats:
    sent: int = 0
    per_kind: dict[str, int] = field(default_factory=dict)
    malformed: int = 0
    late_seconds: float = 0.0  # how far behind its schedule the last record went out


async def send_records(settings: Settings, records: Iterable[SimRecord],
                       speed: float | None = 1.0,
                       after_profiles: Callable[[], Awaitable[None]] | None = None,
                       on_sent: Callable[[SimRecord], None] | None = None) -> SendStats:
    """Send ``records`` in order; with ``speed`` a record goes out at ``at / speed`` seconds
    after the start, without it as fast as possible. ``after_profiles`` runs once, after
    the leading profile records are stored and before anything else is sent (answers
    count in the segment their customer has when they are processed)."""
    topics = {"customers": settings.topic_customers,
              "interactions": settings.topic_interactions,
              "feedback": settings.topic_feedback}
    producer = AIOKafkaProducer(**aiokafka_options(settings), acks="all",
                                enable_idempotence=True, linger_ms=5,
                                max_request_size=16_777_216)
    stats = SendStats()
    pending: list[asyncio.Future[Any]] = []
    began = time.monotonic()
    waiting_for_profiles = after_profiles is not None
    try:
        await producer.start()
        for record in records:
            if waiting_for_profiles and record.kind != "customers":
                await asyncio.gather(*pending)
                pending.clear()
                assert after_profiles is not None
                await after_profiles()
                waiting_for_profiles = False
                began = time.monotonic() - (record.at / speed if speed else 0.0)
            if speed:
                delay = began + record.at / speed - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    stats.late_seconds = -delay
            pending.append(await producer.send(topics[record.kind], key=record.key,
                                               value=record.value))
            stats.sent += 1
            stats.per_kind[record.kind] = stats.per_kind.get(record.kind, 0) + 1
            stats.malformed += record.malformed is not None
            if on_sent is not None:
                on_sent(record)
            if len(pending) >= IN_FLIGHT:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return stats


async def wait_for_group(settings: Settings, topic: str, timeout: float) -> bool:
    """Wait until the workers' consumer group has committed ``topic`` up to its end.

    Returns False on timeout (for example when no worker is running)."""
    admin = AIOKafkaAdminClient(**aiokafka_options(settings))
    try:
        await admin.start()
        partitions = [TopicPartition(topic, p) for p in await partitions_of(settings, topic)]
        probe = AIOKafkaConsumer(**aiokafka_options(settings), group_id=None)
        try:
            await probe.start()
            ends = await probe.end_offsets(partitions)
        finally:
            await probe.stop()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            committed = await admin.list_consumer_group_offsets(settings.app_id,
                                                                partitions=partitions)
            if all(committed.get(tp) is not None and committed[tp].offset >= ends[tp]
                   for tp in partitions):
                return True
            await asyncio.sleep(0.5)
        return False
    finally:
        await admin.close()
