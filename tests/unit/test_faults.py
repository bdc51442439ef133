"""Counting webhook re-posts that a SIGKILL explains (cxstream/faults.py)."""

from __future__ import annotations

from tests.faults import IN_FLIGHT_SECONDS, in_flight_reposts
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
