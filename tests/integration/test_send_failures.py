"""Sends Kafka refuses, on the real broker: nothing of the batch is committed, the worker
stops within its drain timeout, and a restarted worker redoes the batch exactly once.

The failures are the broker's own: a changelog topic whose ``max.message.bytes`` is set
below a customer state (refused for good), and a dead-letter topic deleted while the
worker runs (unknown to the broker, a retriable failure, until it is created again).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from cxstream.cli.consistency import batch_tallies
from cxstream.cli.processes import WorkerProcess
from cxstream.streams.ingest.deadletter_record import read_headers
from cxstream.streams.kafka.clients import aiokafka_options
from cxstream.streams.kafka.confirmed_sends import EXIT_SEND_FAILED
from cxstream.streams.kafka.plain_clients import Record, produce, read_topic
from cxstream.streams.kafka.topic_admin import ensure_topics
from cxstream.streams.settings import Settings, load_settings
from testkit.support import base_env, feedback, profile, settled_differences, to_bytes

pytestmark = pytest.mark.integration
TOKEN = "a-test-token-of-at-least-32-characters"


async def set_topic_config(settings: Settings, topic: str, config: dict[str, str]) -> None:
    admin = AIOKafkaAdminClient(**aiokafka_options(settings))
    await admin.start()
    try:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, config)])
    finally:
        await admin.close()


async def delete_topic(settings: Settings, topic: str) -> None:
    admin = AIOKafkaAdminClient(**aiokafka_options(settings))
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()


async def committed_total(settings: Settings, topic: str, partitions: int) -> int:
    admin = AIOKafkaAdminClient(**aiokafka_options(settings))
    await admin.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        offsets = await admin.list_consumer_group_offsets(settings.app_id, partitions=tps)
    finally:
        await admin.close()
    return sum(meta.offset for meta in offsets.values() if meta is not None and meta.offset > 0)


def answers(settings: Settings, first: int, count: int, customers: int = 12) -> list[Record]:
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    return [Record(settings.topic_feedback, f"s{n % customers}".encode(), to_bytes(feedback(
        event_id=f"s-{n}", customer_id=f"s{n % customers}", score=n % 11,
        comment="long enough to make every customer state larger than the limit " * 3,
        occurred_at=(at + timedelta(seconds=n)).isoformat())))
        for n in range(first, first + count)]


def wait_for_exit(worker: WorkerProcess, timeout: float) -> int:
    assert worker.process is not None
    return worker.process.wait(timeout=timeout)


def test_a_send_refused_for_good_stops_the_worker_unacknowledged_and_a_restart_loses_nothing(
        isolated: dict[str, str], tmp_path: Path) -> None:
    values = {**isolated, "api_token": TOKEN, "allowed_lateness_seconds": str(30 * 86_400)}
    settings = load_settings({}, **values)
    asyncio.run(ensure_topics(settings))
    changelog = f"{settings.app_id}-customer_to_state-changelog"
    worker = WorkerProcess(base_env(**values), tmp_path / "worker.log",
                           settings.web_port).start()
    try:
        profiles = [Record(settings.topic_customers, f"s{n}".encode(),
                           to_bytes(profile(customer_id=f"s{n}", value=100.0 * n)))
                    for n in range(12)]
        asyncio.run(produce(settings, profiles))  # before the answers: their segment is known
        worker.wait_for("cxstream_events_folded_total", 12, timeout=120, kind="customer")
        asyncio.run(produce(settings, answers(settings, 0, 60)))
        worker.wait_for("cxstream_events_accepted_total", 72, timeout=120)
        assert asyncio.run(_wait_committed(settings, 60))
        asyncio.run(set_topic_config(settings, changelog, {"max.message.bytes": "256"}))
        asyncio.run(produce(settings, answers(settings, 60, 40)))
        code = wait_for_exit(worker, timeout=90)
        assert code == EXIT_SEND_FAILED, worker.log()
        assert "MessageSizeTooLarge" in worker.log(20_000)
        # the failed batch (and all after it) stayed uncommitted
        assert asyncio.run(committed_total(settings, settings.topic_feedback, 3)) < 100
        asyncio.run(set_topic_config(settings, changelog, {"max.message.bytes": "1048588"}))
        worker.start()
        worker.wait_for("cxstream_partitions_assigned", 3, timeout=120)
        assert asyncio.run(_wait_committed(settings, 100))
        expected = batch_tallies(settings)
        found = settled_differences(f"http://127.0.0.1:{settings.web_port}", TOKEN,
                                    expected)
        assert found == [], found[:3]
        assert sum(t.promoters + t.passives + t.detractors for key, t in expected.items()
                   if key[0] == "channel" and key[1] == "day") == 100
    finally:
        if worker.running:
            worker.stop()


def test_sigterm_while_a_dead_letter_send_keeps_failing_stops_within_the_drain_timeout(
        isolated: dict[str, str], tmp_path: Path) -> None:
    values = {**isolated, "drain_timeout_seconds": "10"}
    settings = load_settings({}, **values)
    asyncio.run(ensure_topics(settings))
    worker = WorkerProcess(base_env(**values), tmp_path / "worker.log",
                           settings.web_port).start()
    try:
        worker.wait_for("cxstream_partitions_assigned", 3, timeout=120)
        asyncio.run(delete_topic(settings, settings.topic_deadletter))
        asyncio.run(produce(settings, [Record(settings.topic_feedback, b"s1", b"{broken")]))
        worker.wait_for("cxstream_deadletter_send_retries_total", 1, timeout=60)
        began = time.monotonic()
        code = worker.stop(timeout=60)
        took = time.monotonic() - began
        assert code == 0, worker.log()
        assert took < 10 + 10 + 5, f"stopping took {took:.1f} s"  # drain + Faust's + slack
        assert "left unacknowledged" in worker.log(20_000)
        worker.start()  # creates the missing contract topics again
        worker.wait_for("cxstream_events_deadlettered_total", 1, timeout=120)
        assert asyncio.run(_wait_committed(settings, 1))
        records = asyncio.run(read_topic(settings, settings.topic_deadletter))
        assert [read_headers(list(r.headers))["source.offset"] for r in records] == ["0"]
        print(f"\nstopped {took:.1f} s after SIGTERM with a dead-letter send failing")
    finally:
        if worker.running:
            worker.stop()


async def _wait_committed(settings: Settings, total: int, timeout: float = 90) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await committed_total(settings, settings.topic_feedback, 3) >= total:
            return True
        await asyncio.sleep(0.5)
    return False
