"""The throughput bench's events: a fixed count whatever the hour, so its runs compare."""

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
