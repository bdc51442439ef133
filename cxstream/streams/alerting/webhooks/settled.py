"""What earlier owners of the sink's partitions posted: read back from the settled topic
(``read_settled``), and the sink's part in a rebalance (``OnRebalance``)."""

from __future__ import annotations

import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)


def expired_unsent(committed: dict[TopicPartition, int | None],
                   firsts: dict[TopicPartition, int]) -> int:
    """Alerts the topic's retention deleted before the webhook received them (logged per
    partition, with what to do)."""
    lost_in_all = 0
    for tp, done in committed.items():
        first = firsts[tp]
        if done is not None and done < first:
            lost = first - done
            lost_in_all += lost
            log.error("%d alerts of %s[%d] were deleted by the topic's retention before "
                      "the webhook received them (offsets %d-%d): raise retention.ms of "
                      "%s above the longest receiver outage", lost, tp.topic,
                      tp.partition, done, first - 1, tp.topic)
    return lost_in_all


async def read_settled(reader: AIOKafkaConsumer, settled_topic: str, committed: dict[int, int],
                       since_ms: int, stall_seconds: float
                       ) -> tuple[dict[int, set[int]], list[str]]:
    """Per partition of ``committed`` (partition -> commit), the offsets at or above its
    commit settled since ``since_ms``, and the webhook ids settled (WebhookSink.learn_settled
    says why)."""
    settled: dict[int, set[int]] = {partition: set() for partition in committed}
    ids: list[str] = []
    tps = [TopicPartition(settled_topic, partition) for partition in committed]
    found = await reader.offsets_for_times({tp: since_ms for tp in tps})
    ends = await reader.end_offsets(tps)
    todo = {tp for tp in tps if (at := found.get(tp)) is not None and at.offset < ends[tp]}
    if not todo:
        return settled, ids  # nothing that recent
    reader.assign(list(todo))
    for tp in todo:
        reader.seek(tp, found[tp].offset)
    deadline = time.monotonic() + stall_seconds
    try:
        while todo:
            batches = await reader.getmany(*todo, timeout_ms=1000, max_records=10_000)
            for tp, messages in batches.items():
                for message in messages:
                    offset = int(message.value)
                    if offset >= committed[tp.partition]:
                        settled[tp.partition].add(offset)
                    if message.key:
                        ids.append(message.key.decode())
            if batches:
                deadline = time.monotonic() + stall_seconds
            elif time.monotonic() > deadline:
                raise KafkaError(f"no record of {settled_topic} read for "
                                 f"{stall_seconds:g} s")
            todo = {tp for tp in todo if await reader.position(tp) < ends[tp]}
    finally:
        reader.unsubscribe()  # it would fetch the idle partitions meanwhile
    return settled, ids


class OnRebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Before partitions move: commit what is settled, then hand over what is not. A
    partition assigned again is learnt again from the settled topic: another process may
    have delivered alerts of it meanwhile."""

    def __init__(self, sink: Any, consumer: AIOKafkaConsumer) -> None:
        self.sink = sink
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked: Any) -> None:
        try:
            await self.sink.commit(self.consumer)
        except KafkaError:
            log.info("webhook sink: commit before a rebalance failed")
        self.sink.revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        return None
