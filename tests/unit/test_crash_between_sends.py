"""A worker killed between publishing a batch's alerts and writing its state loses no
alert: alerts go first, so whatever state the next owner recovers, reading the batch
again either raises the same alerts or finds them published (plain dicts as tables)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from faust.serializers import codecs
from prometheus_client import CollectorRegistry

from cxstream.alerts.comment_tags import load_tagger
from cxstream.alerts.config import load_rules
from cxstream.alerts.customer_alerts import CustomerAlerts
from cxstream.alerts.reactions import AlertOut, AlertReactions
from cxstream.schemas.events import Feedback
from cxstream.schemas.parsing import InputKind
from cxstream.scoring.conventions import Conventions
from cxstream.scoring.customer import StateRules
from cxstream.scoring.customer_view import customer_flags
from cxstream.scoring.fold import FoldRules
from cxstream.scoring.value_bands import ValueBands, ValueIndex
from cxstream.scoring.windows import window_specs
from cxstream.streams.customers.state_writer import StateWriter
from cxstream.streams.ingest.batches import Accepted
from cxstream.streams.kafka.changelog import BulkChangelog
from cxstream.streams.kafka.table_writers import BulkWrites
from cxstream.streams.metrics import WorkerMetrics
from testkit.support import feedback

NOW = datetime.now(UTC).replace(microsecond=0)
RULES = FoldRules(state=StateRules(), conventions=Conventions(), windows=window_specs(7),
                  allowed_lateness_seconds=30 * 86_400, max_clock_skew_seconds=600)


class Killed(Exception):
    """The worker died here: nothing after this point reached Kafka."""


class Message:
    def __init__(self, offset: int) -> None:
        self.topic, self.partition, self.offset = "fb", 0, offset
        self.timestamp = NOW.timestamp()


class Source:  # a Faust event as far as the writer looks (weak-referenceable)
    def __init__(self, offset: int) -> None:
        self.message = Message(offset)


class Table(dict[bytes, Any]):
    """A Faust table as far as the writer looks: a mapping with its store and topic."""

    def __init__(self, name: str, value_serializer: str) -> None:
        super().__init__()
        self.data = self  # the store is the mapping itself
        self.key_serializer, self.value_serializer = "raw", value_serializer
        self.changelog_topic = SimpleNamespace(get_topic_name=lambda: f"app-{name}-changelog")


class Kafka:
    """What reached the broker: alert messages and changelog records, in order."""

    def __init__(self) -> None:
        self.alerts: list[tuple[str, int]] = []  # (alert_id, occurrences)
        self.changelog: dict[str, dict[bytes, bytes | None]] = {}
        self.order: list[str] = []
        self.kill_at: str | None = None  # "changelog": die before the state is written

    async def emit(self, outputs: list[Any]) -> None:
        self.order.append("alerts")
        self.alerts += [(out.alert.alert_id, out.alert.occurrences) for out in outputs
                        if isinstance(out, AlertOut)]

    async def send(self, topic: str, partition: int, records: list[Any]) -> None:
        self.order.append("changelog")
        if self.kill_at == "changelog":
            raise Killed
        self.changelog.setdefault(topic, {}).update(records)


def worker(kafka: Kafka) -> StateWriter:
    """A worker whose tables are recovered from what the changelog holds."""
    customers, partials = Table("customers", "raw"), Table("partials", "json")
    for name, store in (("customers", customers), ("partials", partials)):
        for key, value in kafka.changelog.get(f"app-{name}-changelog", {}).items():
            if value is not None:
                store.data[key] = value if name == "customers" else codecs.loads("json", value)
    bands = ValueBands({}, 0.2, fixed_threshold=1e12)  # nobody is high value here
    alerts = CustomerAlerts(load_rules(), load_tagger(),
                            lambda state: customer_flags(state, bands, RULES.state), lambda: NOW)
    return StateWriter(customers, partials, RULES, WorkerMetrics(CollectorRegistry()),
                       ValueIndex(), AlertReactions(alerts, load_rules(), RULES.state),
                       kafka.emit, BulkWrites(BulkChangelog(kafka.send)))


def detractor_answers(count: int) -> list[Accepted]:
    """One customer's ``count`` detractor answers: one alert, updated count - 1 times."""
    return [Accepted(InputKind.FEEDBACK, Feedback.model_validate(feedback(
        event_id=f"nps-{n}", customer_id="c-1", score=n % 7,
        occurred_at=(NOW - timedelta(minutes=60 - n)).isoformat())), Source(n))
        for n in range(count)]


def process(writer: StateWriter, batch: list[Accepted]) -> None:
    async def run() -> None:
        assert await writer.handle(batch) == []
        await writer.finish()
    asyncio.run(run())


def test_a_batchs_alerts_are_published_before_its_state_is_written() -> None:
    kafka = Kafka()
    process(worker(kafka), detractor_answers(3))
    writes = len(kafka.order) - 1  # one per changelog topic and partition: states, tallies
    assert writes >= 2 and kafka.order == ["alerts"] + ["changelog"] * writes


@pytest.mark.parametrize("answers", [1, 3, 12])
def test_killed_before_its_state_was_written_the_next_owner_raises_the_same_alerts(
        answers: int) -> None:
    kafka = Kafka()
    kafka.kill_at = "changelog"
    batch = detractor_answers(answers)
    with pytest.raises(Killed):
        process(worker(kafka), batch)
    first = list(kafka.alerts)
    assert [occurrences for _, occurrences in first] == list(range(1, answers + 1))
    assert kafka.changelog == {}  # the old state is all the next owner finds
    kafka.kill_at, kafka.alerts = None, []
    process(worker(kafka), batch)  # read again from the last commit
    assert kafka.alerts == first  # the same ids and messages: downstream keeps one of each


def test_killed_after_its_state_was_written_the_next_owner_sends_nothing_again() -> None:
    kafka = Kafka()
    batch = detractor_answers(12)  # more alert messages than any bounded copy would keep
    process(worker(kafka), batch)
    assert len(kafka.alerts) == 12
    state_before = dict(kafka.changelog["app-customers-changelog"])
    survivor = worker(kafka)
    process(survivor, batch)  # the commit of the batch was lost with the worker
    assert len(kafka.alerts) == 12  # published once: nothing to send again
    assert survivor.load_state("c-1") is not None
    assert kafka.changelog["app-customers-changelog"] == state_before
