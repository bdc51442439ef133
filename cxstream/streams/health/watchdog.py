"""Notice input partitions that stop being fetched, and get them moving again.

Why this exists: with faust-streaming 0.15.3 a worker whose assignment changes sometimes
keeps its new partitions paused after the rebalance; it stays in the group, heartbeats
and answers HTTP, but never fetches them again (docs/faust-risks.md). Kafka sees
a healthy member, so nothing else would ever move those partitions.

A partition is *stalled* when the broker holds messages beyond this worker's fetch
position and that position has not moved for ``stall_seconds`` while no rebalance is
under way. The decision is a plain function (``find_stalls``) so it is tested without a
broker; ``StallWatchdog`` feeds it from the consumer and applies the remedy: log the
consumer's state, resume fetching and seek to the committed offsets (effects are
idempotent, so re-reading a few messages is harmless). If the same partitions are still
stalled after another period, the worker stops with an error so its supervisor restarts
it (compose: ``restart: unless-stopped``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cxstream.streams.kafka.faust_compat.access import active_partitions, paused_partitions

log = logging.getLogger(__name__)

EXIT_STALLED = 75  # EX_TEMPFAIL: restart me


@dataclass
class Progress:
    """Where one partition's fetch position was, and since when it has not moved."""

    position: int
    since: float


@dataclass
class StallTracker:
    """Remembers fetch positions between checks; reports partitions stuck for too long."""

    stall_seconds: float
    seen: dict[Any, Progress] = field(default_factory=dict)

    def reset(self) -> None:
        self.seen.clear()

    def find_stalls(self, now: float, positions: Mapping[Any, int | None],
                    highwaters: Mapping[Any, int]) -> list[Any]:
        """Partitions with messages beyond a position that has not moved for stall_seconds.

        ``positions`` are the next offsets this worker will fetch; ``highwaters`` the
        broker's end offsets. A partition without a known position, or one that is
        caught up, is never stalled, and its clock restarts.
        """
        stalled = []
        for tp, position in positions.items():
            end = highwaters.get(tp)
            if position is None or end is None or end <= position:
                self.seen.pop(tp, None)
                continue
            before = self.seen.get(tp)
            if before is None or before.position != position:
                self.seen[tp] = Progress(position, now)
            elif now - before.since >= self.stall_seconds:
                stalled.append(tp)
        for tp in set(self.seen) - set(positions):
            del self.seen[tp]
        return sorted(stalled, key=str)

    def restart_clock(self, tps: list[Any], now: float) -> None:
        for tp in tps:
            if tp in self.seen:
                self.seen[tp].since = now


