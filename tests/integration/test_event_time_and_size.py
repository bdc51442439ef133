"""Inputs that used to stall or skew a worker, on the real broker: a ~1 MB input and an
answer dated a year ahead are dead-lettered, and the answers after them still count."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cxstream.cli.consistency import batch_tallies
from cxstream.cli.processes import WorkerProcess
from cxstream.streams.ingest.deadletter_record import read_headers
from cxstream.streams.kafka.plain_clients import Record, produce, read_topic
from cxstream.streams.settings import load_settings
from testkit.support import base_env, feedback, profile, settled_differences, to_bytes

pytestmark = pytest.mark.integration
TOKEN = "a-test-token-of-at-least-32-characters"


def test_a_1_mb_input_and_a_future_dated_answer_are_dead_lettered_and_later_answers_count(
        isolated: dict[str, str], tmp_path: Path) -> None:
    values = {**isolated, "api_token": TOKEN}
    settings = load_settings({}, **values)
    worker = WorkerProcess(base_env(**values), tmp_path / "worker.log",
                           settings.web_port).start()
    now = datetime.now(UTC).replace(microsecond=0)
    key = b"big-1"
    huge = b'{"customer_id": "big-1", "padding": "' + b"x" * 1_046_000 + b'"}'
    year_ahead = feedback(event_id="f-future", customer_id="big-1", score=0,
                          occurred_at=(now + timedelta(days=365)).isoformat())
    later = [feedback(event_id=f"f-{n}", customer_id="big-1", score=n,
                      occurred_at=(now - timedelta(minutes=10 - n)).isoformat())
             for n in range(5)]
    try:
        worker.wait_for("cxstream_partitions_assigned", 3, timeout=120)
        asyncio.run(produce(settings, [Record(settings.topic_customers, key,
                                              to_bytes(profile(customer_id="big-1")))]))
        worker.wait_for("cxstream_events_folded_total", 1, kind="customer")
        asyncio.run(produce(settings, [
            Record(settings.topic_feedback, key, huge),
            Record(settings.topic_feedback, key, to_bytes(year_ahead)),
            *(Record(settings.topic_feedback, key, to_bytes(event)) for event in later)]))
        worker.wait_for("cxstream_events_accepted_total", 1 + len(later), timeout=120)
        worker.wait_for("cxstream_events_deadlettered_total", 2, timeout=60)
        records = asyncio.run(read_topic(settings, settings.topic_deadletter))
        by_class = {read_headers(list(r.headers))["error.class"]: r for r in records}
        assert sorted(by_class) == ["oversized", "schema"]
        oversized = read_headers(list(by_class["oversized"].headers))
        assert oversized["original.size"] == str(len(huge))
        assert oversized["original.sha256"] == hashlib.sha256(huge).hexdigest()
        assert huge.startswith(by_class["oversized"].value or b"")
        schema = read_headers(list(by_class["schema"].headers))
        assert "ahead of the worker's clock" in schema["error.reason"]
        expected = batch_tallies(settings)
        found = settled_differences(f"http://127.0.0.1:{settings.web_port}", TOKEN, expected)
        assert found == [], found[:3]
        hour = [tally for (dimension, window, _, name), tally in expected.items()
                if (dimension, window, name) == ("segment", "hour", "smb")]
        assert sum(t.promoters + t.passives + t.detractors for t in hour) == len(later)
        assert worker.running
    finally:
        assert worker.stop() == 0, worker.log()
