"""Deliver alerts to the webhook: a plain Kafka consumer of cx.alerts with its own group.

Why not a Faust agent: a Faust stream drops (and acknowledges) messages that were buffered
before flow control paused or a rebalance began, which is harmless for a fast agent but
loses alerts for one that waits minutes on an unreachable receiver. Here the offset of an
alert is committed only after the receiver has it; while the receiver is down, the
partitions are paused and polled, so the consumer stays in its group.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError
from pydantic import ValidationError

from cxstream.alerts.budget import AlertBudget
from cxstream.alerts.config import RulesConfig
from cxstream.alerts.sinks import (
    PermanentDeliveryError,
    TransientDeliveryError,
    WebhookSender,
    delivery_id,
    digest_body,
    is_notification,
    webhook_body,
)
from cxstream.schemas.outputs import Alert
from cxstream.streams.clients import aiokafka_options
from cxstream.streams.deadletter import Refusal, SourcePosition, build_deadletter
from cxstream.streams.delivery import backoff_seconds
from cxstream.streams.metrics import WorkerMetrics
from cxstream.streams.settings import Settings

log = logging.getLogger(__name__)
REMEMBERED_IDS = 100_000


@dataclass(frozen=True)
class Held:
    """An alert the recipient's budget holds for the digest: its offset is not committed
    before the digest is posted."""

    tp: TopicPartition
    offset: int
    alert: Alert


class WebhookSink:
    """Posts each alert once (its first message) and each follow-up once, to its team's
    destination, within each recipient's budget (the rest in digests)."""

    def __init__(self, settings: Settings, sender: WebhookSender, metrics: WorkerMetrics,
                 clock: Callable[[], float] = time.time, config: RulesConfig | None = None,
                 senders: dict[str, WebhookSender] | None = None) -> None:
        self.clock = clock
        self.rng = random.Random()
        self.settings = settings
        self.sender = sender  # to CXSTREAM_WEBHOOK_URL
        self.senders = senders or {}  # destination URL -> sender
        self.config = config
        notifications = config.notifications if config else None
        self.budget: AlertBudget[Held] = AlertBudget(
            notifications.budget_per_hour if notifications else 1_000_000,
            notifications.digest_every_minutes if notifications else 15)
        self.metrics = metrics
        self.delivered: OrderedDict[str, None] = OrderedDict()  # ids posted or learnt
        self.scanned: dict[TopicPartition, int] = {}  # where learn_delivered stopped
        self.ready: set[TopicPartition] = set()  # learnt since their last assignment
        self.held_offsets: dict[TopicPartition, set[int]] = {}
        #: creation time of the alert being posted (retried), if any
        self.trying: float | None = None
        metrics.webhook_oldest_undelivered.set_function(self.oldest_undelivered)

    def oldest_undelivered(self) -> float:
        """Age of the oldest alert being retried or held for a digest (0: none)."""
        created = [item.alert.created_at.timestamp()
                   for state in self.budget.recipients.values() for item in state.held]
        if self.trying is not None:
            created.append(self.trying)
        return max(0.0, self.clock() - min(created)) if created else 0.0

    def route(self, alert: Alert) -> tuple[str, WebhookSender | None]:
        """(recipient team, the sender to its destination); None: nowhere to post."""
        team = alert.team or alert.owner
        url = self.config.notifications.destination(team) if self.config else None
        if url is None:
            return team, self.sender
        return team, self.senders.get(url, self.sender)

    def commit_point(self, tp: TopicPartition, after: int) -> int:
        """The offset to commit once ``after`` is done: not past an alert still held."""
        held = self.held_offsets.get(tp)
        return min(min(held), after) if held else after

    def forget_held(self, revoked: Any) -> None:
        for recipient, state in self.budget.recipients.items():
            mine = [item for item in state.held if item.tp in revoked]
            if mine:
                self.budget.posted(recipient, mine)  # the new owner reads them again
        for tp in revoked:
            self.held_offsets.pop(tp, None)

    async def post_digests(self, consumer: AIOKafkaConsumer) -> int:
        """Post the digests that are due; returns how many alerts they carried."""
        carried = 0
        for recipient, items in self.budget.due(self.clock()):
            _, sender = self.route(items[0].alert)
            if sender is None:
                continue
            alerts = [item.alert for item in items]
            console = self.settings.canonical_url
            body = digest_body(alerts, recipient, sender.body_format, console)
            digest_id = "digest-" + hashlib.sha256(
                "\x1f".join(delivery_id(a) for a in alerts).encode()).hexdigest()[:24]
            try:
                await sender.post(digest_id, body)
            except (TransientDeliveryError, PermanentDeliveryError) as exc:
                log.warning("digest of %d alerts for %s not delivered (%s); trying again "
                            "at the next check", len(items), recipient, exc)
                continue
            self.budget.posted(recipient, items)
            self.metrics.alert_notifications.labels("digest", "posted").inc()
            for item in items:
                self.held_offsets.get(item.tp, set()).discard(item.offset)
                self._remember(delivery_id(item.alert))
            carried += len(items)
            commits = {}
            for tp in {item.tp for item in items} & consumer.assignment():
                position = await consumer.position(tp)
                commits[tp] = self.commit_point(tp, position)
            if commits:
                try:
                    await consumer.commit(commits)
                except CommitFailedError:
                    log.info("webhook sink: a rebalance moved partitions before the commit")
        return carried

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
                await self.post_digests(consumer)
                for tp, messages in batches.items():
                    if tp not in self.ready:  # before the first delivery from tp
                        await self._learn(consumer, reader, tp)
                    for message in messages:
                        if tp not in consumer.assignment():
                            break  # revoked meanwhile: its new owner delivers the rest
                        if not await self._handle(consumer, producer, tp, message):
                            break
                        try:
                            await consumer.commit(
                                {tp: self.commit_point(tp, message.offset + 1)})
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
        webhook_id = delivery_id(alert)
        if not is_notification(alert) or webhook_id in self.delivered:
            self.metrics.webhook_deliveries.labels("duplicate").inc()
            return True
        recipient, sender = self.route(alert)
        if sender is None:
            return True  # no destination for this team and no default
        kind = "follow_up" if alert.notice else "alert"
        if alert.notice is None and not self.budget.admit(
                recipient, alert.severity, Held(tp, message.offset, alert), self.clock()):
            self.held_offsets.setdefault(tp, set()).add(message.offset)
            self.metrics.alert_notifications.labels(kind, "held").inc()
            return True
        notifications = self.config.notifications if self.config else None
        body = webhook_body(alert, sender.body_format, self.settings.canonical_url,
                            notifications.slack_users if notifications else {},
                            notifications.comment_max_chars if notifications else 300,
                            notifications.signals_shown if notifications else 3)
        attempt = 0
        self.trying = alert.created_at.timestamp()
        try:
            return await self._post(producer, consumer, tp, message, alert, body, sender,
                                    webhook_id, kind, attempt)
        finally:
            self.trying = None

    async def _post(self, producer: Any, consumer: AIOKafkaConsumer, tp: TopicPartition,
                    message: Any, alert: Alert, body: bytes, sender: WebhookSender,
                    webhook_id: str, kind: str, attempt: int) -> bool:
        timing = self.metrics.webhook_request_seconds
        while True:
            began = time.monotonic()
            try:
                await sender.send(alert, body)
            except PermanentDeliveryError as exc:
                timing.labels("refused").observe(time.monotonic() - began)
                self.metrics.webhook_deliveries.labels("deadlettered").inc()
                await self._deadletter(producer, message, str(exc))
                return True
            except TransientDeliveryError as exc:
                timing.labels("retried").observe(time.monotonic() - began)
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
            timing.labels("delivered").observe(time.monotonic() - began)
            self.metrics.webhook_deliveries.labels("delivered").inc()
            self.metrics.alert_notifications.labels(kind, "posted").inc()
            self._remember(webhook_id)
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
                    self._remember(delivery_id(Alert.model_validate_json(message.value)))
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
        self.sink.forget_held(set(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        return None


def start_webhook_sink(app: Any, settings: Settings, config: RulesConfig,
                       metrics: WorkerMetrics) -> None:
    """Run the sink as a background task of the worker (no-op without a destination:
    CXSTREAM_WEBHOOK_URL or the rules file's notifications.destinations)."""
    notifications = config.notifications
    urls = {secret.get_secret_value() for secret in notifications.destinations.values()}
    if notifications.default_destination is not None:
        urls.add(notifications.default_destination.get_secret_value())
    if not settings.webhook_url and not urls:
        return
    secrets = []
    if settings.webhook_secret is not None:
        secrets.append(settings.webhook_secret.get_secret_value())
        if settings.webhook_previous_secret is not None:
            secrets.append(settings.webhook_previous_secret.get_secret_value())

    def sender_to(url: str) -> WebhookSender:
        return WebhookSender(url, secrets, settings.webhook_format,
                             settings.webhook_timeout_seconds)
    senders = {url: sender_to(url) for url in urls}
    default = (sender_to(settings.webhook_url.get_secret_value()) if settings.webhook_url
               else None)
    sink = WebhookSink(settings, default, metrics, config=config,  # type: ignore[arg-type]
                       senders=senders)

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
        finally:  # the HTTP clients serve every run of the sink: closed once, at the end
            for each in {*senders.values(), *([default] if default else [])}:
                await each.close()
