"""Dead letters exactly once per bad input, across restarts, rebalances and broker restarts.

Three parts, each closing one way a bad input could be dead-lettered twice:
- an idempotent producer (``enable_idempotence``): a produce request retried by the client
  after a lost acknowledgement is not written twice;
- a mark per input partition, kept in a changelogged table and written with the batch's
  other state before its offsets can be committed: the highest input offset dead-lettered
  and the dead-letter offset after it (``DeadLetterMark``); a redelivered input at or below the mark
  is skipped;
- for what a crash can leave between a record's acknowledgement and its mark: every input
  partition writes to one dead-letter partition
  (streams.ingest.deadletter_record.deadletter_partition),
  so after an assignment, and after any failed send, the worker reads that partition from
  the mark's dead-letter offset to its end and skips the inputs found there.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from cxstream.streams.ingest.deadletter_record import DeadLetter, deadletter_partition, read_headers
from cxstream.streams.kafka.changelog import BulkChangelog
from cxstream.streams.kafka.faust_compat.access import table_store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeadLetterMark:
    """Input offsets up to ``offset`` are dead-lettered (or were valid); the dead-letter
    partition held ``next`` records after the last of them (None: not known)."""

    offset: int = -1
    next: int | None = None

    def encode(self) -> bytes:
        return json.dumps({"offset": self.offset, "next": self.next}).encode()

    @staticmethod
    def decode(raw: bytes | None) -> DeadLetterMark:
        if raw is None:
            return DeadLetterMark()
        value = json.loads(raw)
        if isinstance(value, int):  # the first format: the offset alone
            return DeadLetterMark(offset=value)
        return DeadLetterMark(offset=int(value["offset"]), next=value.get("next"))


class MarkStore(Protocol):
    def get(self, topic: str, partition: int) -> DeadLetterMark: ...

    def set(self, topic: str, partition: int, mark: DeadLetterMark) -> None: ...


class DeadLetterTopic(Protocol):
    """The Kafka side: where records go, how to send them, how to read them back."""

    def partition_for(self, topic: str, partition: int) -> int: ...

    async def send(self, partition: int, records: Sequence[DeadLetter]) -> int:
        """Send and wait for the acknowledgements; return the partition's next offset."""

    async def sources_since(self, partition: int, start: int | None, topic: str,
                            source_partition: int) -> tuple[set[int], int]:
        """Input offsets of (topic, source_partition) dead-lettered at ``start`` or later
        (None: from the beginning), and the partition's end offset."""


ConfirmedSend = Callable[[Callable[[], Awaitable[int]], str], Awaitable[int]]


class ExactlyOnceDeadLetters:
    """Dead-letters the rejected inputs of one input partition at a time, once each."""

    def __init__(self, topic: DeadLetterTopic, marks: MarkStore, confirmed: ConfirmedSend) -> None:
        self.topic = topic
        self.marks = marks
        self.confirmed = confirmed
        self.verified: set[tuple[str, int]] = set()  # read back since the last assignment
        self.skipped_found = 0  # inputs found already dead-lettered when read back

    def forget_verified(self) -> None:
        """After a rebalance: another process may have dead-lettered meanwhile."""
        if self.verified:
            log.info("partitions assigned: the dead letters of %d input partitions will be "
                     "read back before the next is written", len(self.verified))
        self.verified.clear()

    async def write(self, topic: str, partition: int,
                    rejected: Sequence[tuple[int, DeadLetter]]) -> list[int]:
        """Dead-letter ``rejected`` ((input offset, record), in offset order) of one input
        partition; return the input offsets actually sent now."""
        mark = self.marks.get(topic, partition)
        pending = [(offset, record) for offset, record in rejected if offset > mark.offset]
        if not pending:
            return []
        target = self.topic.partition_for(topic, partition)
        sent: list[int] = []
        # records of one input partition are written in offset order, so an input found
        # on the topic means every bad input before it is there too
        highest_found = -1

        async def attempt() -> int:
            nonlocal pending
            next_offset = mark.next
            if (topic, partition) not in self.verified:
                found, next_offset = await self.topic.sources_since(target, mark.next, topic,
                                                                    partition)
                nonlocal highest_found
                highest_found = max(found, default=highest_found)
                self.skipped_found += sum(1 for offset, _ in pending if offset in found)
                pending = [(offset, record) for offset, record in pending
                           if offset not in found]
                self.verified.add((topic, partition))
            if pending:
                try:
                    next_offset = await self.topic.send(target, [r for _, r in pending])
                except BaseException:
                    self.verified.discard((topic, partition))  # part may be written
                    raise
                sent.extend(offset for offset, _ in pending)
            return next_offset if next_offset is not None else -1

        next_offset = await self.confirmed(attempt, f"dead-lettering {topic}[{partition}]")
        self.marks.set(topic, partition, DeadLetterMark(
            offset=max(rejected[-1][0], highest_found),
            next=None if next_offset < 0 else next_offset))
        return sent


