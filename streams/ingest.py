"""Ingest: read the three input topics as raw bytes, validate, dead-letter the failures.

Shape of what flows: Kafka message (bytes) -> ``parse_input`` -> event model, or a
``Rejection`` that becomes a dead-letter record. Batches come from ``take_events`` and are
acknowledged only after this module returns, so a dead-letter record is delivered to Kafka
before the offset of its input can be committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from schemas.events import InputEvent
from schemas.parsing import InputKind, Rejection, parse_input
from streams.deadletter import DeadLetter, SourcePosition, build_deadletter
from streams.metrics import WorkerMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Accepted:
    """A validated input and the Faust event it came with (for its partition)."""

    kind: InputKind
    event: InputEvent
    source: Any  # faust EventT: kept for table writes in its partition


#: Folds a batch of accepted inputs into state; returns the inputs it could not process.
BatchHandler = Callable[[Sequence[Accepted]], Awaitable[list[tuple[Accepted, Rejection]]]]
DeadLetterSender = Callable[[DeadLetter], Awaitable[Any]]


class DeadLetterMarks(Protocol):
    """Per input partition, the highest offset already dead-lettered (redelivery guard)."""

    def get(self, source: Any) -> int:
        """The mark of the event's partition (-1: none)."""

    def set(self, source: Any, offset: int) -> None:
        """Raise the mark of the event's partition."""


class Ingest:
    """Validates batches of raw messages and routes every failure to the dead-letter topic."""

    def __init__(
        self,
        kind_of_topic: dict[str, InputKind],
        max_event_bytes: int,
        metrics: WorkerMetrics,
        send_deadletter: DeadLetterSender,
        handle_batch: BatchHandler | None = None,
        marks: DeadLetterMarks | None = None,
    ) -> None:
        self.kind_of_topic = kind_of_topic
        self.max_event_bytes = max_event_bytes
        self.metrics = metrics
        self.send_deadletter = send_deadletter
        self.handle_batch = handle_batch
        self.marks = marks

    async def process(self, events: Sequence[Any]) -> None:
        """Validate, fold and dead-letter one batch of Faust events."""
        with self.metrics.batch_seconds.time():
            self.metrics.batch_size.observe(len(events))
            accepted, rejected = self._validate(events)
            failed: set[int] = set()
            if self.handle_batch is not None and accepted:
                for item, rejection in await self.handle_batch(accepted):
                    rejected.append((item.source, rejection))
                    failed.add(id(item))
            accepted_per_topic: dict[str, int] = {}
            for item in accepted:
                if id(item) not in failed:
                    topic = item.source.message.topic
                    accepted_per_topic[topic] = accepted_per_topic.get(topic, 0) + 1
            for topic, count in accepted_per_topic.items():  # one labels() call per topic
                self.metrics.events_accepted.labels(topic).inc(count)
            await self._deadletter(rejected)

    def _validate(
        self, events: Sequence[Any]
    ) -> tuple[list[Accepted], list[tuple[Any, Rejection]]]:
        accepted: list[Accepted] = []
        rejected: list[tuple[Any, Rejection]] = []
        consumed: dict[str, int] = {}
        for event in events:
            message = event.message
            consumed[message.topic] = consumed.get(message.topic, 0) + 1
            kind = self.kind_of_topic[message.topic]
            result = parse_input(kind, message.key, message.value, self.max_event_bytes)
            if isinstance(result, Rejection):
                rejected.append((event, result))
            else:
                accepted.append(Accepted(kind, result, event))
        for topic, count in consumed.items():
            self.metrics.events_consumed.labels(topic).inc(count)
        return accepted, rejected

    async def _deadletter(self, rejected: list[tuple[Any, Rejection]]) -> None:
        if self.marks is not None:  # a redelivered input was dead-lettered already
            rejected = [(event, rejection) for event, rejection in rejected
                        if event.message.offset > self.marks.get(event)]
        if not rejected:
            return
        now = datetime.now(UTC)
        records = []
        for event, rejection in rejected:
            message = event.message
            source = SourcePosition(message.topic, message.partition, message.offset)
            records.append(build_deadletter(message.key, message.value, source, rejection, now))
            self.metrics.events_deadlettered.labels(message.topic, rejection.error_class).inc()
            log.warning("dead-lettered %s[%d]@%d: %s: %s", message.topic, message.partition,
                        message.offset, rejection.error_class, rejection.reason)
        await asyncio.gather(*(self._deliver(record) for record in records))
        if self.marks is not None:
            for event, _ in rejected:
                self.marks.set(event, event.message.offset)

    async def _deliver(self, record: DeadLetter) -> None:
        # Retry until Kafka has the record: the batch's offsets are committed only after
        # this returns, so giving up here would lose the input.
        async for attempt in AsyncRetrying(
            wait=wait_exponential(multiplier=0.2, max=10),
            retry=retry_if_exception_type(Exception),
            before_sleep=lambda _: self.metrics.deadletter_send_retries.inc(),
        ):
            with attempt:
                await self.send_deadletter(record)
