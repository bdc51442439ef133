"""State timers wait while the worker restores a table, rebalances or stops: restoring
state never acts (streams.kafka.timers)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from cxstream.streams.kafka.timers import is_serving, run_tick
from cxstream.streams.metrics import WorkerMetrics


def app(in_recovery: bool = False, rebalancing: bool = False, stopping: bool = False,
        recovered_once: bool = True) -> Any:
    completed = asyncio.Event()
    if recovered_once:
        completed.set()
    return SimpleNamespace(should_stop=stopping, rebalancing=rebalancing, tables=SimpleNamespace(
        recovery=SimpleNamespace(in_recovery=in_recovery, completed=completed)))


@pytest.mark.parametrize(("state", "serving"), [
    ({}, True), ({"in_recovery": True}, False), ({"rebalancing": True}, False),
    ({"stopping": True}, False), ({"recovered_once": False}, False)])
async def test_a_worker_serves_only_with_its_tables_restored_and_its_group_settled(
        state: dict[str, bool], serving: bool) -> None:
    assert is_serving(app(**state)) is serving


async def test_a_tick_waits_counted_while_not_serving_and_runs_once_serving() -> None:
    metrics = WorkerMetrics(CollectorRegistry())
    acted: list[str] = []

    async def escalate() -> None:
        acted.append("escalated")

    serving = [False]
    assert await run_tick("check_alert_deadlines", escalate, lambda: serving[0], metrics) is False
    assert acted == []
    serving[0] = True
    assert await run_tick("check_alert_deadlines", escalate, lambda: serving[0], metrics)
    assert acted == ["escalated"]

    def count(outcome: str) -> float | None:
        return metrics.registry.get_sample_value(
            "cxstream_timer_ticks_total", {"timer": "check_alert_deadlines", "outcome": outcome})

    assert (count("waited"), count("ran")) == (1.0, 1.0)
    # only the tick that ran is timed (cxstream_timer_tick_seconds)
    assert metrics.registry.get_sample_value(
        "cxstream_timer_tick_seconds_count", {"timer": "check_alert_deadlines"}) == 1.0


async def test_a_failing_tick_is_counted_and_the_next_one_runs() -> None:
    metrics = WorkerMetrics(CollectorRegistry())

    async def broken() -> None:
        raise RuntimeError("broker away")

    assert await run_tick("send_waiting_surveys", broken, lambda: True, metrics)
    assert metrics.registry.get_sample_value(
        "cxstream_timer_ticks_total",
        {"timer": "send_waiting_surveys", "outcome": "failed"}) == 1.0


def test_every_timer_but_the_stall_watchdog_is_a_state_timer() -> None:
    # the watchdog reads no table and must run while a recovery is stuck (it resumes it)
    import re
    from pathlib import Path

    streams = Path(__file__).resolve().parents[2] / "cxstream" / "streams"
    plain = [(path.name, match.group(1)) for path in streams.rglob("*.py")
             if path.name != "timers.py"
             for match in re.finditer(r"@app\.timer\([^\n]*\n\s*async def (\w+)",
                                      path.read_text())]
    assert plain == [("topology.py", "watch_for_stalls")]