class KafkaDeadLetterTopic:
    """DeadLetterTopic on Kafka: an idempotent producer and a reader, started on first use."""

    def __init__(self, options: dict[str, Any], topic: str, partitions: int,
                 max_request_bytes: int) -> None:
        self.options = options
        self.topic = topic
        self.partitions = partitions
        self.max_request_bytes = max_request_bytes
        self._producer: AIOKafkaProducer | None = None
        self._reader: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    def partition_for(self, topic: str, partition: int) -> int:
        return deadletter_partition(topic, partition, self.partitions)

    async def _clients(self) -> tuple[AIOKafkaProducer, AIOKafkaConsumer]:
        async with self._lock:
            if self._producer is None:
                # a failure surfaces after 10 s (the client's own retries included) and is
                # retried by streams.kafka.confirmed_sends, which reads the partition back first
                producer = AIOKafkaProducer(**self.options, acks="all", enable_idempotence=True,
                                            max_request_size=self.max_request_bytes,
                                            request_timeout_ms=10_000)
                await producer.start()
                self._producer = producer
            if self._reader is None:
                reader = AIOKafkaConsumer(**self.options, group_id=None,
                                          enable_auto_commit=False,
                                          auto_offset_reset="earliest",
                                          request_timeout_ms=10_000)
                await reader.start()
                self._reader = reader
            return self._producer, self._reader

    async def send(self, partition: int, records: Sequence[DeadLetter]) -> int:
        producer, _ = await self._clients()
        futures = [await producer.send(self.topic, value=r.value, key=r.key,
                                       headers=r.headers, partition=partition)
                   for r in records]
        results = await asyncio.gather(*futures)
        return max(meta.offset for meta in results) + 1

    async def sources_since(self, partition: int, start: int | None, topic: str,
                            source_partition: int) -> tuple[set[int], int]:
        _, reader = await self._clients()
        tp = TopicPartition(self.topic, partition)
        reader.assign([tp])
        end = (await reader.end_offsets([tp]))[tp]
        begin = (await reader.beginning_offsets([tp]))[tp]
        position = begin if start is None else max(start, begin)
        found: set[int] = set()
        if position >= end:
            return found, end
        reader.seek(tp, position)
        wanted = (topic, str(source_partition))
        while position < end:
            batches = await reader.getmany(tp, timeout_ms=1000, max_records=1000)
            for message in batches.get(tp, []):
                headers = read_headers(list(message.headers or []))
                if (headers.get("source.topic"), headers.get("source.partition")) == wanted:
                    found.add(int(headers["source.offset"]))
            position = await reader.position(tp)
        if found:
            log.info("%d inputs of %s[%d] were dead-lettered already (read back from %s[%d] "
                     "from offset %d)", len(found), topic, source_partition, self.topic,
                     partition, start if start is not None else begin)
        return found, end

    async def stop(self) -> None:
        for client in (self._producer, self._reader):
            if client is not None:
                await client.stop()
        self._producer = self._reader = None


class TableMarks:
    """Dead-letter marks (``DeadLetterMark``) in a Faust table, keyed by
    "<topic>|<partition>" and written with the batch's other changelog records."""

    def __init__(self, table: Any, changelog: BulkChangelog) -> None:
        self.table = table
        self.changelog = changelog

    @staticmethod
    def _key(topic: str, partition: int) -> bytes:
        return f"{topic}|{partition}".encode()

    def get(self, topic: str, partition: int) -> DeadLetterMark:
        return DeadLetterMark.decode(table_store(self.table).get(self._key(topic, partition)))

    def set(self, topic: str, partition: int, mark: DeadLetterMark) -> None:
        if mark.offset >= self.get(topic, partition).offset:
            self.changelog.set(self.table, partition, self._key(topic, partition),
                               mark.encode())
