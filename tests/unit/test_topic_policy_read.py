"""Reading a topic's cleanup.policy right after making it: a broker that has not applied
the new topic yet answers without a value, and the policy is asked for again
(streams.kafka.topic_admin._cleanup_policy)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from cxstream.streams.kafka.topic_admin import _cleanup_policy


class Admin:
    """describe_configs answering with no entry ``unknown_for`` times, then the value."""

    def __init__(self, unknown_for: int, value: str = "compact") -> None:
        self.unknown_for = unknown_for
        self.value = value
        self.asked = 0

    async def describe_configs(self, resources: list[Any]) -> list[Any]:
        self.asked += 1
        entries = [] if self.asked <= self.unknown_for else [
            ("cleanup.policy", self.value, False, False, False)]
        return [SimpleNamespace(resources=[(0, "", 2, resources[0].name, entries)])]


def test_a_policy_not_known_yet_is_asked_for_again() -> None:
    admin = Admin(unknown_for=3)
    assert asyncio.run(_cleanup_policy(admin, "t", pause=0)) == "compact"  # type: ignore[arg-type]
    assert admin.asked == 4


def test_a_topic_never_known_gives_no_policy_after_the_tries() -> None:
    admin = Admin(unknown_for=100)
    assert asyncio.run(_cleanup_policy(admin, "t", tries=5, pause=0)) is None  # type: ignore[arg-type]
    assert admin.asked == 5


def test_a_known_policy_is_read_once() -> None:
    admin = Admin(unknown_for=0, value="delete")
    assert asyncio.run(_cleanup_policy(admin, "t", pause=0)) == "delete"  # type: ignore[arg-type]
    assert admin.asked == 1
