"""Deliver alerts to the webhook: a plain Kafka consumer of cx.alerts with its own group.

Why not a Faust agent: a Faust stream drops (and acknowledges) messages that were buffered
before flow control paused or a rebalance began, which is harmless for a fast agent but
loses alerts for one that waits minutes on an unreachable receiver. Here the offset of an
alert is committed only after the receiver has it; while the receiver is down, the
partitions are paused and polled, so the consumer stays in its group.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError
from pydantic import ValidationError

from cxstream.alerts.sinks import PermanentDeliveryError, TransientDeliveryError, WebhookSender
from cxstream.schemas.outputs import Alert
from cxstream.streams.clients import aiokafka_options
from cxstream.streams.deadletter import Refusal, SourcePosition, build_deadletter
from cxstream.streams.delivery import backoff_seconds
from cxstream.streams.metrics import WorkerMetrics
from cxstream.streams.settings import Settings

log = logging.getLogger(__name__)
REMEMBERED_IDS = 100_000


class WebhookSink:
    """Posts each alert once (its first message, occurrences == 1)."""

    def __init__(self, settings: Settings, sender: WebhookSender, metrics: WorkerMetrics,
                 clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.rng = random.Random()
        self.settings = settings
        self.sender = sender
        self.metrics = metrics
        self.delivered: OrderedDict[str, None] = OrderedDict()  # ids posted or learnt
        self.scanned: dict[TopicPartition, int] = {}  # where learn_delivered stopped
        self.ready: set[TopicPartition] = set()  # learnt since their last assignment

    async def run(self) -> None:
        options = aiokafka_options(self.settings)
        consumer = AIOKafkaConsumer(
            **options, group_id=f"{self.settings.app_id}-webhook",
            enable_auto_commit=False, auto_offset_reset="earliest",
            session_timeout_ms=int(self.settings.session_timeout_seconds * 1000),
            heartbeat_interval_ms=int(min(3.0, self.settings.session_timeout_seconds / 3)
                                      * 1000))
        producer = AIOKafkaProducer(**options, acks="all", enable_idempotence=True)
        reader = AIOKafkaConsumer(**options, group_id=None, enable_auto_commit=False)
        await reader.start()
        self.ready.clear()
        consumer.subscribe([self.settings.topic_alerts], listener=_ForgetRevoked(self))
        await consumer.start()
        await producer.start()
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=1000, max_records=100)
                for tp, messages in batches.items():
                    if tp not in self.ready:  # before the first delivery from tp
                        await self._learn(consumer, reader, tp)
                    for message in messages:
                        if tp not in consumer.assignment():
                            break  # revoked meanwhile: its new owner delivers the rest
                        if not await self._handle(consumer, producer, tp, message):
                            break
                        try:
                            await consumer.commit({tp: message.offset + 1})
                        except CommitFailedError:  # a rebalance took tp meanwhile
                            log.info("webhook sink: %s[%d] moved before its commit; its new "
                                     "owner posts from the last commit (receivers drop the "
                                     "repeated webhook-id)", tp.topic, tp.partition)
                            break
        finally:
            await consumer.stop()
            await reader.stop()
            await producer.stop()

    async def _handle(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer,
                      tp: TopicPartition, message: Any) -> bool:
        """Deliver one alert message; False if its partition was revoked meanwhile."""
        try:
            alert = Alert.model_validate_json(message.value)
        except ValidationError as exc:
            await self._deadletter(producer, message, f"not an alert: {exc}"[:1000])
            return True
        if alert.occurrences > 1 or alert.alert_id in self.delivered:
            self.metrics.webhook_deliveries.labels("duplicate").inc()
            return True
        attempt = 0
        while True:
            try:
                await self.sender.send(alert)
            except PermanentDeliveryError as exc:
                self.metrics.webhook_deliveries.labels("deadlettered").inc()
                await self._deadletter(producer, message, str(exc))
                return True
            except TransientDeliveryError as exc:
                age = self.clock() - alert.created_at.timestamp()
                if age > self.settings.webhook_retry_max_age_seconds:
                    self.metrics.webhook_deliveries.labels("expired").inc()
                    await self._deadletter(producer, message, (
                        f"not delivered within {self.settings.webhook_retry_max_age_seconds:g}"
                        f" s of being raised (age {age:.0f} s); last failure: {exc}")[:1000])
                    return True
                self.metrics.webhook_deliveries.labels("retried").inc()
                wait = retry_wait(attempt, exc.retry_after,
                                  self.settings.webhook_max_backoff_seconds, self.rng)
                log.warning("webhook delivery of %s failed (%s); retrying in %.1f s",
                            alert.alert_id, exc, wait)
                if not await self._wait(consumer, tp, wait):
                    return False
                attempt += 1
                continue
            self.metrics.webhook_deliveries.labels("delivered").inc()
            self._remember(alert.alert_id)
            return True

    async def _wait(self, consumer: AIOKafkaConsumer, tp: TopicPartition,
                    seconds: float) -> bool:
        """Wait while staying in the group; False if ``tp`` was revoked meanwhile."""
        assigned = consumer.assignment()
        consumer.pause(*assigned)
        try:
            await consumer.getmany(timeout_ms=int(seconds * 1000))  # paused: returns nothing
        finally:
            consumer.resume(*consumer.assignment())
        return tp in consumer.assignment()

    async def learn_delivered(self, reader: AIOKafkaConsumer, tp: TopicPartition,
                              committed: int) -> int:
        """Remember the ids of the alerts before ``committed`` in ``tp``: delivered (or
        settled) by whichever process committed them. Returns how many were read.

        Why: a worker that restarts after a crash publishes its last alerts again (with
        occurrences 1); without this, the sink of the new process would post them twice.
        """
        start = self.scanned.get(tp)
        if start is None:
            start = (await reader.beginning_offsets([tp]))[tp]
        if start >= committed:
            return 0
        reader.assign([tp])
        reader.seek(tp, start)
        read = 0
        while start < committed:
            batches = await reader.getmany(tp, timeout_ms=1000, max_records=10_000)
            for message in batches.get(tp, []):
                if message.offset >= committed:
                    break
                try:
                    self._remember(Alert.model_validate_json(message.value).alert_id)
                except ValidationError:
                    pass  # dead-lettered when it was first read
                read += 1
            start = await reader.position(tp)
        self.scanned[tp] = min(start, committed)
        return read

    async def _learn(self, consumer: AIOKafkaConsumer, reader: AIOKafkaConsumer,
                     tp: TopicPartition) -> None:
        committed = await consumer.committed(tp)
        first = (await reader.beginning_offsets([tp]))[tp]
        if committed is not None and committed < first:  # retention deleted them unsent
            lost = first - committed
            self.metrics.webhook_alerts_expired.inc(lost)
            log.error("%d alerts of %s[%d] were deleted by the topic's retention before the "
                      "webhook received them (offsets %d-%d): raise retention.ms of %s above "
                      "the longest receiver outage", lost, tp.topic, tp.partition, committed,
                      first - 1, tp.topic)
        read = await self.learn_delivered(reader, tp, committed or 0)
        if read:
            log.info("webhook sink: %d alerts of %s[%d] already settled", read, tp.topic,
                     tp.partition)
        self.ready.add(tp)

    def _remember(self, alert_id: str) -> None:
        self.delivered[alert_id] = None
        while len(self.delivered) > REMEMBERED_IDS:
            self.delivered.popitem(last=False)

    async def _deadletter(self, producer: AIOKafkaProducer, message: Any, reason: str) -> None:
        record = build_deadletter(
            message.key, message.value,
            SourcePosition(message.topic, message.partition, message.offset),
            Refusal("webhook_refused", reason), datetime.now(UTC))
        await producer.send_and_wait(self.settings.topic_alerts_deadletter, key=record.key,
                                     value=record.value, headers=record.headers)
        log.error("alert at %s[%d]@%d not delivered for good: %s", message.topic,
                  message.partition, message.offset, reason)


def retry_wait(attempt: int, retry_after: float | None, cap: float,
               rng: random.Random) -> float:
    """Seconds before the next attempt: what the receiver asked for (Retry-After, up to an
    hour), else exponential backoff with full jitter from 0.5 s up to ``cap``."""
    if retry_after is not None:
        return min(retry_after, 3_600.0)
    return backoff_seconds(attempt, 0.5, cap, rng)


class _ForgetRevoked(ConsumerRebalanceListener):  # type: ignore[misc]
    """A partition assigned again is learnt again (from where learning stopped): another
    process may have delivered alerts of it meanwhile."""

    def __init__(self, sink: WebhookSink) -> None:
        self.sink = sink

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.sink.ready.difference_update(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        return None


def start_webhook_sink(app: Any, settings: Settings, metrics: WorkerMetrics) -> None:
    """Run the sink as a background task of the worker (no-op without a webhook URL)."""
    if not settings.webhook_url or settings.webhook_secret is None:
        return
    secrets = [settings.webhook_secret.get_secret_value()]
    if settings.webhook_previous_secret is not None:
        secrets.append(settings.webhook_previous_secret.get_secret_value())
    sender = WebhookSender(settings.webhook_url, secrets, settings.webhook_format,
                           settings.webhook_timeout_seconds)
    sink = WebhookSink(settings, sender, metrics)

    @app.task
    async def deliver_alerts_to_webhook() -> None:
        try:
            while True:
                try:
                    await sink.run()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("webhook sink failed; restarting in 5 s")
                    await asyncio.sleep(5)
        finally:  # the HTTP client serves every run of the sink: closed once, at the end
            await sender.close()
