"""The throughput bench's events: a fixed count whatever the hour, so its runs compare; its
in-process runs collect garbage as a worker does."""

from __future__ import annotations

import pytest

from bench.throughput import bench_records
from testkit.support import without_times


@pytest.mark.parametrize(("events", "customers"), [(3_000, 500), (500, 400), (60, 50)])
def test_the_bench_gets_exactly_the_events_it_asks_for_profiles_first(
        events: int, customers: int) -> None:
    records = bench_records(events, customers)
    assert len(records) == events
    assert all(record.kind == "customers" for record in records[:customers])
    assert {record.kind for record in records[customers:]} <= {
        "customers", "interactions", "feedback"}
    assert len({record.key for record in records[:customers]}) == customers


def test_the_later_pass_is_as_long_and_another_draw_of_the_same_customers() -> None:
    first, later = bench_records(3_000, 500), bench_records(3_000, 500, seed=6, later=True)
    assert len(later) == len(first)
    assert {r.key for r in later[:500]} == {r.key for r in first[:500]}
    assert without_times(later[500:]) != without_times(first[500:])


def test_the_in_process_runs_collect_garbage_as_a_worker_then_as_before() -> None:
    """The in-process own work stands for a worker: it runs with the worker's collector
    thresholds (not Python's) and gives the process its own back, even on a failure."""
    import gc
    import inspect

    from bench.throughput import fold_alone, gc_thresholds
    from cxstream.streams.worker import GC_THRESHOLDS

    assert inspect.signature(fold_alone).parameters["thresholds"].default == GC_THRESHOLDS
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        with gc_thresholds(GC_THRESHOLDS):
            assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_threshold() == (700, 10, 10)
        with pytest.raises(RuntimeError), gc_thresholds((5_000, 20, 20)):
            raise RuntimeError("a run that fails")
        assert gc.get_threshold() == (700, 10, 10)
        with gc_thresholds(None):  # the process's, as they are
            assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*before)


@pytest.mark.parametrize(("moment", "expected"), [
    ("2026-12-08T00:05:00", "2026-12-08T00:05:00"),  # just after midnight: kept
    ("2026-12-07T23:50:00", "2026-12-07T23:48:00"),  # 10 min before: moved earlier
    ("2026-12-07T23:48:00", "2026-12-07T23:48:00"),  # exactly 12 min before: kept
    ("2026-12-07T23:59:59", "2026-12-07T23:48:00"),
    ("2026-12-07T12:00:00", "2026-12-07T12:00:00"),
])
def test_a_test_moment_is_kept_clear_of_midnight(moment: str, expected: str) -> None:
    """Integration tests that count in day windows start where no midnight follows
    within their span, so they mean the same at any hour."""
    from datetime import UTC, datetime, timedelta

    from testkit.support import clear_of_midnight

    at = datetime.fromisoformat(moment).replace(tzinfo=UTC)
    moved = clear_of_midnight(at)
    assert moved == datetime.fromisoformat(expected).replace(tzinfo=UTC)
    span_end = moved + timedelta(minutes=12)
    assert moved <= at and (span_end.date() == moved.date() or span_end.time().min ==
                            span_end.time())
