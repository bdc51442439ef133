"""BulkChangelog: table values in memory at once, changelog records per partition."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from faust.serializers import codecs

from cxstream.streams.kafka.changelog import BulkChangelog


def table(name: str, value_serializer: str) -> Any:
    return SimpleNamespace(
        data={}, key_serializer="raw", value_serializer=value_serializer,
        changelog_topic=SimpleNamespace(get_topic_name=lambda: f"app-{name}-changelog"))


def collect() -> tuple[BulkChangelog, list[tuple[str, int, list[Any]]]]:
    sent: list[tuple[str, int, list[Any]]] = []

    async def send(topic: str, partition: int, records: list[Any]) -> None:
        sent.append((topic, partition, records))

    return BulkChangelog(send), sent


def test_values_are_in_memory_at_once_and_records_go_out_on_flush() -> None:
    changelog, sent = collect()
    states, partials = table("states", "raw"), table("partials", "json")
    changelog.set(states, 2, b"c1", b"2|{}")
    changelog.set(partials, 2, b"2|k", {"tally": {"promoters": 1}, "offset": 4})
    changelog.set(states, 0, b"c9", b"0|{}")
    assert states.data == {b"c1": b"2|{}", b"c9": b"0|{}"}
    assert partials.data[b"2|k"]["offset"] == 4
    assert sent == []
    asyncio.run(changelog.flush())
    assert sorted(sent) == [
        ("app-partials-changelog", 2,
         [(b"2|k", codecs.dumps("json", {"tally": {"promoters": 1}, "offset": 4}))]),
        ("app-states-changelog", 0, [(b"c9", b"0|{}")]),
        ("app-states-changelog", 2, [(b"c1", b"2|{}")]),
    ]
    sent.clear()
    asyncio.run(changelog.flush())
    assert sent == []  # nothing left over


def test_the_last_write_of_a_key_wins_and_a_delete_is_a_tombstone() -> None:
    changelog, sent = collect()
    states = table("states", "raw")
    changelog.set(states, 1, b"a", b"1|old")
    changelog.set(states, 1, b"b", b"1|b")
    changelog.set(states, 1, b"a", b"1|new")
    changelog.delete(states, 1, b"b")
    changelog.delete(states, 1, b"never-there")
    assert states.data == {b"a": b"1|new"}
    asyncio.run(changelog.flush())
    assert sent == [("app-states-changelog", 1,
                     [(b"a", b"1|new"), (b"b", None), (b"never-there", None)])]


def test_a_raw_table_refuses_what_is_not_bytes() -> None:
    changelog, _ = collect()
    states = table("states", "raw")
    with pytest.raises(TypeError, match="must be bytes"):
        changelog.set(states, 0, b"a", "text")
    assert states.data == {}
