"""The worker's core in this process, on in-memory tables, fed the records as Faust would
hand them over: what a worker would run if Faust and Kafka were free. The benches
(bench.throughput) time it; the tests read its outputs (testkit.support.outputs_of_core).
"""

from __future__ import annotations

import time
import zlib
from types import SimpleNamespace
from typing import Any

from prometheus_client import CollectorRegistry

from cxstream.alerts.config import load_rules
from cxstream.cli.simulator.generator import SimRecord
from cxstream.streams.core import CorePorts, CoreTables, build_core
from cxstream.streams.kafka.table_writers import BulkWrites
from cxstream.streams.metrics import WorkerMetrics
from cxstream.streams.settings import Settings


class _Event:
    """What the pipeline reads of a Faust event (weak-referenceable, as Faust's are)."""

    __slots__ = ("__weakref__", "message")

    def __init__(self, message: Any) -> None:
        self.message = message


class _Table:
    """The parts of a Faust table the state writer uses, in memory only."""

    def __init__(self, name: str, value_serializer: str) -> None:
        self.data: dict[bytes, Any] = {}
        self.key_serializer = "raw"
        self.value_serializer = value_serializer
        self.changelog_topic = SimpleNamespace(get_topic_name=lambda: f"{name}-changelog")

    def keys(self) -> Any:
        return self.data.keys()


def in_process_messages(settings: Settings, records: list[SimRecord],
                        next_offset: dict[tuple[str, int], int]) -> list[Any]:
    """The records as Faust would hand them over (topic, partition, offset, timestamp),
    offsets continuing from ``next_offset`` (updated)."""
    topics = {"customers": settings.topic_customers,
              "interactions": settings.topic_interactions, "feedback": settings.topic_feedback}
    events = []
    for record in records:
        topic, partition = topics[record.kind], zlib.crc32(record.key) % settings.partitions
        offset = next_offset.get((topic, partition), 0)
        next_offset[topic, partition] = offset + 1
        events.append(_Event(SimpleNamespace(topic=topic, partition=partition, offset=offset,
                                             timestamp=time.time(), key=record.key,
                                             value=record.value)))
    return events


def in_process_core(settings: Settings, emit: Any, changelog: Any) -> Any:
    """The worker's core as build_core puts it together, on in-memory tables, owning 4
    partitions: what a worker would run if Faust and Kafka were free."""
    tables = CoreTables(_Table("customers", "raw"), _Table("partials", "json"),
                        _Table("survey_memory", "raw"), _Table("issue_priorities", "raw"))
    return build_core(settings, load_rules(settings.rules_file), tables,
                      CorePorts(WorkerMetrics(CollectorRegistry()), lambda: set(range(4)), 4,
                                emit, None if changelog is None else BulkWrites(changelog)))
