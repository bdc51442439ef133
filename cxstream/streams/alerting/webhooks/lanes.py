"""One destination's queue and backoff: a failing, slow or rate-limited receiver holds
back its own alerts only.

Each destination (a webhook URL) gets a ``Lane``: a bounded queue of deliveries (an alert,
a follow-up or a digest) and one task posting them in order. A transient failure (timeout,
5xx, 408, 429) is retried after the receiver's ``Retry-After`` or an exponential backoff
with jitter, on this lane alone, until the delivery is older than
CXSTREAM_WEBHOOK_RETRY_MAX_AGE_SECONDS; a refusal for good (3xx, other 4xx) and an expired
delivery go to the dead-letter topic. A lane holds at most CXSTREAM_WEBHOOK_QUEUE_MAX
deliveries: one more is dead-lettered at once, with the reason, never kept unbounded.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cxstream.alerts.receivers import PermanentDeliveryError, TransientDeliveryError, WebhookSender
from cxstream.schemas.outputs import Alert
from cxstream.streams.kafka.confirmed_sends import backoff_seconds
from cxstream.streams.metrics import WorkerMetrics

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Delivery:
    """One POST to a destination, and the cx.alerts records it settles."""

    webhook_id: str
    body: bytes
    kind: str  # alert, follow_up or digest
    raised_at: float  # when its oldest message was made (made_at): expiry, the age gauge
    records: list[Any] = field(default_factory=list)  # aiokafka ConsumerRecords
    alert_ids: list[str] = field(default_factory=list)  # webhook ids it delivers
    label: str = ""  # what the log says of it

    def partitions(self) -> set[tuple[str, int]]:
        return {(record.topic, record.partition) for record in self.records}


#: what the sink does once a delivery ends: (delivery, outcome, reason); outcome is
#: delivered, deadlettered or expired
Settle = Callable[[Delivery, str, str | None], Awaitable[None]]


def retry_wait(attempt: int, retry_after: float | None, cap: float,
               rng: random.Random) -> float:
    """Seconds before the next attempt: what the receiver asked for (Retry-After, up to an
    hour), else exponential backoff with full jitter from 0.5 s up to ``cap``."""
    if retry_after is not None:
        return min(retry_after, 3_600.0)
    return backoff_seconds(attempt, 0.5, cap, rng)


class Lane:
    """The queue and the posting task of one destination."""

    def __init__(self, name: str, sender: WebhookSender, cap: int, settle: Settle,
                 metrics: WorkerMetrics, max_age_seconds: float, max_backoff_seconds: float,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.name = name  # the destination as logs may show it (no secret path)
        self.sender = sender
        self.cap = cap
        self.settle = settle
        self.metrics = metrics
        self.max_age = max_age_seconds
        self.max_backoff = max_backoff_seconds
        self.clock = clock
        self.sleep = sleep
        self.rng = random.Random()
        self.queue: deque[Delivery] = deque()
        self.current: Delivery | None = None
        self.posting = False  # an attempt is on the wire, or its outcome being settled
        self.stopping = False
        self._wakeup = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def offer(self, delivery: Delivery) -> bool:
        """Queue ``delivery``; False when the lane is full (the caller dead-letters it)."""
        if len(self.queue) >= self.cap:
            return False
        self.queue.append(delivery)
        self._wakeup.set()
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self.run())
        return True

    def drop(self, revoked: Iterable[tuple[str, int]]) -> list[Delivery]:
        """Forget the queued deliveries whose every record is of a revoked partition (the
        new owner reads them again); returns them."""
        gone = set(revoked)
        dropped = [d for d in self.queue if d.partitions() and d.partitions() <= gone]
        self.queue = deque(d for d in self.queue if d not in dropped)
        return dropped

    def oldest(self) -> float | None:
        waiting = [d.raised_at for d in self.queue]
        if self.current is not None:
            waiting.append(self.current.raised_at)
        return min(waiting) if waiting else None

    async def stop(self, grace_seconds: float = 0.0) -> None:
        """Post nothing more. An attempt on the wire gets up to ``grace_seconds`` to be
        answered and settled: cut off, the receiver may have taken it while its record
        stays uncommitted, and the partition's next owner would post it a second time. A
        wait before a retry is cut at once (the next owner retries)."""
        self.stopping = True
        self._wakeup.set()
        task = self.task
        if task is None or task.done():
            return
        if self.posting and grace_seconds > 0:
            await asyncio.wait({task}, timeout=grace_seconds)
        if not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def run(self) -> None:
        while not self.stopping:
            if not self.queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            self.current = self.queue.popleft()
            try:
                ended = await self._post(self.current)
                if ended is None:
                    return  # stopping between two attempts: left to the next owner
                await self._settle(self.current, *ended)
            finally:
                self.current = None
                self.posting = False

    async def _post(self, delivery: Delivery) -> tuple[str, str | None] | None:
        """(outcome, reason) once the delivery ended; None when the lane stops before
        the next attempt."""
        timing = self.metrics.webhook_request_seconds
        attempt = 0
        while True:
            if self.stopping:
                return None
            began = time.monotonic()
            self.posting = True
            try:
                await self.sender.post(delivery.webhook_id, delivery.body)
            except PermanentDeliveryError as exc:
                timing.labels("refused").observe(time.monotonic() - began)
                return "deadlettered", str(exc)
            except TransientDeliveryError as exc:
                timing.labels("retried").observe(time.monotonic() - began)
                age = self.clock() - delivery.raised_at
                if age > self.max_age:
                    return "expired", (f"not delivered within {self.max_age:g} s of being "
                                       f"raised (age {age:.0f} s); last failure: {exc}")
                self.metrics.webhook_deliveries.labels("retried").inc()
                self.posting = False
                if self.stopping:
                    return None
                wait = retry_wait(attempt, exc.retry_after, self.max_backoff, self.rng)
                log.warning("webhook delivery of %s to %s failed (%s); retrying in %.1f s",
                            delivery.label, self.name, exc, wait)
                await self.sleep(wait)
                attempt += 1
                continue
            timing.labels("delivered").observe(time.monotonic() - began)
            return "delivered", None

    async def _settle(self, delivery: Delivery, outcome: str, reason: str | None) -> None:
        """Hand the outcome to the sink; a failure there (the broker away while a dead
        letter is written) is tried again: the records stay pending meanwhile."""
        attempt = 0
        while True:
            try:
                await self.settle(delivery, outcome, reason)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("settling %s failed; trying again", delivery.label)
                await self.sleep(backoff_seconds(attempt, 0.5, 30.0, self.rng))
                attempt += 1


def made_at(alert: Alert) -> float:
    """When this message of ``alert`` was made (epoch seconds), which a delivery's age
    counts from (CXSTREAM_WEBHOOK_RETRY_MAX_AGE_SECONDS): a follow-up's notice time, else
    the alert's creation (updates are not posted). An alert raised days ago and resolved
    now is no older than now: counted from its creation, its resolution was dead-lettered
    as expired at its first failed attempt."""
    return (alert.notice_at or alert.created_at).timestamp()
