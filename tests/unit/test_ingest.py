"""Ingest.process on fake Faust events: counts, dead-letter records, retries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from prometheus_client import CollectorRegistry

from cxstream.schemas.parsing import ErrorClass, InputKind, Rejection
from cxstream.streams.ingest.batches import Accepted, Ingest, IngestLimits
from cxstream.streams.ingest.deadletter_record import DeadLetter, read_headers
from cxstream.streams.metrics import WorkerMetrics
from testkit.support import feedback, profile, to_bytes

TOPICS = {"fb": InputKind.FEEDBACK, "cu": InputKind.CUSTOMER}


LIMITS = IngestLimits(65_536)


def event(topic: str, key: bytes | None, value: bytes | None, offset: int,
          timestamp: float | None = None) -> Any:
    return SimpleNamespace(message=SimpleNamespace(topic=topic, partition=0, offset=offset,
                                                   key=key, value=value, timestamp=timestamp))


class Sink:
    """DeadLetters that keeps what it is given (the exactly-once logic is tested apart)."""

    def __init__(self) -> None:
        self.sent: list[DeadLetter] = []

    async def write(self, topic: str, partition: int,
                    rejected: Any) -> list[int]:
        self.sent += [record for _, record in rejected]
        return [offset for offset, _ in rejected]


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_valid_and_invalid_inputs_are_counted_and_only_invalid_ones_dead_lettered() -> None:
    registry = CollectorRegistry()
    sink = Sink()
    handled: list[Accepted] = []

    async def handle(batch: Any) -> list[tuple[Accepted, Rejection]]:
        handled.extend(batch)
        return []

    ingest = Ingest(TOPICS, LIMITS, WorkerMetrics(registry), sink, handle)
    await ingest.process([
        event("fb", b"c-1", to_bytes(feedback()), 0),
        event("fb", b"c-1", b"nope", 1),
        event("cu", b"c-1", to_bytes(profile()), 0),
        event("fb", b"c-9", to_bytes(feedback()), 2),
    ])
    assert [item.kind for item in handled] == [InputKind.FEEDBACK, InputKind.CUSTOMER]
    assert [read_headers(r.headers)["error.class"] for r in sink.sent] == ["json", "key"]
    assert [read_headers(r.headers)["source.offset"] for r in sink.sent] == ["1", "2"]
    assert sample(registry, "cxstream_events_consumed_total", topic="fb") == 3
    assert sample(registry, "cxstream_events_accepted_total", topic="fb") == 1
    assert sample(registry, "cxstream_events_accepted_total", topic="cu") == 1
    assert sample(registry, "cxstream_events_deadlettered_total", topic="fb", reason="json") == 1


async def test_inputs_the_handler_cannot_process_are_dead_lettered_not_counted_accepted() -> None:
    registry = CollectorRegistry()
    sink = Sink()

    async def handle(batch: Any) -> list[tuple[Accepted, Rejection]]:
        return [(batch[0], Rejection(ErrorClass.INTERNAL, "boom"))]

    ingest = Ingest(TOPICS, LIMITS, WorkerMetrics(registry), sink, handle)
    await ingest.process([event("fb", b"c-1", to_bytes(feedback()), 0)])
    assert [read_headers(r.headers)["error.reason"] for r in sink.sent] == ["boom"]
    assert sample(registry, "cxstream_events_accepted_total", topic="fb") == 0


async def test_dead_letters_are_written_before_the_batch_is_finished() -> None:
    order: list[str] = []

    class Recording(Sink):
        async def write(self, topic: str, partition: int, rejected: Any) -> list[int]:
            order.append("deadletter")
            return await super().write(topic, partition, rejected)

    async def finish() -> None:
        order.append("finish")

    ingest = Ingest(TOPICS, LIMITS, WorkerMetrics(CollectorRegistry()), Recording(),
                    finish=finish)
    await ingest.process([event("fb", b"c-1", b"{", 0)])
    assert order == ["deadletter", "finish"]


async def test_an_event_time_ahead_of_the_clocks_is_a_schema_error() -> None:
    sink = Sink()
    now = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)
    ingest = Ingest(TOPICS, IngestLimits(65_536, max_ahead_seconds=600),
                    WorkerMetrics(CollectorRegistry()), sink, clock=now.timestamp)
    year_ahead = (now + timedelta(days=365)).isoformat()
    record_time = (now - timedelta(hours=1)).timestamp()
    twenty_minutes_after_record = (now - timedelta(minutes=40)).isoformat()
    in_time = (now + timedelta(minutes=9)).isoformat()  # within the skew of both clocks
    await ingest.process([
        event("fb", b"c-1", to_bytes(feedback(occurred_at=year_ahead)), 0,
              timestamp=now.timestamp()),
        event("fb", b"c-1", to_bytes(feedback(occurred_at=twenty_minutes_after_record)), 1,
              timestamp=record_time),
        event("fb", b"c-1", to_bytes(feedback(occurred_at=in_time)), 2,
              timestamp=now.timestamp()),
    ])
    reasons = [read_headers(r.headers) for r in sink.sent]
    assert [r["error.class"] for r in reasons] == ["schema", "schema"]
    assert "worker's clock" in reasons[0]["error.reason"]
    assert "record's timestamp" in reasons[1]["error.reason"]


async def test_an_oversized_input_is_dead_lettered_as_a_prefix_with_its_digest() -> None:
    sink = Sink()
    ingest = Ingest(TOPICS, IngestLimits(65_536, copy_limit=100_000),
                    WorkerMetrics(CollectorRegistry()), sink)
    huge = b"x" * 1_000_000
    await ingest.process([event("fb", b"c-1", huge, 0)])
    headers = read_headers(sink.sent[0].headers)
    assert headers["error.class"] == "oversized"
    assert sink.sent[0].value == huge[:100_000]
    assert headers["original.size"] == "1000000"
    assert headers["truncated"] == "true"
