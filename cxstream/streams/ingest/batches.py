"""Ingest: read the three input topics as raw bytes, validate, dead-letter the failures.

Shape of what flows: Kafka message (bytes) -> ``parse_input`` -> event model, or a
``Rejection`` that becomes a dead-letter record. Batches come from ``take_events`` and are
acknowledged only after this module returns, so a dead-letter record, like every other
record a batch causes, is acknowledged by Kafka before the offset of its input can be
committed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from time import perf_counter
from typing import Any, Protocol

from cxstream.schemas.events import InputEvent
from cxstream.schemas.parsing import Clocks, InputKind, Rejection, parse_input
from cxstream.streams.ingest.deadletter_record import DeadLetter, SourcePosition, build_deadletter
from cxstream.streams.ingest.unknown_fields import UnknownFields
from cxstream.streams.metrics import WorkerMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Accepted:
    """A validated input and the Faust event it came with (for its partition)."""

    kind: InputKind
    event: InputEvent
    source: Any  # faust EventT: kept for table writes in its partition


#: Folds a batch of accepted inputs into state; returns the inputs it could not process.
BatchHandler = Callable[[Sequence[Accepted]], Awaitable[list[tuple[Accepted, Rejection]]]]
#: Sends what the batch caused (state changelog, alerts) and waits for Kafka's acks.
Finisher = Callable[[], Awaitable[None]]


class DeadLetters(Protocol):
    """Where rejected inputs go (streams.ingest.deadletter_once.ExactlyOnceDeadLetters)."""

    async def write(self, topic: str, partition: int,
                    rejected: Sequence[tuple[int, DeadLetter]]) -> list[int]:
        """Dead-letter one input partition's rejected inputs; return the offsets sent."""


@dataclass(frozen=True)
class IngestLimits:
    """How large an input may be, how much of a refused one is copied, and how far ahead
    of the worker's clock (or the record's timestamp) an event time may be."""

    max_event_bytes: int
    copy_limit: int | None = None
    max_ahead_seconds: float | None = None


class Ingest:
    """Validates batches of raw messages and routes every failure to the dead-letter topic.

    Nothing of a batch is acknowledged before everything it caused is confirmed by Kafka:
    dead letters, state changelog records and alerts (``finish``)."""

    def __init__(
        self,
        kind_of_topic: dict[str, InputKind],
        limits: IngestLimits,
        metrics: WorkerMetrics,
        deadletters: DeadLetters,
        handle_batch: BatchHandler | None = None,
        finish: Finisher | None = None,
        clock: Callable[[], float] = time.time,
        last_read: dict[tuple[str, int], float] | None = None,
    ) -> None:
        self.kind_of_topic = kind_of_topic
        self.limits = limits
        self.metrics = metrics
        self.deadletters = deadletters
        self.handle_batch = handle_batch
        self.finish = finish
        self.clock = clock
        #: (topic, partition) -> record time of the last message read (lag in seconds;
        #: shared with the metrics' collector when given)
        self.last_read: dict[tuple[str, int], float] = {} if last_read is None else last_read
        self.unknown_fields = UnknownFields(metrics.unknown_fields)

    async def process(self, events: Sequence[Any]) -> None:
        """Validate, fold and dead-letter one batch of Faust events."""
        with self.metrics.batch_seconds.time():
            self.metrics.batch_size.observe(len(events))
            began = perf_counter()
            accepted, rejected = self._validate(events)
            self.metrics.own_work["validation"].inc(perf_counter() - began)
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
            if self.finish is not None:
                await self.finish()

    def _validate(
        self, events: Sequence[Any]
    ) -> tuple[list[Accepted], list[tuple[Any, Rejection]]]:
        accepted: list[Accepted] = []
        rejected: list[tuple[Any, Rejection]] = []
        consumed: dict[str, int] = {}
        now = self.clock()
        ahead = self.limits.max_ahead_seconds
        last_read = self.last_read
        unknown: list[str] = []
        for event in events:
            message = event.message
            consumed[message.topic] = consumed.get(message.topic, 0) + 1
            last_read[message.topic, message.partition] = message.timestamp
            kind = self.kind_of_topic[message.topic]
            clocks = None if ahead is None else Clocks(now, _record_seconds(message), ahead)
            result = parse_input(kind, message.key, message.value,
                                 self.limits.max_event_bytes, clocks, unknown)
            if isinstance(result, Rejection):
                rejected.append((event, result))
            else:
                accepted.append(Accepted(kind, result, event))
            if unknown:  # fields the contract does not name: counted, then forgotten
                self.unknown_fields.note(message.topic, unknown)
                unknown.clear()
        for topic, count in consumed.items():
            self.metrics.events_consumed.labels(topic).inc(count)
        return accepted, rejected

    async def _deadletter(self, rejected: list[tuple[Any, Rejection]]) -> None:
        if not rejected:
            return
        now = datetime.now(UTC)
        per_partition: dict[tuple[str, int], list[tuple[int, DeadLetter]]] = {}
        reasons: dict[tuple[str, int, int], Rejection] = {}
        for event, rejection in rejected:
            message = event.message
            source = SourcePosition(message.topic, message.partition, message.offset)
            record = build_deadletter(message.key, message.value, source, rejection, now,
                                      self.limits.copy_limit)
            per_partition.setdefault((message.topic, message.partition), []).append(
                (message.offset, record))
            reasons[(message.topic, message.partition, message.offset)] = rejection
        for (topic, partition), records in per_partition.items():
            records.sort(key=lambda item: item[0])
            for offset in await self.deadletters.write(topic, partition, records):
                rejection = reasons[(topic, partition, offset)]
                self.metrics.events_deadlettered.labels(topic, rejection.error_class).inc()
                log.warning("dead-lettered %s[%d]@%d: %s: %s", topic, partition, offset,
                            rejection.error_class, rejection.reason)


def _record_seconds(message: Any) -> float | None:
    """The Kafka record timestamp in epoch seconds (Faust gives seconds), if any."""
    stamp = getattr(message, "timestamp", None)
    return float(stamp) if stamp else None
