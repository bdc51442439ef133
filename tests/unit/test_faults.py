"""Counting webhook re-posts that a SIGKILL explains (cxstream/faults.py)."""

from __future__ import annotations

import json

from testkit.faults import IN_FLIGHT_SECONDS, in_flight_reposts
from tests.receiver import Received


def post(alert_id: str, at: float) -> Received:
    return Received({"alert_id": alert_id}, True, alert_id, received_at=at)


def test_only_a_repost_of_an_alert_first_posted_just_before_a_kill_is_explained() -> None:
    kill = 100.0
    received = [
        post("a", kill - IN_FLIGHT_SECONDS / 2), post("a", kill + 9),  # commit cut off
        post("b", kill - 5), post("b", kill + 9),  # committed long before: a defect
        post("c", kill + 1),  # posted once
        post("d", kill + 2), post("d", kill + 3),  # after the kill: a defect
    ]
    assert in_flight_reposts(received, [kill]) == 1
    assert in_flight_reposts(received, []) == 0
    assert in_flight_reposts(received, [kill, kill + 2.2]) == 2  # "d" before a second kill


def test_a_follow_up_of_an_alert_is_a_post_of_its_own_not_a_repost() -> None:
    kill = 100.0
    resolved = Received({"alert_id": "a"}, True, "a.resolved", received_at=kill + 9)
    received = [post("a", kill - IN_FLIGHT_SECONDS / 2), resolved]
    assert in_flight_reposts(received, [kill]) == 0


def test_seeded_cases_are_valid_cases_of_earlier_weeks_none_due_during_a_soak() -> None:
    """The soak's seeded alert cases: stored as the worker stores them, one in twenty
    unresolved and due long after the soak, the rest resolved within the retention; in
    the partition the worker's table would put them."""
    from datetime import UTC, datetime, timedelta

    from aiokafka.partitioner import DefaultPartitioner

    from cxstream.schemas.outputs import AlertCase
    from testkit.soak import SEEDED, seeded_cases

    start = datetime(2026, 12, 6, tzinfo=UTC)
    seeded = list(seeded_cases(200, 0.05, start))
    cases = [AlertCase.model_validate_json(value) for _, value in seeded]
    assert [key.decode() for key, _ in seeded] == [case.alert_id for case in cases]
    assert len({key for key, _ in seeded}) == 200 and all(
        case.alert_id.startswith(SEEDED) for case in cases)
    unresolved = [case for case in cases if case.status != "resolved"]
    assert len(unresolved) == 10
    assert all(case.deadline() is not None and case.deadline() > start + timedelta(days=30)
               for case in unresolved)
    assert all(case.resolved_at is not None
               and start - timedelta(days=30) < case.resolved_at < start
               for case in cases if case.status == "resolved")
    partitioner = DefaultPartitioner()
    parts = {partitioner(key, [0, 1, 2, 3], [0, 1, 2, 3]) for key, _ in seeded}
    assert parts == {0, 1, 2, 3}  # spread as the producer spreads them


def test_the_unresolved_cases_on_the_topic_count_untouched_seeded_ones_by_their_id() -> None:
    """The soak compares this count with the worker's list: seeded cases the team did not
    touch are not read (a million of them), yet each unresolved one counts."""
    import dataclasses
    from datetime import UTC, datetime

    from testkit.soak import SoakPlan, _unresolved, seeded_cases

    plan = dataclasses.replace(SoakPlan(), seed_cases=200, seed_open_share=0.05)
    seeded = {key.decode(): json.loads(value) for key, value in
              seeded_cases(200, 0.05, datetime(2026, 12, 6, tzinfo=UTC))}
    expected = sum(case["status"] != "resolved" for case in seeded.values())
    untouched = {alert_id: {} for alert_id in seeded}  # as the soak holds them
    assert _unresolved(untouched, plan) == expected == 10
    touched = dict(untouched, **{"seed-000000000000": {"status": "resolved"},
                                 "a-1": {"status": "acknowledged"}})
    assert _unresolved(touched, plan) == expected  # one resolved, one new


def test_the_rss_of_a_process_that_has_just_exited_is_no_figure_not_a_crash() -> None:
    """The soak's sampler and restarter read the worker's VmRSS; a worker exiting at that
    moment (a zombie: no memory lines) once ended the sampler thread, and with it every
    later sample."""
    from testkit.soak import vmrss_mib

    assert vmrss_mib("Name:\tpython\nState:\tS (sleeping)\nVmRSS:\t  524288 kB\n") == 512.0
    assert vmrss_mib("Name:\tpython\nState:\tZ (zombie)\nThreads:\t1\n") is None
