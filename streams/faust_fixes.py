"""Corrections to faust-streaming 0.15.3 that the worker cannot do without.

Each closes a way for an input message to be skipped for good around a rebalance (the
last one saves work). Written by hand because no release of faust-streaming has them.

1. Acknowledged skips (``Consumer.ack``). When a stream takes a message from its queue
   while flow control is suspended (a rebalance, or the worker stopping) or while the
   message belongs to an older consumer generation, Faust skips the message *and
   acknowledges it* (``Stream._py_aiter``, "Skipping message ... with generation_id").
   The acknowledgement lets the next commit move past a message nobody processed; when
   the partition then moves to another worker, that worker starts after it and the
   message is lost. A two-worker test where one worker stops mid-stream lost about one
   event in six this way, in about a run in four.

   The fix: a message that no stream has started processing (Faust marks it ``tracked``
   the moment a stream takes it for real) is never recorded as acknowledged. Its offset
   stays a gap, so commits stop before it, and it is read again after the seek to the
   committed offsets that follows every rebalance (or by the partition's next owner).

2. No seek without a committed offset (``AIOKafkaConsumerThread.seek_to_committed``).
   Faust drops fetched records it cannot deliver (a generation change in the middle of a
   fetched batch, a paused partition) and relies on "seek back to the committed offset"
   to read them again. aiokafka's ``seek_to_committed`` does nothing for a partition
   whose committed offset is missing or 0, so on a partition the group has not committed
   yet (a new group, or acknowledgements that Faust discarded at a revocation) the
   records were never read again and their gap blocked every later commit. The same
   two-worker test lost the second half of two partitions this way, about a run in 15.

   The fix: with ``consumer_auto_offset_reset="earliest"``, input partitions (the topics
   streams acknowledge) with no committed offset, or 0, are sought to their first offset,
   which is what a missing offset means under that policy. Changelog partitions are left
   to the table recovery, which positions them itself.

3. A commit past an unprocessed first message (``Consumer._new_offset``). Faust keeps the
   committed offset as Kafka does, the next offset to read, but checks for a gap at the
   head of the acknowledged offsets as if it were the last offset read: with offsets
   101, 102... acknowledged after a commit at 100, it committed 103 and the message at
   100 was never processed. Fix 1 made this reachable (the message skipped at 100 is no
   longer acknowledged); the two-worker test lost exactly the first message after the
   committed offset of one partition, about a run in 15.

   The fix: the same computation with the head check corrected (``commit_offset``).

4. Acknowledgements forgotten at a revocation (``Consumer.on_partitions_revoked``): Faust
   drops the acknowledged offsets of revoked partitions before its revocation handler
   commits, so everything processed since the last periodic commit was read and
   processed again after every rebalance (harmless, see below, but wasted). The fix
   commits what is acknowledged first.

At-least-once is kept in every case; the state's de-duplication by event id and offset
makes the second read harmless.

Left as it is, and logged: after a rebalance Faust resumes the input partitions before it
seeks them to the committed offsets, so records fetched in between are delivered and
processed, and the rest of that fetch then looks like a jump over offsets, which Faust
counts as processed (a gap, as for a compacted topic). In the runs looked at, the offsets
in such a jump had been processed before the seek. Seeking first made the worker stop
fetching after a handover in 2 of 3 runs, so the order stays, and each jump is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from intervaltree import IntervalTree

log = logging.getLogger(__name__)

_APPLIED = "_cxstream_fixes_applied"


def apply() -> None:
    """Patch Faust once per process."""
    if getattr(Consumer, _APPLIED, False):
        return
    original_ack = Consumer.ack

    def ack(self: Any, message: Any) -> bool:
        if not message.tracked:
            return False  # skipped without being processed: leave it to be read again
        return original_ack(self, message)

    original_seek = AIOKafkaConsumerThread.seek_to_committed

    async def seek_to_committed(self: Any) -> Mapping[Any, int]:
        committed = await original_seek(self)
        unset = unsought_partitions(committed, self.app.topics.acking_topics,
                                    self.app.conf.consumer_auto_offset_reset)
        if unset:
            await self.call_thread(self._ensure_consumer().seek_to_beginning, *unset)
        return committed

    original_add_gap = Consumer._add_gap

    async def add_gap(self: Any, tp: Any, offset_from: int, offset_to: int) -> None:
        # offsets Faust will count as done without reading them since its last seek:
        # right for compacted or transactional topics and after a rebalance (see above),
        # a loss anywhere else, so say it
        log.warning("Faust counts offsets %d..%d of %s[%d] as processed without a "
                    "delivery since its last seek", offset_from, offset_to - 1, tp.topic,
                    tp.partition)
        await original_add_gap(self, tp, offset_from, offset_to)

    def new_offset(self: Any, tp: Any) -> int | None:
        return commit_offset(self._acked[tp], self._acked_index[tp], self._gap[tp],
                             self._committed_offset[tp])

    original_revoked = Consumer.on_partitions_revoked

    async def on_partitions_revoked(self: Any, revoked: Any) -> None:
        try:
            await self.commit()  # before Faust forgets what was acknowledged
        except Exception as exc:  # the revocation must go on: the events are read again
            log.warning("could not commit before the revocation: %r", exc)
        await original_revoked(self, revoked)

    Consumer.on_partitions_revoked = on_partitions_revoked  # type: ignore[method-assign]
    Consumer._new_offset = new_offset  # type: ignore[method-assign]
    Consumer._add_gap = add_gap  # type: ignore[method-assign]
    Consumer.ack = ack  # type: ignore[method-assign]
    AIOKafkaConsumerThread.seek_to_committed = seek_to_committed  # type: ignore[method-assign]
    setattr(Consumer, _APPLIED, True)


def unsought_partitions(committed: Mapping[Any, int | None], acking_topics: set[str],
                        reset_policy: str) -> list[Any]:
    """Input partitions that aiokafka's seek_to_committed left where they were: no
    committed offset, or 0 (only under the "earliest" policy, where both mean the start)."""
    if reset_policy != "earliest":
        return []
    return sorted((tp for tp, offset in committed.items()
                   if not offset and tp.topic in acking_topics), key=str)


def commit_offset(acked: list[int], acked_index: set[int], gaps: IntervalTree,
                  committed: int | None) -> int | None:
    """The offset to commit for one partition (the next one to read), or None.

    ``acked``: offsets processed since the last commit (consumed from the list and the
    index when committed); ``gaps``: offset ranges Faust never saw (compaction,
    transaction markers), which count as processed; ``committed``: the next offset to read
    as of the last commit. Commits only a run of consecutive offsets that starts at
    ``committed``: an offset missing there is a message still to process.
    """
    if not acked:
        return None
    if gaps:
        top = max(acked)
        pending = sorted(gaps.overlap(0, top), key=lambda interval: interval.begin)
        if pending:
            filled = [offset for interval in pending
                      for offset in range(interval.begin, interval.end)]
            acked.extend(filled)
            gaps.chop(0, max(filled[-1], top + 1))
    acked[:] = sorted(set(acked))  # a gap may repeat an acknowledged offset
    if committed is not None and acked[0] > committed:
        return None  # the message at ``committed`` has not been processed yet
    end = 1
    while end < len(acked) and acked[end] == acked[end - 1] + 1:
        end += 1
    run = acked[:end]
    del acked[:end]
    acked_index.difference_update(run)
    return run[-1] + 1
