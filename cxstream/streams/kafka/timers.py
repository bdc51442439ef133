"""Timers that act on state run only while the worker serves its partitions.

Restoring state never acts: while a table is read back from its changelog (at start-up,
after a rebalance) it passes through each value's older states, and a timer reading one
of them would act on the past (escalate an alert that was resolved since, send a survey
request already sent). So a state timer skips its tick, counted, until the worker's
tables are restored, it is in its group and it is not stopping; side effects come from
new input and from timers on served partitions only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from cxstream.streams.metrics import WorkerMetrics

log = logging.getLogger(__name__)

Tick = Callable[[], Awaitable[Any]]


def is_serving(app: Any) -> bool:
    """The worker holds its partitions with every table restored, and is not stopping."""
    recovery = app.tables.recovery
    return (not app.should_stop and not recovery.in_recovery and not app.rebalancing
            and recovery.completed.is_set())


async def run_tick(name: str, tick: Tick, serving: Callable[[], bool],
                   metrics: WorkerMetrics) -> bool:
    """Run one tick of timer ``name`` if the worker serves its partitions; returns whether
    it ran. A failure is logged and counted; the next tick tries again."""
    if not serving():
        metrics.timer_ticks.labels(name, "waited").inc()
        return False
    began = time.perf_counter()
    try:
        await tick()
    except Exception:  # the next tick tries again; nothing is lost meanwhile
        log.exception("timer %s failed", name)
        metrics.timer_ticks.labels(name, "failed").inc()
        return True
    finally:
        metrics.timer_seconds.labels(name).observe(time.perf_counter() - began)
    metrics.timer_ticks.labels(name, "ran").inc()
    return True


def state_timer(app: Any, seconds: float, metrics: WorkerMetrics
                ) -> Callable[[Tick], Tick]:
    """``@app.timer(seconds)`` for a timer that reads or writes state: its ticks wait
    while the worker does not serve its partitions (``is_serving``)."""
    def register(tick: Tick) -> Tick:
        name = tick.__name__

        async def guarded() -> None:
            await run_tick(name, tick, lambda: is_serving(app), metrics)

        guarded.__name__ = guarded.__qualname__ = name
        app.timer(seconds, name=f"cxstream.{name}")(guarded)
        return guarded
    return register
