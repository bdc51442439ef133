"""Liveness and readiness for orchestrators: ``/healthz`` and ``/readyz``.

``/healthz`` answers 200 while the process serves HTTP. ``/readyz`` answers 200 once the
worker is in its group with its tables recovered, and 503 with the reason while it is
starting, rebalancing, recovering a table, stopping, or while the stall watchdog sees
partitions that stopped moving. Neither needs a token; neither carries data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cxstream.streams.health.watchdog import StallWatchdog, recovery_progress


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str  # ready, starting, rebalancing, recovering, stalled, stopping


def readiness(app: Any, watchdog: StallWatchdog | None) -> Readiness:
    """Whether the worker should get traffic now, and why not."""
    if app.should_stop:
        return Readiness(False, "stopping")
    recovery = app.tables.recovery
    if recovery.in_recovery:
        return Readiness(False, "recovering")
    if app.rebalancing:
        return Readiness(False, "rebalancing")
    if not recovery.completed.is_set():
        return Readiness(False, "starting")  # no assignment recovered yet
    if watchdog is not None and watchdog.stalled:
        return Readiness(False, "stalled")
    return Readiness(True, "ready")


def recovery_remaining(app: Any) -> int:
    """Changelog records a table recovery still has to read (0 when none runs)."""
    recovery = app.tables.recovery
    if not recovery.in_recovery:
        return 0
    read, last = recovery_progress(recovery.active_offsets, recovery.active_highwaters)
    remaining = 0
    for tp, end in last.items():
        applied = read.get(tp)
        remaining += max(0, end - (-1 if applied is None else applied))
    return remaining
