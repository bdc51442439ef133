"""Webhook delivery that cannot block, on the real broker: an alert the receiver keeps
refusing with 500 goes to the alerts dead-letter topic once it is too old to retry, and
the alerts behind it in its partition are delivered."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka.partitioner import DefaultPartitioner

from cxstream.streams.deadletter import read_headers
from cxstream.streams.io import read_topic
from cxstream.streams.settings import load_settings
from tests.receiver import Receiver
from tests.support import feedback, free_port, profile, send, start

pytestmark = pytest.mark.integration
SECRET = "whsec_" + "c2VjcmV0LWZvci10aGUtd2ViaG9vay10ZXN0cw=="
PREVIOUS = "the-secret-before-the-rotation"


def same_partition_customers(count: int, partitions: int) -> list[str]:
    """Customer ids whose alerts share one partition of the alerts topic."""
    partitioner = DefaultPartitioner()
    every = list(range(partitions))
    target = partitioner(b"w0", every, every)
    found = [f"w{n}" for n in range(200) if partitioner(f"w{n}".encode(), every, every)
             == target]
    return found[:count]


def test_an_alert_refused_with_500_expires_to_the_dead_letter_topic_and_later_ones_flow(
        isolated: dict[str, str], tmp_path: Path) -> None:
    customers = same_partition_customers(4, 3)
    blocked = customers[0]
    receiver = Receiver(free_port(), PREVIOUS,
                        answer=lambda alert: 500 if alert["customer_id"] == blocked else None)
    receiver.start()
    values = {**isolated, "webhook_url": receiver.url, "webhook_secret": SECRET,
              "webhook_previous_secret": PREVIOUS, "webhook_max_backoff_seconds": "0.5",
              "webhook_retry_max_age_seconds": "4"}
    settings = load_settings({}, **values)
    worker = start(values, tmp_path, "worker")
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    try:
        worker.wait_for("cxstream_partitions_assigned", 3, timeout=120)
        send(settings, settings.topic_customers,
             [profile(customer_id=c, updated_at=now) for c in customers])
        worker.wait_for("cxstream_events_folded_total", 4, kind="customer")
        send(settings, settings.topic_feedback, [feedback(
            event_id=f"{blocked}-nps", customer_id=blocked, score=1, occurred_at=now)])
        deadline = time.monotonic() + 30
        while not receiver.refused and time.monotonic() < deadline:
            time.sleep(0.2)
        assert receiver.refused, worker.log()
        send(settings, settings.topic_feedback, [feedback(
            event_id=f"{c}-nps", customer_id=c, score=2, occurred_at=now)
            for c in customers[1:]])
        deadline = time.monotonic() + 60
        while len(receiver.received) < 3 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert sorted(r.alert["customer_id"] for r in receiver.received) == sorted(
            customers[1:])
        assert all(r.signature_ok for r in receiver.received)  # verified with the old key
        dead = asyncio.run(read_topic(settings, settings.topic_alerts_deadletter))
        assert len(dead) == 1
        reason = read_headers(list(dead[0].headers))["error.reason"]
        assert "not delivered within 4 s" in reason and "HTTP 500" in reason
        assert len(set(receiver.refused)) == 1 and len(receiver.refused) >= 2  # retried
    finally:
        assert worker.stop() == 0, worker.log()
        receiver.stop()
