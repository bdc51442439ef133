"""What the worker counts instead of dropping in silence: fields the contract does not
name (bounded labels, one log line per name) and events too old for the customer rules
(one log line per batch)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry

from cxstream.alerts.customer_core import BatchOutcome, count_too_old
from cxstream.streams.ingest.unknown_fields import MAX_NAMED_FIELDS, OTHER, UnknownFields
from cxstream.streams.metrics import WorkerMetrics


def sample(metrics: WorkerMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_unknown_fields_are_counted_by_name_up_to_the_bound_then_as_other(
        caplog: pytest.LogCaptureFixture) -> None:
    metrics = WorkerMetrics(CollectorRegistry())
    unknown = UnknownFields(metrics.unknown_fields)
    names = [f"field_{n}" for n in range(MAX_NAMED_FIELDS + 8)]
    with caplog.at_level(logging.INFO, logger="cxstream.streams.ingest.unknown_fields"):
        for _ in range(3):
            unknown.note("cx.feedback", ["comments", *names])
    total = "cxstream_unknown_fields_total"
    assert sample(metrics, total, topic="cx.feedback", field="comments") == 3
    assert sample(metrics, total, topic="cx.feedback", field=OTHER) == 3 * 9
    labelled = {s.labels["field"] for family in metrics.registry.collect()
                if family.name == "cxstream_unknown_fields" for s in family.samples
                if s.name == total}
    assert len(labelled) == MAX_NAMED_FIELDS + 1  # the bound, and (other)
    assert len(caplog.records) == MAX_NAMED_FIELDS  # one line per named field, once
    assert "'comments' is not in the contract" in caplog.records[0].getMessage()
    unknown.note("cx.interactions", ["x" * 500])  # each topic its own bound; names clipped
    assert sample(metrics, total, topic="cx.interactions", field="x" * 64) == 1


def test_events_too_old_for_the_rules_are_counted_by_kind_and_logged_once_per_batch(
        caplog: pytest.LogCaptureFixture) -> None:
    metrics = WorkerMetrics(CollectorRegistry())
    old = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    result = BatchOutcome(too_old=[("feedback", old), ("feedback", old.replace(hour=10)),
                                   ("interaction", old.replace(hour=11))])
    with caplog.at_level(logging.INFO, logger="cxstream.alerts.customer_core"):
        count_too_old(result, metrics.events_too_old_for_rules)
        count_too_old(BatchOutcome(), metrics.events_too_old_for_rules)  # none: silent
    total = "cxstream_events_too_old_for_rules_total"
    assert sample(metrics, total, kind="feedback") == 2
    assert sample(metrics, total, kind="interaction") == 1
    assert len(caplog.records) == 1
    assert "3 event(s) older than" in caplog.records[0].getMessage()
    assert "2026-12-01T09:00:00+00:00" in caplog.records[0].getMessage()
