"""Everything that writes customer state, one piece at a time: the ingest's batches, the
revaluation of customers who entered the high-value band, deferred survey requests,
erasures and the value index saved at a clean stop.

They share one lock: a batch, a timer's run and an erasure never interleave their table
writes. Timer work that fails is left for the next run (nothing of an input is lost),
unless a send failed for good: then the batch guard stops the worker
(streams.kafka.confirmed_sends).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from cxstream.streams.customers.revaluation import Revaluator
from cxstream.streams.customers.state_writer import StateWriter
from cxstream.streams.customers.value_snapshot import write_snapshots
from cxstream.streams.ingest.batches import Ingest
from cxstream.streams.kafka import confirmed_sends
from cxstream.streams.kafka.confirmed_sends import BatchGuard

log = logging.getLogger(__name__)


class StateWork:
    """The worker's writes of customer state, serialised by one lock."""

    def __init__(self, ingest: Ingest, writer: StateWriter, revaluator: Revaluator,
                 guard: BatchGuard, owned: Callable[[], set[int]]) -> None:
        self.ingest = ingest
        self.writer = writer
        self.revaluator = revaluator
        self.guard = guard
        self.owned = owned
        self.lock = asyncio.Lock()

    async def take_batch(self, events: list[Any]) -> None:
        """One batch of input events (agent ``ingest_events``), then the customers a
        band change made high-value."""
        async with self.lock:
            try:
                await self.ingest.process(events)
            except Exception as exc:  # leaving the batch would acknowledge it
                await self.guard.fail(exc)
            await self._revaluate()

    async def revaluate(self) -> None:
        """After a refresh of the value bands (timer ``refresh_value_bands``)."""
        async with self.lock:
            await self._revaluate()

    async def send_waiting_surveys(self) -> None:
        """Deferred survey requests whose condition cleared (timer
        ``send_waiting_surveys``)."""
        async def send() -> None:
            self.writer.send_due_surveys(self.owned())
            await self.writer.finish()
        async with self.lock:
            await self._outside_batches(send, "looking at the waiting survey requests")

    async def erase(self, customer_id: str) -> dict[str, Any] | None:
        """What was deleted, by store (None: no such customer here)."""
        async with self.lock:
            receipt = self.writer.erase(customer_id)
            if receipt is None:
                return None
            await self.writer.finish()  # the tombstones are in Kafka before the answer
        log.info("customer erased (state, remembered ids and value removed)")
        return {"deleted": receipt}

    async def save_value_index(self, folder: Path, customers: Any) -> None:
        """After the drain of a clean stop: the value index of every owned partition, with
        the changelog offsets it matches (streams.customers.value_snapshot)."""
        async with self.lock:
            saved = write_snapshots(folder, customers, self.revaluator.index, self.owned())
        log.info("value index saved for the next start: %d customers", saved)

    async def _revaluate(self) -> None:
        await self._outside_batches(self.revaluator.run, "evaluating customers who "
                                    "entered the high-value band")

    async def _outside_batches(self, work: Callable[[], Awaitable[object]], what: str
                               ) -> None:
        try:
            await work()
        except confirmed_sends.SendFailed as exc:
            await self.guard.fail(exc)
        except confirmed_sends.BatchAbandoned:
            pass
        except Exception:
            log.exception("%s failed", what)
