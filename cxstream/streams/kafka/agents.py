"""What every agent and table of a worker shares: the partitions it owns of a topic, and
its input in batches."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from cxstream.streams.settings import Settings


def owned_partitions(app: Any, topic: str) -> set[int]:
    """The partitions of ``topic`` the app's consumer owns as active (not as standby)."""
    return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic}


class OwnedPartitions:
    """``owned_partitions`` of one topic, as a callable to hand to the parts that ask at
    each batch and rebalance (the topic's name is read at the call: Faust may prefix an
    internal topic's name with the app id)."""

    def __init__(self, app: Any, topic: Any) -> None:
        self.app = app
        self.topic = topic

    def __call__(self) -> set[int]:
        name = self.topic if isinstance(self.topic, str) else self.topic.get_topic_name()
        return owned_partitions(self.app, name)


def batches(stream: Any, settings: Settings) -> AsyncIterator[list[Any]]:
    """An agent's events in batches of CXSTREAM_BATCH_SIZE, or what came within
    CXSTREAM_BATCH_TIMEOUT_SECONDS (Faust's ``take_events``: fix 14 takes them in bulk)."""
    taken: AsyncIterator[list[Any]] = stream.take_events(
        settings.batch_size, within=settings.batch_timeout_seconds)
    return taken
