"""Ingest.process on fake Faust events: counts, dead-letter records, retries."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from prometheus_client import CollectorRegistry

from schemas.parsing import ErrorClass, InputKind, Rejection
from streams.deadletter import DeadLetter, read_headers
from streams.ingest import Accepted, Ingest
from streams.metrics import WorkerMetrics
from tests.support import feedback, profile, to_bytes

TOPICS = {"fb": InputKind.FEEDBACK, "cu": InputKind.CUSTOMER}


def event(topic: str, key: bytes | None, value: bytes | None, offset: int) -> Any:
    return SimpleNamespace(message=SimpleNamespace(topic=topic, partition=0, offset=offset,
                                                   key=key, value=value))


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_valid_and_invalid_inputs_are_counted_and_only_invalid_ones_dead_lettered() -> None:
    registry = CollectorRegistry()
    sent: list[DeadLetter] = []
    handled: list[Accepted] = []

    async def send(record: DeadLetter) -> None:
        sent.append(record)

    async def handle(batch: Any) -> list[tuple[Accepted, Rejection]]:
        handled.extend(batch)
        return []

    ingest = Ingest(TOPICS, 65_536, WorkerMetrics(registry), send, handle)
    await ingest.process([
        event("fb", b"c-1", to_bytes(feedback()), 0),
        event("fb", b"c-1", b"nope", 1),
        event("cu", b"c-1", to_bytes(profile()), 0),
        event("fb", b"c-9", to_bytes(feedback()), 2),
    ])
    assert [item.kind for item in handled] == [InputKind.FEEDBACK, InputKind.CUSTOMER]
    assert [read_headers(r.headers)["error.class"] for r in sent] == ["json", "key"]
    assert [read_headers(r.headers)["source.offset"] for r in sent] == ["1", "2"]
    assert sample(registry, "cxstream_events_consumed_total", topic="fb") == 3
    assert sample(registry, "cxstream_events_accepted_total", topic="fb") == 1
    assert sample(registry, "cxstream_events_accepted_total", topic="cu") == 1
    assert sample(registry, "cxstream_events_deadlettered_total", topic="fb", reason="json") == 1


async def test_inputs_the_handler_cannot_process_are_dead_lettered_not_counted_accepted() -> None:
    registry = CollectorRegistry()
    sent: list[DeadLetter] = []

    async def send(record: DeadLetter) -> None:
        sent.append(record)

    async def handle(batch: Any) -> list[tuple[Accepted, Rejection]]:
        return [(batch[0], Rejection(ErrorClass.INTERNAL, "boom"))]

    ingest = Ingest(TOPICS, 65_536, WorkerMetrics(registry), send, handle)
    await ingest.process([event("fb", b"c-1", to_bytes(feedback()), 0)])
    assert [read_headers(r.headers)["error.reason"] for r in sent] == ["boom"]
    assert sample(registry, "cxstream_events_accepted_total", topic="fb") == 0


async def test_failed_dead_letter_sends_are_retried_until_delivered() -> None:
    registry = CollectorRegistry()
    attempts: list[bytes] = []

    async def flaky_send(record: DeadLetter) -> None:
        attempts.append(record.value)
        if len(attempts) < 3:
            raise ConnectionError("broker unavailable")

    ingest = Ingest(TOPICS, 65_536, WorkerMetrics(registry), flaky_send)
    await ingest.process([event("fb", b"c-1", b"{", 0)])
    assert attempts == [b"{", b"{", b"{"]
    assert sample(registry, "cxstream_deadletter_send_retries_total") == 2


class Marks:
    def __init__(self) -> None:
        self.marks: dict[tuple[str, int], int] = {}

    def get(self, source: Any) -> int:
        return self.marks.get((source.message.topic, source.message.partition), -1)

    def set(self, source: Any, offset: int) -> None:
        self.marks[(source.message.topic, source.message.partition)] = offset


async def test_a_redelivered_invalid_input_is_not_dead_lettered_twice() -> None:
    sent: list[DeadLetter] = []

    async def send(record: DeadLetter) -> None:
        sent.append(record)

    ingest = Ingest(TOPICS, 65_536, WorkerMetrics(CollectorRegistry()), send, marks=Marks())
    await ingest.process([event("fb", b"c-1", b"bad", 3), event("fb", b"c-1", b"bad2", 4)])
    await ingest.process([event("fb", b"c-1", b"bad", 3), event("fb", b"c-1", b"bad2", 4),
                          event("fb", b"c-1", b"bad3", 5)])  # redelivered, then a new one
    assert [record.value for record in sent] == [b"bad", b"bad2", b"bad3"]
