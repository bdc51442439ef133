"""ExactlyOnceDeadLetters on an in-memory dead-letter topic: once per bad input, whatever
is redelivered, whatever a crash left between a record's acknowledgement and its mark."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cxstream.streams.ingest.deadletter_once import DeadLetterMark, ExactlyOnceDeadLetters
from cxstream.streams.ingest.deadletter_record import DeadLetter, deadletter_partition, read_headers


class MemoryTopic:
    """A dead-letter topic of ``partitions`` partitions held in lists."""

    def __init__(self, partitions: int = 3, fail_after_write: int = 0) -> None:
        self.logs: list[list[DeadLetter]] = [[] for _ in range(partitions)]
        self.fail_after_write = fail_after_write  # writes, then raise (a lost ack)
        self.reads = 0

    def partition_for(self, topic: str, partition: int) -> int:
        return deadletter_partition(topic, partition, len(self.logs))

    async def send(self, partition: int, records: Sequence[DeadLetter]) -> int:
        self.logs[partition].extend(records)
        if self.fail_after_write:
            self.fail_after_write -= 1
            raise ConnectionError("acknowledgement lost")
        return len(self.logs[partition])

    async def sources_since(self, partition: int, start: int | None, topic: str,
                            source_partition: int) -> tuple[set[int], int]:
        self.reads += 1
        found = set()
        for record in self.logs[partition][start or 0:]:
            headers = read_headers(record.headers)
            if (headers["source.topic"], headers["source.partition"]) == (
                    topic, str(source_partition)):
                found.add(int(headers["source.offset"]))
        return found, len(self.logs[partition])

    def sources(self) -> list[tuple[str, str, str]]:
        return sorted((h["source.topic"], h["source.partition"], h["source.offset"])
                      for log in self.logs for h in (read_headers(r.headers) for r in log))


class Marks:
    def __init__(self) -> None:
        self.marks: dict[tuple[str, int], DeadLetterMark] = {}

    def get(self, topic: str, partition: int) -> DeadLetterMark:
        return self.marks.get((topic, partition), DeadLetterMark())

    def set(self, topic: str, partition: int, mark: DeadLetterMark) -> None:
        self.marks[(topic, partition)] = mark


async def retry(send: Callable[[], Awaitable[int]], what: str) -> int:
    while True:
        try:
            return await send()
        except ConnectionError:
            continue


def record(topic: str, partition: int, offset: int) -> tuple[int, DeadLetter]:
    headers = [("cx.source.topic", topic.encode()),
               ("cx.source.partition", str(partition).encode()),
               ("cx.source.offset", str(offset).encode())]
    return offset, DeadLetter(key=b"k", value=b"{", headers=headers)


def batch(offsets: list[int], topic: str = "fb", partition: int = 0) -> list[Any]:
    return [record(topic, partition, offset) for offset in offsets]


async def test_a_redelivered_batch_is_not_dead_lettered_again() -> None:
    topic, marks = MemoryTopic(), Marks()
    writer = ExactlyOnceDeadLetters(topic, marks, retry)
    assert await writer.write("fb", 0, batch([3, 4])) == [3, 4]
    assert await writer.write("fb", 0, batch([3, 4, 5])) == [5]
    assert [s[2] for s in topic.sources()] == ["3", "4", "5"]
    assert marks.get("fb", 0).offset == 5


async def test_records_written_before_a_crash_lost_their_mark_are_found_again() -> None:
    topic = MemoryTopic()
    first = ExactlyOnceDeadLetters(topic, Marks(), retry)
    await first.write("fb", 1, batch([7, 8], partition=1))  # its marks are lost (a crash)
    again = ExactlyOnceDeadLetters(topic, Marks(), retry)  # the next owner, no marks
    assert await again.write("fb", 1, batch([7, 8, 9], partition=1)) == [9]
    assert [s[2] for s in topic.sources()] == ["7", "8", "9"]
    assert again.skipped_found == 2


async def test_a_send_whose_acknowledgement_was_lost_is_not_repeated() -> None:
    topic = MemoryTopic(fail_after_write=1)
    writer = ExactlyOnceDeadLetters(topic, Marks(), retry)
    await writer.write("fb", 2, batch([1, 2], partition=2))
    assert [s[2] for s in topic.sources()] == ["1", "2"]


async def test_after_an_assignment_the_topic_is_read_back_from_the_mark() -> None:
    topic, marks = MemoryTopic(), Marks()
    writer = ExactlyOnceDeadLetters(topic, marks, retry)
    await writer.write("fb", 0, batch([1]))
    reads = topic.reads
    await writer.write("fb", 0, batch([2]))
    assert topic.reads == reads  # verified already: no read
    writer.forget_verified()
    await writer.write("fb", 0, batch([3]))
    assert topic.reads == reads + 1


@settings(max_examples=300, deadline=None)
@given(st.sets(st.integers(0, 40), min_size=1),
       st.lists(st.tuples(st.sampled_from([0, 1]), st.integers(0, 15), st.integers(1, 12),
                          st.booleans()), min_size=1, max_size=15))
def test_any_rewinds_and_lost_marks_leave_each_bad_input_once(
        bad: set[int], steps: list[tuple[int, int, int, bool]]) -> None:
    """Each step reads a partition on from where it was, after rewinding up to ``back``
    offsets (a redelivery), ``size`` offsets long; a crash after it loses the marks written
    since the last durable point. Every bad input read ends on the topic exactly once."""
    topic = MemoryTopic()
    read_up_to = {0: 0, 1: 0}
    seen_bad: set[tuple[str, str, str]] = set()

    async def run() -> None:
        durable: dict[tuple[str, int], DeadLetterMark] = {}
        writer = ExactlyOnceDeadLetters(topic, Marks(), retry)
        for partition, back, size, crash in steps:
            start = max(read_up_to[partition] - back, 0)
            offsets = [o for o in range(start, start + size) if o in bad]
            read_up_to[partition] = max(read_up_to[partition], start + size)
            seen_bad.update(("fb", str(partition), str(o)) for o in offsets)
            if offsets:
                await writer.write("fb", partition, batch(offsets, partition=partition))
            if crash:  # restart: the marks go back to the last durable copy
                writer = ExactlyOnceDeadLetters(topic, Marks(), retry)
                writer.marks.marks = dict(durable)
            else:
                durable = dict(writer.marks.marks)

    asyncio.run(run())
    sources = topic.sources()
    assert len(sources) == len(set(sources))
    assert set(sources) == seen_bad


def test_mark_round_trip_and_the_first_format() -> None:
    assert DeadLetterMark.decode(DeadLetterMark(12, 40).encode()) == DeadLetterMark(12, 40)
    assert DeadLetterMark.decode(b"17") == DeadLetterMark(17, None)
    assert DeadLetterMark.decode(None) == DeadLetterMark()


def test_every_input_partition_has_one_dead_letter_partition() -> None:
    chosen = {deadletter_partition("cx.feedback", p, 4) for _ in range(3) for p in [2]}
    assert len(chosen) == 1
    assert all(0 <= deadletter_partition("t", p, 4) < 4 for p in range(100))
