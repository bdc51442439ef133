"""Ingest on the real broker: valid events processed, bad ones dead-lettered, exact restarts."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cxstream.cli.processes import WorkerProcess
from cxstream.cli.samples import sample_records
from cxstream.cli.scrape import total as metric
from cxstream.streams.ingest.deadletter_record import read_headers
from cxstream.streams.kafka.plain_clients import Record, produce, read_topic
from cxstream.streams.settings import Settings
from testkit.support import base_env, feedback, interaction, profile, to_bytes

pytestmark = pytest.mark.integration


def start_worker(isolated: dict[str, str], tmp_path: Path, name: str = "worker") -> WorkerProcess:
    return WorkerProcess(base_env(**isolated), tmp_path / f"{name}.log",
                         int(isolated["web_port"])).start()


def mixed_batch(settings: Settings, tag: str) -> tuple[list[Record], list[Record]]:
    """Valid events of all three kinds with one bad input of each kind between them."""
    valid = [
        Record(settings.topic_customers, f"{tag}-c{i}".encode(),
               to_bytes(profile(customer_id=f"{tag}-c{i}", value=10.0 * i)))
        for i in range(5)
    ] + [
        Record(settings.topic_interactions, f"{tag}-c{i}".encode(),
               to_bytes(interaction(event_id=f"{tag}-i{i}", customer_id=f"{tag}-c{i}")))
        for i in range(5)
    ] + [
        Record(settings.topic_feedback, f"{tag}-c{i}".encode(),
               to_bytes(feedback(event_id=f"{tag}-f{i}", customer_id=f"{tag}-c{i}", score=i)))
        for i in range(5)
    ]
    key = f"{tag}-c0".encode()
    invalid = [
        Record(settings.topic_feedback, key, b"not json"),
        Record(settings.topic_feedback, key, b'{"customer_id": "\xc3\x28"}'),
        Record(settings.topic_feedback, key, to_bytes(feedback(customer_id=f"{tag}-c0", score=11))),
        Record(settings.topic_feedback, key,
               to_bytes(feedback(customer_id=f"{tag}-c0", occurred_at="2026-11-23T10:00:00"))),
        Record(settings.topic_interactions, key, to_bytes(interaction(customer_id="other"))),
        Record(settings.topic_customers, key, b"x" * (settings.max_event_bytes + 1)),
        Record(settings.topic_customers, key, None),
    ]
    # interleaved: each bad input sits between valid ones
    mixed = [item for pair in zip(valid, invalid + [None] * len(valid), strict=False)
             for item in pair if item is not None]
    return mixed, invalid


def deadletters(settings: Settings) -> list[Record]:
    return asyncio.run(read_topic(settings, settings.topic_deadletter))


def test_valid_inputs_are_processed_and_each_kind_of_bad_input_is_dead_lettered(
    isolated: dict[str, str], isolated_settings: Settings, tmp_path: Path
) -> None:
    settings = isolated_settings
    worker = start_worker(isolated, tmp_path)
    try:
        records, invalid = mixed_batch(settings, "a")
        asyncio.run(produce(settings, records))
        worker.wait_for("cxstream_events_consumed_total", len(records))
        # counted once Kafka acknowledged them, after they were counted as consumed
        worker.wait_for("cxstream_events_deadlettered_total", len(invalid))
        worker.wait_for("cxstream_events_accepted_total", len(records) - len(invalid))
        samples = worker.metrics()
    finally:
        assert worker.stop() == 0
    for topic in settings.input_topics:
        assert metric(samples, "cxstream_events_accepted_total", topic=topic) == 5
    expected_classes = Counter({"json": 1, "encoding": 1, "schema": 2, "key": 1,
                                "oversized": 1, "empty": 1})
    for reason, count in expected_classes.items():
        assert metric(samples, "cxstream_events_deadlettered_total", reason=reason) == count
    assert metric(samples, "cxstream_events_deadlettered_total") == len(invalid)

    dead = deadletters(settings)
    assert len(dead) == len(invalid)
    by_value = {record.value: record for record in dead}
    for original in invalid:
        stored = by_value[original.value or b""]
        meta = read_headers(list(stored.headers))
        assert stored.key == original.key
        assert meta["source.topic"] == original.topic
        assert int(meta["source.offset"]) >= 0 and meta["error.reason"]
    reasons = {read_headers(list(r.headers))["error.reason"] for r in dead}
    assert "message: score 11 is outside nps range 0-10" in reasons


def test_restarted_worker_resumes_from_committed_offsets_without_loss_or_duplicates(
    isolated: dict[str, str], isolated_settings: Settings, tmp_path: Path
) -> None:
    settings = isolated_settings
    first, first_invalid = mixed_batch(settings, "first")
    second, second_invalid = mixed_batch(settings, "second")

    worker = start_worker(isolated, tmp_path, "first")
    try:
        asyncio.run(produce(settings, first))
        # stop once the batch is fully processed (dead-letter records are written last);
        # a stop mid-batch would redeliver the batch, which is correct but not this test
        worker.wait_for("cxstream_events_deadlettered_total", len(first_invalid))
        worker.wait_for("cxstream_events_accepted_total", len(first) - len(first_invalid))
    finally:
        assert worker.stop(signal.SIGTERM) == 0

    asyncio.run(produce(settings, second))  # arrives while no worker runs
    worker = start_worker(isolated, tmp_path, "second")
    try:
        worker.wait_for("cxstream_events_consumed_total", len(second))
        worker.wait_for("cxstream_events_deadlettered_total", len(second_invalid))
        asyncio.run(asyncio.sleep(3))  # give any re-delivery time to show up
        samples = worker.metrics()
        # Faust may redeliver inputs already committed (seen after restarts here); what
        # must hold is their effect: counted once, dead-lettered once, nothing lost.
        redelivered = metric(samples, "cxstream_events_consumed_total") - len(second)
        print(f"\nrestart: inputs redelivered by Faust after the restart: {redelivered:.0f}")
        for kind, count in (("feedback", 5), ("interaction", 5)):
            assert metric(samples, "cxstream_events_folded_total", kind=kind,
                          outcome="applied") == count
            assert metric(samples, "cxstream_events_folded_total", kind=kind,
                          outcome="duplicate") == 0
    finally:
        assert worker.stop() == 0

    dead = deadletters(settings)
    sources = [(read_headers(list(r.headers))["source.topic"],
                read_headers(list(r.headers))["source.partition"],
                read_headers(list(r.headers))["source.offset"]) for r in dead]
    assert len(sources) == len(set(sources)) == len(first_invalid) + len(second_invalid)


def test_worker_refuses_to_start_with_an_invalid_setting(
    isolated: dict[str, str], tmp_path: Path
) -> None:
    worker = start_worker({**isolated, "partitions": "0"}, tmp_path)
    assert worker.process is not None
    assert worker.process.wait(timeout=60) == 2
    assert "CXSTREAM_PARTITIONS" in worker.log()


def test_samples_of_the_demo_are_split_as_announced(
    isolated: dict[str, str], isolated_settings: Settings, tmp_path: Path
) -> None:
    settings = isolated_settings
    samples = sample_records(settings, datetime.now(UTC))
    worker = start_worker(isolated, tmp_path)
    try:
        asyncio.run(produce(settings, samples.records))
        worker.wait_for("cxstream_events_consumed_total", len(samples.records))
        worker.wait_for("cxstream_events_accepted_total", samples.valid)
    finally:
        worker.stop()
    assert len(deadletters(settings)) == samples.invalid
