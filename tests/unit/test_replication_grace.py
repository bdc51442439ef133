"""Topic creation waits a little for the brokers its replication factor needs: a broker
restarting, or fenced for a moment on a loaded machine, is missing from the cluster's
description for a few seconds."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from cxstream.streams.kafka.clients import TopicLayoutError, replication_factor
from cxstream.streams.settings import load_settings


class Admin:
    """describe_cluster answers with ``counts`` brokers in turn (the last one after)."""

    def __init__(self, counts: list[int]) -> None:
        self.counts = counts
        self.asked = 0

    async def describe_cluster(self) -> dict[str, Any]:
        count = self.counts[min(self.asked, len(self.counts) - 1)]
        self.asked += 1
        return {"brokers": [{"node_id": n} for n in range(1, count + 1)]}


def test_a_broker_back_within_the_grace_is_waited_for() -> None:
    settings = load_settings({}, replication_factor="3")
    admin = Admin([2, 2, 3])
    assert asyncio.run(replication_factor(admin, settings, grace_seconds=10)) == 3  # type: ignore[arg-type]
    assert admin.asked == 3


def test_too_few_brokers_after_the_grace_are_refused_naming_the_setting() -> None:
    settings = load_settings({}, replication_factor="3")
    admin = Admin([2])
    began = time.monotonic()
    with pytest.raises(TopicLayoutError, match="CXSTREAM_REPLICATION_FACTOR=3 is more than"):
        asyncio.run(replication_factor(admin, settings, grace_seconds=1.5))  # type: ignore[arg-type]
    assert 1.0 <= time.monotonic() - began < 5 and admin.asked >= 2


def test_a_worker_with_its_topics_made_is_not_held_by_a_missing_broker() -> None:
    settings = load_settings({}, replication_factor="3")
    admin = Admin([2])
    assert asyncio.run(replication_factor(admin, settings, strict=False)) == 3  # type: ignore[arg-type]
    assert admin.asked == 1
