"""The stall decision: which partitions have unread messages and a fetch position stuck."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cxstream.streams.health.watchdog import StallTracker


def test_a_partition_behind_whose_position_does_not_move_is_stalled_after_the_period() -> None:
    tracker = StallTracker(stall_seconds=30)
    assert tracker.find_stalls(0, {"p0": 10}, {"p0": 50}) == []
    assert tracker.find_stalls(29.9, {"p0": 10}, {"p0": 50}) == []
    assert tracker.find_stalls(30, {"p0": 10}, {"p0": 60}) == ["p0"]


def test_moving_positions_caught_up_and_unknown_partitions_are_never_stalled() -> None:
    tracker = StallTracker(stall_seconds=10)
    for second in range(0, 100, 5):
        found = tracker.find_stalls(second, {"moving": second, "caught_up": 7, "unknown": None},
                                    {"moving": 1_000, "caught_up": 7, "unknown": 99})
        assert found == []


def test_progress_restarts_the_clock() -> None:
    tracker = StallTracker(stall_seconds=10)
    tracker.find_stalls(0, {"p": 1}, {"p": 9})
    tracker.find_stalls(9, {"p": 2}, {"p": 9})  # moved at 9 s
    assert tracker.find_stalls(18, {"p": 2}, {"p": 9}) == []
    assert tracker.find_stalls(19, {"p": 2}, {"p": 9}) == ["p"]


def test_revoked_partitions_are_forgotten_and_start_afresh_when_assigned_again() -> None:
    tracker = StallTracker(stall_seconds=10)
    tracker.find_stalls(0, {"p": 1}, {"p": 9})
    tracker.find_stalls(5, {}, {})  # revoked
    assert "p" not in tracker.seen
    assert tracker.find_stalls(12, {"p": 1}, {"p": 9}) == []  # its clock starts at 12
    assert tracker.find_stalls(22, {"p": 1}, {"p": 9}) == ["p"]


def test_restart_clock_gives_a_resumed_partition_another_period() -> None:
    tracker = StallTracker(stall_seconds=10)
    tracker.find_stalls(0, {"p": 1}, {"p": 9})
    assert tracker.find_stalls(10, {"p": 1}, {"p": 9}) == ["p"]
    tracker.restart_clock(["p"], 10)
    assert tracker.find_stalls(19, {"p": 1}, {"p": 9}) == []
    assert tracker.find_stalls(20, {"p": 1}, {"p": 9}) == ["p"]


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=40))
def test_a_partition_is_reported_exactly_when_behind_and_unmoved_for_the_whole_period(
    steps: list[tuple[int, int]]
) -> None:
    """Each second the position advances and messages arrive; the period is 3 s."""
    tracker = StallTracker(stall_seconds=3)
    position, end, since = 0, 0, None
    for second, (advance, added) in enumerate(steps):
        end += added
        moved = min(position + advance, end)
        if end <= moved:
            since = None  # caught up
        elif since is None or moved != position:
            since = second  # behind, and the clock starts now
        position = moved
        expected = ["p"] if since is not None and second - since >= 3 else []
        assert tracker.find_stalls(second, {"p": position}, {"p": end}) == expected


def test_recovery_progress_reads_faust_bookkeeping() -> None:
    from cxstream.streams.health.watchdog import recovery_progress

    read, last = recovery_progress({"a": -1, "b": 26, "c": None, "empty": -1},
                                   {"a": 26, "b": 26, "c": 3, "empty": -1})
    assert last == {"a": 26, "b": 26, "c": 3}  # nothing to read in "empty"
    assert read == {"a": -1, "b": 26, "c": None}


def test_a_stalled_table_recovery_is_resumed_then_given_up() -> None:
    import asyncio
    from types import SimpleNamespace
    from typing import Any

    from faust.types import TP

    from cxstream.streams.health.watchdog import StallWatchdog

    log0, log1 = TP("app-t-changelog", 0), TP("app-t-changelog", 1)

    actions: list[Any] = []
    now = [0.0]

    async def seek(tp: Any, offset: int) -> None:
        actions.append(("seek", tp, offset))

    async def give_up(reason: str) -> None:
        actions.append(("give up", reason))

    recovery = SimpleNamespace(in_recovery=True, active_offsets={log0: 4, log1: 9},
                               active_highwaters={log0: 26, log1: 9},
                               completed=SimpleNamespace(is_set=lambda: False))
    consumer = SimpleNamespace(seek=seek, flow_active=True, _paused_partitions={log0},
                               resume_partitions=lambda tps: actions.append(("resume", tps)))
    app = SimpleNamespace(should_stop=False, rebalancing=True, consumer=consumer,
                          tables=SimpleNamespace(recovery=recovery), consumer_generation_id=3,
                          flow_control=SimpleNamespace(is_active=lambda: True))
    watchdog = StallWatchdog(app, {"in"}, 10, actions.append, give_up, lambda: now[0])
    for second in (0, 5, 9.9):
        now[0] = second
        asyncio.run(watchdog.check())
    assert actions == []  # log1 is done; log0 not stalled for 10 s yet
    now[0] = 10
    asyncio.run(watchdog.check())
    assert actions == ["resumed", ("resume", [log0]), ("seek", log0, 5)]
    actions.clear()
    now[0] = 20
    asyncio.run(watchdog.check())
    assert actions[0] == "gave_up" and actions[1][0] == "give up"
    assert "app-t-changelog[0] at 4 of 26" in actions[1][1]
    # what Faust's consumer said of flow and pauses, for a bug report
    assert "generation=3 flow_active=True" in actions[1][1]
    assert "paused_by_faust=['app-t-changelog[0]']" in actions[1][1]

    actions.clear()
    recovery.active_offsets[log0] = 5  # progress: a new period
    now[0] = 25
    asyncio.run(watchdog.check())
    assert actions == []
