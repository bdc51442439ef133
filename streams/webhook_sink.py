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
from collections import OrderedDict
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import ValidationError

from alerts.sinks import PermanentDeliveryError, TransientDeliveryError, WebhookSender
from cxstream.kafka.clients import aiokafka_options
from cxstream.settings import Settings
from schemas.outputs import Alert
from streams.metrics import WorkerMetrics

log = logging.getLogger(__name__)
REMEMBERED_IDS = 100_000


class WebhookSink:
    """Posts each alert once (its first message, occurrences == 1)."""

    def __init__(self, settings: Settings, sender: WebhookSender, metrics: WorkerMetrics) -> None:
        self.settings = settings
        self.sender = sender
        self.metrics = metrics
        self.delivered: OrderedDict[str, None] = OrderedDict()  # ids posted by this process

    async def run(self) -> None:
        options = aiokafka_options(self.settings)
        consumer = AIOKafkaConsumer(
            self.settings.topic_alerts, **options, group_id=f"{self.settings.app_id}-webhook",
            enable_auto_commit=False, auto_offset_reset="earliest",
            session_timeout_ms=int(self.settings.session_timeout_seconds * 1000),
            heartbeat_interval_ms=int(min(3.0, self.settings.session_timeout_seconds / 3)
                                      * 1000))
        producer = AIOKafkaProducer(**options, acks="all", enable_idempotence=True)
        await consumer.start()
        await producer.start()
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=1000, max_records=100)
                for tp, messages in batches.items():
                    for message in messages:
                        if tp not in consumer.assignment():
                            break  # revoked meanwhile: its new owner delivers the rest
                        if await self._handle(consumer, producer, tp, message):
                            await consumer.commit({tp: message.offset + 1})
        finally:
            await consumer.stop()
            await producer.stop()
            await self.sender.close()

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
        backoff = 0.5
        while True:
            try:
                await self.sender.send(alert)
            except PermanentDeliveryError as exc:
                self.metrics.webhook_deliveries.labels("deadlettered").inc()
                await self._deadletter(producer, message, str(exc))
                return True
            except TransientDeliveryError as exc:
                self.metrics.webhook_deliveries.labels("retried").inc()
                log.warning("webhook delivery of %s failed (%s); retrying in %.1f s",
                            alert.alert_id, exc, backoff)
                if not await self._wait(consumer, tp, backoff):
                    return False
                backoff = min(backoff * 2, self.settings.webhook_max_backoff_seconds)
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

    def _remember(self, alert_id: str) -> None:
        self.delivered[alert_id] = None
        while len(self.delivered) > REMEMBERED_IDS:
            self.delivered.popitem(last=False)

    async def _deadletter(self, producer: AIOKafkaProducer, message: Any, reason: str) -> None:
        headers = [("cx.source.topic", message.topic.encode()),
                   ("cx.source.partition", str(message.partition).encode()),
                   ("cx.source.offset", str(message.offset).encode()),
                   ("cx.error.class", b"webhook_refused"),
                   ("cx.error.reason", reason.encode())]
        await producer.send_and_wait(self.settings.topic_alerts_deadletter, key=message.key,
                                     value=message.value, headers=headers)
        log.error("alert at %s[%d]@%d not delivered for good: %s", message.topic,
                  message.partition, message.offset, reason)


def start_webhook_sink(app: Any, settings: Settings, metrics: WorkerMetrics) -> None:
    """Run the sink as a background task of the worker (no-op without a webhook URL)."""
    if not settings.webhook_url or settings.webhook_secret is None:
        return
    sender = WebhookSender(settings.webhook_url, settings.webhook_secret.get_secret_value(),
                           settings.webhook_format, settings.webhook_timeout_seconds)
    sink = WebhookSink(settings, sender, metrics)

    @app.task
    async def deliver_alerts_to_webhook() -> None:
        while True:
            try:
                await sink.run()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook sink failed; restarting in 5 s")
                await asyncio.sleep(5)
