"""Topic creation waits a little for the brokers its replication factor needs: a broker
restarting, or fenced for a moment on a loaded machine, is missing from the cluster's
description for a few seconds."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest

from cxstream.streams.kafka.topic_admin import TopicLayoutError, replication_factor
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


class Refusing:
    """create_topics answers with the errors given per topic."""

    def __init__(self, errors: dict[str, tuple[int, str | None]]) -> None:
        self.errors = errors

    async def create_topics(self, topics: list[Any], timeout_ms: int) -> Any:
        return SimpleNamespace(
            topic_errors=[(t.name, *self.errors.get(t.name, (0, None))) for t in topics])


def test_every_topic_the_broker_refuses_is_named_with_its_error() -> None:
    from aiokafka.admin import NewTopic
    from aiokafka.errors import InvalidReplicationFactorError, TopicAlreadyExistsError

    from cxstream.streams.kafka.topic_admin import create_topics

    admin = Refusing({
        "cx.a": (InvalidReplicationFactorError.errno, "Replication factor: 3 larger than "
                 "available brokers: 1."),
        "cx.b": (TopicAlreadyExistsError.errno, None),  # made meanwhile: no error
        "cx.c": (InvalidReplicationFactorError.errno, None)})
    with pytest.raises(TopicLayoutError) as refused:
        asyncio.run(create_topics(admin, [NewTopic(n, 1, 3) for n in  # type: ignore[arg-type]
                                          ("cx.a", "cx.b", "cx.c", "cx.d")]))
    text = str(refused.value)
    assert "cx.a: InvalidReplicationFactorError (Replication factor: 3 larger" in text
    assert "cx.c: InvalidReplicationFactorError (Replication-factor is invalid.)" in text
    assert "cx.b" not in text and "cx.d" not in text
    asyncio.run(create_topics(Refusing({}), [NewTopic("cx.d", 1, 1)]))  # type: ignore[arg-type]
