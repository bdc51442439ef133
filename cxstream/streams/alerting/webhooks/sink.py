"""Deliver alerts to the webhooks: a plain Kafka consumer of cx.alerts with its own group.

Shape: cx.alerts -> one consumer loop (read, decide, dispatch; never waits on a receiver)
-> one ``Lane`` per destination (queue, backoff: lanes.py) -> settled records -> the
commit of each partition up to its lowest alert not yet settled (offsets.py).

The commit of a partition waits for its lowest alert not yet settled: while one
destination is down, the others' alerts after it are posted but not committed. So each
settled alert record is also written (its offset) to the sink's settled topic, in the
same partition; a process that takes a partition over reads back the offsets settled
above its commit and does not post them again (a restart with a destination down would
otherwise post every later alert of the other destinations a second time).

Why not a Faust agent: a Faust stream drops (and acknowledges) messages that were buffered
before flow control paused or a rebalance began, which is harmless for a fast agent but
loses alerts for one that waits minutes on an unreachable receiver. Here the offset of an
alert is committed only once it is posted, dead-lettered or carried by a digest that was,
whatever destination it went to; the consumer keeps reading meanwhile, so it stays in its
group and the other destinations get their alerts.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from pydantic import ValidationError

from cxstream.alerts.budget import AlertBudget
from cxstream.alerts.config import RulesConfig
from cxstream.alerts.receivers import (
    WebhookSender,
    delivery_id,
    digest_body,
    is_notification,
    masked_url,
    webhook_body,
)
from cxstream.schemas.outputs import Alert
from cxstream.streams.alerting.webhooks.lanes import Delivery, Lane, made_at
from cxstream.streams.alerting.webhooks.offsets import OffsetTracker
from cxstream.streams.alerting.webhooks.settled import OnRebalance, expired_unsent, read_settled
from cxstream.streams.ingest.deadletter_record import Refusal, SourcePosition, build_deadletter
from cxstream.streams.kafka.clients import aiokafka_options, webhook_settled_topic
from cxstream.streams.metrics import WorkerMetrics
from cxstream.streams.settings import Settings

log = logging.getLogger(__name__)
REMEMBERED_IDS = 100_000


@dataclass(eq=False)
class HeldForDigest:
    """An alert the recipient's budget holds for the digest: its record (and those of the
    same alert read again meanwhile) stay pending until the digest is posted or
    dead-lettered."""

    record: Any  # the aiokafka ConsumerRecord
    alert: Alert
    again: list[Any] = field(default_factory=list)

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.record.topic, self.record.partition)


class WebhookSink:
    """Posts each alert once (its first message) and each follow-up once, to its team's
    destination, within each recipient's budget (the rest in digests)."""

    def __init__(self, settings: Settings, sender: WebhookSender | None,
                 metrics: WorkerMetrics, clock: Callable[[], float] = time.time,
                 config: RulesConfig | None = None,
                 senders: dict[str, WebhookSender] | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.clock = clock
        self.sleep = sleep
        self.settings = settings
        self.sender = sender  # to CXSTREAM_WEBHOOK_URL
        self.senders = senders or {}  # destination URL -> sender
        self.config = config
        notifications = config.notifications if config else None
        self.budget: AlertBudget[HeldForDigest] = AlertBudget(
            notifications.budget_per_hour if notifications else 1_000_000,
            notifications.digest_every_minutes if notifications else 15)
        self.metrics = metrics
        self.offsets = OffsetTracker()
        self.lanes: dict[int, Lane] = {}  # by sender
        self.producer: Any = None  # for dead letters, while running
        self.delivered: OrderedDict[str, None] = OrderedDict()  # ids posted or learnt
        #: ids queued, being posted or held, with what carries them: the same alert read
        #: again meanwhile (a worker republishes its last alerts after a crash) rides along
        #: instead of being posted twice
        self.waiting: dict[str, Delivery | HeldForDigest] = {}
        self.settled_topic = webhook_settled_topic(settings)[0]
        #: offsets above each partition's commit settled by an earlier owner (read back
        #: from the settled topic when the partition is assigned)
        self.settled_before: dict[TopicPartition, set[int]] = {}
        self.ready: set[TopicPartition] = set()  # learnt since their last assignment
        metrics.webhook_oldest_undelivered.set_function(self.oldest_undelivered)

    # -- routing -----------------------------------------------------------------------

    def route(self, alert: Alert) -> tuple[str, WebhookSender | None]:
        """(recipient team, the sender to its destination); None: nowhere to post."""
        team = alert.team or alert.owner
        url = self.config.notifications.destination(team) if self.config else None
        if url is None:
            return team, self.sender
        return team, self.senders.get(url, self.sender)

    def lane(self, sender: WebhookSender) -> Lane:
        lane = self.lanes.get(id(sender))
        if lane is None:
            lane = self.lanes[id(sender)] = Lane(
                masked_url(sender.url), sender, self.settings.webhook_queue_max,
                self.settled, self.metrics, self.settings.webhook_retry_max_age_seconds,
                self.settings.webhook_max_backoff_seconds, self.clock, self.sleep)
        return lane

    def oldest_undelivered(self) -> float:
        """Age of the oldest alert queued, being retried or held for a digest (0: none)."""
        created = [made_at(item.alert)
                   for state in self.budget.recipients.values() for item in state.held]
        created += [at for lane in self.lanes.values() if (at := lane.oldest()) is not None]
        return max(0.0, self.clock() - min(created)) if created else 0.0

    # -- deciding ----------------------------------------------------------------------

    async def take(self, record: Any) -> None:
        """One record of cx.alerts, read: settled at once, held for a digest, or queued
        on its destination's lane."""
        tp = TopicPartition(record.topic, record.partition)
        self.offsets.read(tp, record.offset)
        before = self.settled_before.get(tp)
        if before is not None and record.offset in before:
            before.discard(record.offset)
            self.metrics.webhook_deliveries.labels("duplicate").inc()
            return self.offsets.settle(tp, record.offset)
        try:
            alert = Alert.model_validate_json(record.value)
        except ValidationError as exc:
            await self.deadletter(record, f"not an alert: {exc}"[:1000])
            await self.mark_settled(record)
            return self.offsets.settle(tp, record.offset)
        webhook_id = delivery_id(alert)
        recipient, sender = self.route(alert)
        if not is_notification(alert) or webhook_id in self.delivered or sender is None:
            if webhook_id in self.delivered:
                self.metrics.webhook_deliveries.labels("duplicate").inc()
            return self.offsets.settle(tp, record.offset)
        carrier = self.waiting.get(webhook_id)
        if carrier is not None:  # read again while on its way: settled with it
            self.metrics.webhook_deliveries.labels("duplicate").inc()
            (carrier.records if isinstance(carrier, Delivery) else carrier.again).append(record)
            return None
        kind = "follow_up" if alert.notice else "alert"
        held = HeldForDigest(record, alert)
        if alert.notice is None and not self.budget.admit(
                recipient, alert.severity, held, self.clock()):
            self.metrics.alert_notifications.labels(kind, "held").inc()
            self.waiting[webhook_id] = held
            return None  # pending until its digest settles it
        notifications = self.config.notifications if self.config else None
        body = webhook_body(alert, sender.body_format, self.settings.canonical_url,
                            notifications.slack_users if notifications else {},
                            notifications.comment_max_chars if notifications else 300,
                            notifications.signals_shown if notifications else 3)
        await self.queue(sender, Delivery(webhook_id, body, kind, made_at(alert),
                                          [record], [webhook_id], alert.alert_id))
        return None

    async def queue(self, sender: WebhookSender, delivery: Delivery) -> None:
        lane = self.lane(sender)
        for webhook_id in delivery.alert_ids:
            self.waiting[webhook_id] = delivery
        if not lane.offer(delivery):
            await self.settled(delivery, "deadlettered", (
                f"the queue of {lane.name} is full ({lane.cap} deliveries waiting, "
                "CXSTREAM_WEBHOOK_QUEUE_MAX): the destination is down or too slow"))

    async def queue_digests(self) -> int:
        """Queue the digests that are due; returns how many alerts they carry. A digest
        leaves the budget's hold once queued: its lane retries it like any delivery."""
        carried = 0
        for recipient, items in self.budget.due(self.clock()):
            self.budget.posted(recipient, items)
            _, sender = self.route(items[0].alert)
            if sender is None:
                for item in items:
                    self.waiting.pop(delivery_id(item.alert), None)
                    for each in (item.record, *item.again):
                        self.offsets.settle(item.tp, each.offset)
                continue
            alerts = [item.alert for item in items]
            body = digest_body(alerts, recipient, sender.body_format,
                               self.settings.canonical_url)
            ids = [delivery_id(a) for a in alerts]
            digest_id = "digest-" + hashlib.sha256("\x1f".join(ids).encode()).hexdigest()[:24]
            await self.queue(sender, Delivery(
                digest_id, body, "digest", min(made_at(item.alert)
                                               for item in items),
                [item.record for item in items] + [r for item in items for r in item.again],
                ids,
                f"the digest of {len(items)} alerts for {recipient}"))
            carried += len(items)
        return carried

    async def settled(self, delivery: Delivery, outcome: str, reason: str | None) -> None:
        """A delivery ended (delivered, deadlettered or expired): count it, remember or
        dead-letter its alerts (each once: the first records are one per alert, the rest
        the same alerts read again), and let their records be committed."""
        if outcome == "delivered":
            self.metrics.webhook_deliveries.labels("delivered").inc()
            self.metrics.alert_notifications.labels(delivery.kind, "posted").inc()
            for webhook_id in delivery.alert_ids:
                self.remember(webhook_id)
        else:
            self.metrics.webhook_deliveries.labels(outcome).inc()
            prefix = f"{delivery.label}: " if delivery.kind == "digest" else ""
            for record in delivery.records[:len(delivery.alert_ids)]:
                await self.deadletter(record, (prefix + (reason or outcome))[:1000])
        for webhook_id in delivery.alert_ids:
            if self.waiting.get(webhook_id) is delivery:
                del self.waiting[webhook_id]
        marks = []
        for n, record in enumerate(delivery.records):
            self.offsets.settle(TopicPartition(record.topic, record.partition), record.offset)
            # the first records are one per alert id, in order; the rest the same read again
            marks.append(self.mark_settled(record, delivery.alert_ids[n]
                                           if n < len(delivery.alert_ids) else None))
        # the lane posts its next delivery once these are acknowledged: a SIGKILL leaves
        # at most the one post on the wire per destination for the next owner to repeat
        await asyncio.gather(*marks)

    async def mark_settled(self, record: Any, webhook_id: str | None = None) -> None:
        """Write the record's offset, keyed by its webhook id, to the settled topic, and
        wait for Kafka's acknowledgement (the records of one delivery together)."""
        if self.producer is None:
            return
        try:
            sent = await self.producer.send(self.settled_topic, value=b"%d" % record.offset,
                                            key=webhook_id.encode() if webhook_id else None,
                                            partition=record.partition)
            await sent
        except KafkaError:  # its commit covers it soon; a restart before may post it again
            log.warning("webhook sink: the settled mark of %s[%d]@%d was not written",
                        record.topic, record.partition, record.offset)

    # -- the loop ----------------------------------------------------------------------

    async def run(self) -> None:
        options = aiokafka_options(self.settings)
        consumer = AIOKafkaConsumer(
            **options, group_id=f"{self.settings.app_id}-webhook",
            group_instance_id=self.settings.group_instance_id,
            enable_auto_commit=False, auto_offset_reset="earliest",
            session_timeout_ms=int(self.settings.session_timeout_seconds * 1000),
            heartbeat_interval_ms=int(min(3.0, self.settings.session_timeout_seconds / 3)
                                      * 1000))
        self.producer = AIOKafkaProducer(**options, acks="all", enable_idempotence=True)
        # a short fetch wait: a fetch held by the broker for an idle partition delays
        # the next read of the settled topic by that long (500 ms by default)
        reader = AIOKafkaConsumer(**options, group_id=None, enable_auto_commit=False,
                                  fetch_max_wait_ms=20)
        await reader.start()
        self.ready.clear()
        consumer.subscribe([self.settings.topic_alerts],
                           listener=OnRebalance(self, consumer))
        await consumer.start()
        await self.producer.start()
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=200, max_records=500)
                new = {tp for tp in batches if tp not in self.ready}
                if new:  # before the first delivery from them, all in one read
                    await self._learn(consumer, reader, new)
                for tp, records in batches.items():
                    for record in records:
                        if tp not in consumer.assignment():
                            break  # revoked meanwhile: its new owner delivers the rest
                        await self.take(record)
                await self.queue_digests()
                await self.commit(consumer)
        finally:
            # posts on the wire are answered and settled (or cut off after the timeout),
            # then committed, and their settled marks written, before the partitions move
            grace = self.settings.webhook_timeout_seconds + 5.0
            await asyncio.gather(*(lane.stop(grace) for lane in self.lanes.values()))
            try:
                await self.commit(consumer)
            except KafkaError:
                log.info("webhook sink: the last commit failed; the next owner posts from "
                         "the one before (receivers drop the repeated webhook-id)")
            try:
                await asyncio.wait_for(self.producer.flush(), grace)
            except (KafkaError, TimeoutError):
                log.warning("webhook sink: settled marks not written before the stop; the "
                            "next owner may post those alerts again")
            await consumer.stop()
            await reader.stop()
            await self.producer.stop()
            # a later run reads again from the commits: nothing of this one carries over
            self.lanes.clear()
            self.waiting.clear()
            self.offsets = OffsetTracker()
            self.settled_before.clear()
            self.budget.recipients.clear()

    async def commit(self, consumer: AIOKafkaConsumer) -> None:
        """Commit each assigned partition up to its lowest alert not yet settled."""
        points = self.offsets.to_commit(consumer.assignment())
        if not points:
            return
        try:
            await consumer.commit(points)
        except CommitFailedError:  # a rebalance took a partition meanwhile
            log.info("webhook sink: a rebalance moved partitions before the commit; their "
                     "new owner posts from the last commit (receivers drop the repeated "
                     "webhook-id)")
            return
        self.offsets.committed(points)

    def revoked(self, revoked: set[TopicPartition]) -> None:
        """Partitions taken away: their held and queued alerts are the new owner's."""
        self.ready.difference_update(revoked)
        for recipient, state in self.budget.recipients.items():
            mine = [item for item in state.held if item.tp in revoked]
            if mine:
                self.budget.posted(recipient, mine)
                for item in mine:
                    self.waiting.pop(delivery_id(item.alert), None)
        for lane in self.lanes.values():
            for dropped in lane.drop((tp.topic, tp.partition) for tp in revoked):
                for webhook_id in dropped.alert_ids:
                    self.waiting.pop(webhook_id, None)
        self.offsets.forget(revoked)
        for tp in revoked:
            self.settled_before.pop(tp, None)

    # -- what was delivered before -----------------------------------------------------

    async def _learn(self, consumer: AIOKafkaConsumer, reader: AIOKafkaConsumer,
                     tps: set[TopicPartition]) -> None:
        began = time.monotonic()
        committed = {tp: await consumer.committed(tp) for tp in tps}
        lost = expired_unsent(committed, await reader.beginning_offsets(list(tps)))
        if lost:
            self.metrics.webhook_alerts_expired.inc(lost)
        settled, ids = await self.learn_settled(
            reader, {tp.partition: committed[tp] or 0 for tp in tps})
        for webhook_id in ids:
            self.remember(webhook_id)
        for tp in tps:
            self.settled_before[tp] = settled[tp.partition]
        log.info("webhook sink: learnt %s in %.2f s: %d settled webhook ids read, %d alerts "
                 "above the commits settled before", sorted(tp.partition for tp in tps),
                 time.monotonic() - began, len(ids), sum(map(len, settled.values())))
        self.ready.update(tps)

    async def learn_settled(self, reader: AIOKafkaConsumer, committed: dict[int, int],
                            stall_seconds: float = 60.0
                            ) -> tuple[dict[int, set[int]], list[str]]:
        """What earlier owners of the partitions of ``committed`` (partition -> commit)
        settled, from the settled topic's records of the last retry age plus an hour: per
        partition the offsets at or above its commit (an alert settled above the commit
        was settled after the lowest pending one was read, and that one is settled, or
        expires, within CXSTREAM_WEBHOOK_RETRY_MAX_AGE_SECONDS), and the webhook ids
        settled (a worker that crashed publishes its last alerts again, after the commit:
        they are not posted twice). One read for all the partitions; it costs the records
        of that time, not the topic's history. Raises KafkaError when the read makes no
        progress for ``stall_seconds`` (the sink starts again)."""
        since = max(0, int((self.clock() - self.settings.webhook_retry_max_age_seconds
                            - 3_600) * 1000))
        return await read_settled(reader, self.settled_topic, committed, since, stall_seconds)

    def remember(self, webhook_id: str) -> None:
        self.delivered[webhook_id] = None
        while len(self.delivered) > REMEMBERED_IDS:
            self.delivered.popitem(last=False)

    async def deadletter(self, record: Any, reason: str) -> None:
        dead = build_deadletter(
            record.key, record.value,
            SourcePosition(record.topic, record.partition, record.offset),
            Refusal("webhook_refused", reason), datetime.now(UTC))
        await self.producer.send_and_wait(self.settings.topic_alerts_deadletter,
                                          key=dead.key, value=dead.value,
                                          headers=dead.headers)
        log.error("alert at %s[%d]@%d not delivered for good: %s", record.topic,
                  record.partition, record.offset, reason)
