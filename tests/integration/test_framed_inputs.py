"""Inputs framed by Confluent's JSON Schema serializer (a zero byte and a 4-byte schema
id before the JSON) go through a worker exactly like plain JSON ones."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cxstream.cli.scrape import total
from cxstream.streams.kafka.plain_clients import Record, produce
from cxstream.streams.settings import load_settings
from testkit.support import Api, configure, feedback, profile, start, to_bytes

pytestmark = pytest.mark.integration


def framed(event: dict[str, object], schema_id: int = 42) -> bytes:
    return b"\x00" + schema_id.to_bytes(4, "big") + to_bytes(event)


def test_a_framed_input_is_processed_like_a_plain_one(isolated: dict[str, str],
                                                      tmp_path: Path) -> None:
    run = configure(isolated)
    settings = load_settings({}, **run)
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    events = {"framed": framed, "plain": to_bytes}
    worker = start(run, tmp_path, "worker")
    try:
        records = []
        for customer, encode in events.items():
            records.append(Record(settings.topic_customers, customer.encode(), encode(
                profile(customer_id=customer, segment="smb", value=500.0, updated_at=now))))
            records.append(Record(settings.topic_feedback, customer.encode(), encode(
                feedback(event_id=f"{customer}-1", customer_id=customer, score=3,
                         occurred_at=now, comment="The courier never came"))))
        asyncio.run(produce(settings, records))
        worker.wait_for("cxstream_events_folded_total", 4, outcome="applied")
        api = Api(int(run["web_port"]))
        shown = {customer: api.get(f"/api/customers/{customer}") for customer in events}
        samples = worker.metrics()
    finally:
        assert worker.stop() == 0, worker.log()
    assert total(samples, "cxstream_events_deadlettered_total") == 0
    framed_state, plain_state = shown["framed"], shown["plain"]
    assert framed_state["profile"]["value"] == plain_state["profile"]["value"] == 500.0
    assert framed_state["last_scores"]["nps"]["score"] == 3
    assert framed_state["last_scores"]["nps"]["comment"] == \
        plain_state["last_scores"]["nps"]["comment"]
    assert framed_state["quadrant"] == plain_state["quadrant"]
