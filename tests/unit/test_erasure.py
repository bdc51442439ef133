"""Erasure in the state writer (plain dicts as tables): the state goes, a marker without
the id stays, and the customer's old events read again are not applied again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry

from cxstream.schemas.events import Feedback
from cxstream.schemas.parsing import InputKind
from cxstream.scoring.conventions import Conventions
from cxstream.scoring.customer import StateRules
from cxstream.scoring.fold import FoldRules
from cxstream.scoring.value_bands import ValueIndex
from cxstream.scoring.windows import window_specs
from cxstream.streams.customers.state_codec import erased_key
from cxstream.streams.customers.state_writer import StateWriter
from cxstream.streams.ingest.batches import Accepted
from cxstream.streams.metrics import WorkerMetrics
from testkit.support import feedback

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
RULES = FoldRules(state=StateRules(seen_event_ids_kept=10), conventions=Conventions(),
                  windows=window_specs(7), allowed_lateness_seconds=30 * 86_400,
                  max_clock_skew_seconds=600)


class Message:
    def __init__(self, offset: int) -> None:
        self.topic, self.partition, self.offset = "fb", 0, offset
        self.timestamp = T0.timestamp() + offset


class Source:  # a Faust event as far as the writer looks (weak-referenceable)
    def __init__(self, offset: int) -> None:
        self.message = Message(offset)


def answers(customer: str, count: int) -> list[Accepted]:
    return [Accepted(InputKind.FEEDBACK, Feedback.model_validate(feedback(
        event_id=f"{customer}-{n}", customer_id=customer,
        occurred_at=(T0 + timedelta(minutes=n)).isoformat())), Source(n))
        for n in range(count)]


def test_an_erased_customers_old_events_read_again_are_not_applied() -> None:
    customers: dict[bytes, Any] = {}
    erased: dict[bytes, Any] = {}
    writer = StateWriter(customers, {}, RULES, WorkerMetrics(CollectorRegistry()),
                         ValueIndex(), erased=erased)
    events = answers("gone-1", 30)
    asyncio.run(writer.handle(events))
    assert b"gone-1" in customers
    assert writer.erase("gone-1") and not writer.erase("gone-1")
    assert b"gone-1" not in customers
    assert list(erased) == [erased_key("gone-1")] and b"gone-1" not in erased_key("gone-1")
    asyncio.run(writer.handle(events))  # the topic read again from the start
    assert b"gone-1" not in customers
    later = Accepted(InputKind.FEEDBACK, Feedback.model_validate(feedback(
        event_id="gone-1-new", customer_id="gone-1", occurred_at=T0.isoformat())),
        Source(31))
    asyncio.run(writer.handle([later]))  # a new event after the erasure: a new state
    state = writer.load_state("gone-1")
    assert state is not None and list(state.seen) == ["feedback:gone-1-new"]