class StallWatchdog:
    """Runs ``check`` on a timer inside the worker (see module docstring)."""

    def __init__(self, app: Any, input_topics: set[str], stall_seconds: float,
                 on_stall: Callable[[str], None],
                 give_up: Callable[[str], Awaitable[None]],
                 clock: Callable[[], float]) -> None:
        self.app = app
        self.input_topics = input_topics
        self.tracker = StallTracker(stall_seconds)
        self.on_stall = on_stall
        self.give_up = give_up
        self.clock = clock
        self.remedied: set[Any] = set()
        # the same decision for the changelog partitions a table recovery reads
        self.recovery_tracker = StallTracker(stall_seconds)
        self.recovery_remedied: set[Any] = set()
        #: whether the last check found partitions stalled (readiness: streams.health.readiness)
        self.stalled = False

    async def check(self) -> None:
        self.stalled = False
        app = self.app
        recovery = app.tables.recovery
        if not app.should_stop and recovery.in_recovery:
            self.tracker.reset()
            self.remedied.clear()
            await self._check_recovery(recovery)
            return
        self.recovery_tracker.reset()
        self.recovery_remedied.clear()
        if app.should_stop or app.rebalancing or not recovery.completed.is_set():
            self.tracker.reset()
            self.remedied.clear()
            return
        consumer = app.consumer
        tps = [tp for tp in consumer.assignment() if tp.topic in self.input_topics]
        if not tps:
            self.tracker.reset()
            return
        highwaters = await consumer.highwaters(*tps)
        positions = {tp: await consumer.position(tp) for tp in tps}
        stalled = self.tracker.find_stalls(self.clock(), positions, highwaters)
        self.stalled = bool(stalled)
        if not stalled:
            self.remedied.clear()
            return
        await self._remedy("input partitions", stalled,
                           describe(app, stalled, positions, highwaters),
                           self.remedied, self.tracker, lambda: resume(app, stalled))

    async def _remedy(self, what: str, stalled: list[Any], described: str,
                      remedied: set[Any], tracker: StallTracker,
                      resume_them: Callable[[], Awaitable[None]]) -> None:
        """Resume stalled partitions once; give up if the same ones stall again."""
        if set(stalled) <= remedied:
            log.error("%s still stalled after resuming them: %s", what, described)
            self.on_stall("gave_up")
            await self.give_up(f"{what} stalled: {described}")
            return
        log.warning("%s stalled, resuming them: %s", what, described)
        self.on_stall("resumed")
        await resume_them()
        remedied |= set(stalled)
        tracker.restart_clock(stalled, self.clock())

    async def _check_recovery(self, recovery: Any) -> None:
        """A table recovery whose changelog partitions stop being read (Faust logs "No
        event received for active tp ... since recovery start" and waits for ever)."""
        read, last = recovery_progress(recovery.active_offsets, recovery.active_highwaters)
        stalled = self.recovery_tracker.find_stalls(self.clock(), read, last)
        self.stalled = bool(stalled)
        if not stalled:
            self.recovery_remedied.clear()
            return
        described = ", ".join(f"{tp.topic}[{tp.partition}] at {read[tp]} of {last[tp]}"
                              for tp in stalled) + " | " + consumer_state(self.app, stalled)

        async def resume_reading() -> None:
            consumer = self.app.consumer
            consumer.resume_partitions(stalled)
            for tp in stalled:
                await consumer.seek(tp, (read[tp] or 0) + 1)  # the next record to apply

        await self._remedy("changelog partitions of a table recovery", stalled, described,
                           self.recovery_remedied, self.recovery_tracker, resume_reading)


def recovery_progress(offsets: Mapping[Any, int | None], highwaters: Mapping[Any, int | None]
                      ) -> tuple[dict[Any, int | None], dict[Any, int]]:
    """(last changelog offset applied, last offset to apply) per partition being recovered,
    from Faust's recovery bookkeeping; a partition with nothing to read is left out."""
    last = {tp: end for tp, end in highwaters.items() if end is not None and end >= 0}
    return {tp: offsets.get(tp) for tp in last}, last


async def resume(app: Any, tps: list[Any]) -> None:
    """Undo a pause left behind by a rebalance, then fetch again from the committed offsets."""
    consumer = app.consumer
    consumer.resume_partitions(tps)
    app.flow_control.resume()
    consumer.resume_flow()
    await consumer.perform_seek()


def describe(app: Any, stalled: list[Any], positions: Mapping[Any, int | None],
             highwaters: Mapping[Any, int]) -> str:
    """One line with what an operator (or a Faust bug report) needs."""
    parts = [f"{tp.topic}[{tp.partition}] at {positions[tp]} of {highwaters[tp]}"
             for tp in stalled]
    return "; ".join(parts) + " | " + consumer_state(app, stalled)


def consumer_state(app: Any, stalled: list[Any]) -> str:
    """What Faust's consumer says about flow and pauses, for the stall log line."""
    consumer = app.consumer
    paused = paused_partitions(consumer)
    active = active_partitions(consumer)
    state = (f"generation={getattr(app, 'consumer_generation_id', '?')} "
             f"flow_active={getattr(consumer, 'flow_active', '?')} "
             f"flow_control_active={app.flow_control.is_active()} "
             f"paused_by_faust={sorted(f'{t.topic}[{t.partition}]' for t in paused)} "
             f"stalled_not_active={sorted(str(t.partition) for t in stalled if t not in active)}")
    return state
