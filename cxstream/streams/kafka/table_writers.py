"""How the state writer reads and writes its tables: one interface, two implementations.

- ``BulkWrites`` (the worker): values go to the table's store at once, their changelog
  records to Kafka in record batches when the batch is sent (streams.kafka.changelog).
- ``DirectWrites`` (the backtest, the tests): plain assignment, so a Faust table writes
  its changelog record per key, and a dict is just a dict.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from cxstream.streams.kafka.changelog import BulkChangelog
from cxstream.streams.kafka.faust_compat.access import table_store

#: runs a send until Kafka confirms it (streams.kafka.confirmed_sends.send_confirmed)
ConfirmedSend = Callable[[Callable[[], Awaitable[Any]], str], Awaitable[Any]]


async def send_once(send: Callable[[], Awaitable[Any]], what: str) -> Any:
    """A send tried once (no worker around it to stop)."""
    return await send()


class TableWriter(Protocol):
    def store(self, table: Any) -> Any:
        """What reads go to (a mapping with ``get``)."""

    def set(self, table: Any, partition: int, key: bytes, value: Any) -> None: ...

    def delete(self, table: Any, partition: int, key: bytes) -> None: ...

    def write_many(self, table: Any, partition: int, writes: dict[bytes, Any]) -> None:
        """Several writes of one partition; a None value deletes its key."""

    async def send(self) -> None:
        """What the writes since the last send owe Kafka, confirmed."""


class BulkWrites:
    """Writes to the stores, changelog records sent in bulk (``BulkChangelog``)."""

    def __init__(self, changelog: BulkChangelog, confirmed: ConfirmedSend | None = None) -> None:
        self.changelog = changelog
        self.confirmed: ConfirmedSend = confirmed or send_once

    def store(self, table: Any) -> Any:
        # the store itself: Faust's table mapping adds a sensor call per read
        return table_store(table)

    def set(self, table: Any, partition: int, key: bytes, value: Any) -> None:
        self.changelog.set(table, partition, key, value)

    def delete(self, table: Any, partition: int, key: bytes) -> None:
        self.changelog.delete(table, partition, key)

    def write_many(self, table: Any, partition: int, writes: dict[bytes, Any]) -> None:
        self.changelog.write_many(table, partition, writes)

    async def send(self) -> None:
        changelog = self.changelog
        if changelog.pending:
            pending = changelog.take()
            await self.confirmed(lambda: changelog.send_all(pending),
                               "writing table changelogs")


class DirectWrites:
    """Plain assignment: a Faust table's own per-key changelog writes, or a dict."""

    def store(self, table: Any) -> Any:
        return table

    def set(self, table: Any, partition: int, key: bytes, value: Any) -> None:
        table[key] = value

    def delete(self, table: Any, partition: int, key: bytes) -> None:
        table.pop(key, None)

    def write_many(self, table: Any, partition: int, writes: dict[bytes, Any]) -> None:
        for key, value in writes.items():
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value

    async def send(self) -> None:
        return None
