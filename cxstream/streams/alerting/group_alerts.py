"""Group-drop alerts (rule ``segment_drop``: segments, channels, touchpoints, stages): the
shares of every input partition folded where each group's tallies meet (agent
``fold_segment_shares``, table ``segment_tallies``), evaluated by the timer
``check_segment_drops``, each alert raised once across restarts and failovers
(``RaisedGroupAlerts`` reads back what cx.alerts already holds), with the drivers of the
drop (streams.groups.drivers)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from cxstream.alerts.config import RulesConfig
from cxstream.schemas.outputs import Alert
from cxstream.scoring.windows import window_start
from cxstream.streams.alerting.publishing import RULE_HEADER, AlertPublisher
from cxstream.streams.groups.drivers import GroupDrivers
from cxstream.streams.groups.segment_drops import SegmentShares, SegmentTallies
from cxstream.streams.kafka.plain_clients import read_topic
from cxstream.streams.metrics import WorkerMetrics
from cxstream.streams.settings import Settings

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


class SegmentDropCheck:
    """The evaluation of segment drops on the partitions of the shares topic this worker
    owns: new alerts raised once, recovered ones resolved."""

    def __init__(self, settings: Settings, config: RulesConfig, metrics: WorkerMetrics,
                 publisher: AlertPublisher, shares: SegmentShares,
                 tallies: SegmentTallies, shares_topic: Any,
                 input_owned: Callable[[], set[int]],
                 explain: GroupDrivers | None = None) -> None:
        self.rule = config.segment_drop
        #: the drivers of a new drop, put in its alert (None: alerts without them)
        self.explain = explain
        self.metrics = metrics
        self.publisher = publisher
        self.shares = shares
        self.tallies = tallies
        self.shares_topic = shares_topic
        self.input_owned = input_owned
        self.raised = RaisedGroupAlerts(settings, "segment_drop")
        self.evaluated_for: set[int] = set()  # the partitions the raised ids were read for

    def table_recovered(self, items: list[tuple[Any, Any]]) -> None:
        self.tallies.load(items, self.tallies.owned())

    async def fold(self, events: list[Any]) -> None:
        """One batch of shares (agent ``fold_segment_shares``)."""
        for event in events:
            self.tallies.fold(event.message.partition, event.message.value)
        await self.tallies.changelog.flush()

    async def send_again(self) -> None:
        """The shares of partitions recovered since the last tick (a crash may have kept
        the last ones from the topic)."""
        resent = self.shares.resend(time.time(), self.input_owned())
        acks = [await self.shares_topic.send(key=share.topic_key, value=share.encode())
                for share in resent]
        await asyncio.gather(*acks)
        if resent:
            log.info("%d segment shares sent again after a recovery", len(resent))

    async def check(self) -> None:
        """Timer ``check_segment_drops``."""
        try:
            await self.send_again()
        except Exception:  # the partitions are sent at the next recovery; tallies go on
            log.exception("sending the segment shares again failed")
        tallies = self.tallies
        mine = tallies.owned() & tallies.loaded
        if mine != self.evaluated_for:
            self.raised.forget()  # another worker may have raised alerts for these segments
            self.evaluated_for = mine
        if not mine:
            return
        now = _now()
        spec = self.shares.spec
        alerts, recovered = tallies.evaluate(now)
        self.metrics.segment_evaluations.labels("evaluations").inc()
        self.metrics.segment_evaluations.labels("segments").inc(tallies.segment_count())
        # this window's alerts and the previous one's: both may still be open
        await self.raised.load_since(window_start(now.timestamp(), spec.seconds)
                                     - spec.seconds)
        for alert in alerts:
            if alert.alert_id not in self.raised.ids and self.explain is not None:
                alert = await self._with_drivers(alert, now)
            if self.raised.add(alert.alert_id, alert):
                await (await self.publisher.alert(alert))
                self.metrics.alerts_raised.labels(alert.rule, alert.severity).inc()
        if self.rule.auto_resolve:
            await self._resolve(recovered, now)
        await tallies.expire(now.timestamp())

    async def _with_drivers(self, alert: Alert, now: datetime) -> Alert:
        """The alert with what drove the drop against its baseline: named in the summary
        (enough answers only) and listed in the context."""
        assert self.explain is not None
        dimension = str(alert.reason.get("dimension", "segment"))
        key = str(alert.reason.get("key", alert.segment))
        spec = self.shares.spec
        current = window_start(now.timestamp(), spec.seconds)
        baseline = [current - k * spec.seconds for k in range(1, self.rule.baseline_windows + 1)]
        try:
            found = await self.explain.of_drop(dimension, key, str(alert.reason["metric"]),
                                               spec, current, baseline)
        except Exception:  # the alert goes out without its drivers rather than not at all
            log.exception("the drivers of alert %s could not be read", alert.alert_id)
            return alert
        if found is None:
            return alert
        named = f": {found['summary']}" if found["summary"] else ""
        return alert.model_copy(update={"summary": alert.summary + named,
                                        "context": {**alert.context, "drivers": found}})

    async def _resolve(self, recovered: dict[tuple[str, str, str], dict[str, Any]],
                       now: datetime) -> None:
        for alert_key, (dimension, key, metric) in list(self.raised.subjects.items()):
            figures = recovered.get((dimension, key, metric))
            if figures is not None and self.raised.resolve(alert_key):
                await (await self.publisher.resolution(
                    alert_key, f"{metric.upper()} of {dimension} {key} is back at "
                    f"{figures['current']:g} (baseline {figures['baseline']:g}, floor "
                    f"{figures['floor']:g}, n={figures['current_n']})", now))


class RaisedGroupAlerts:
    """Ids of a group rule's alerts already on cx.alerts since a window start.

    Loaded from the topic when a worker takes over the evaluation, so a restart or a
    failover does not publish the same alert again.
    """

    def __init__(self, settings: Settings, rule: str) -> None:
        self.settings = settings
        self.rule = rule
        self.ids: set[str] = set()
        #: id -> (dimension, key, metric)
        self.subjects: dict[str, tuple[str, str, str]] = {}
        self.resolved: set[str] = set()
        self.loaded_since: int | None = None

    def forget(self) -> None:
        self.ids.clear()
        self.subjects.clear()
        self.resolved.clear()
        self.loaded_since = None

    def add(self, alert_id: str, alert: Alert | None = None) -> bool:
        """Remember an id; False if it was already raised."""
        if alert is not None and alert.reason.get("metric"):
            reason = alert.reason  # before 0.5: segments only, named in ``segment``
            key = reason.get("key", alert.segment)
            if key is not None:
                self.subjects[alert_id] = (str(reason.get("dimension", "segment")), str(key),
                                           str(reason["metric"]))
        if alert_id in self.ids:
            return False
        self.ids.add(alert_id)
        return True

    def resolve(self, alert_id: str) -> bool:
        """Remember a resolution sent; False if it was sent already (by this worker)."""
        if alert_id in self.resolved:
            return False
        self.resolved.add(alert_id)
        return True

    async def load_since(self, start: int) -> None:
        if self.loaded_since is not None and self.loaded_since <= start:
            return
        for record in await read_topic(self.settings, self.settings.topic_alerts,
                                       timeout_seconds=60, since=start):
            rule = dict(record.headers or ()).get(RULE_HEADER)
            if not record.value or (rule is not None and rule != self.rule.encode()):
                continue
            alert = _parse_alert(record.value)  # a record without the header: by its body
            if alert is not None and alert.rule == self.rule:
                self.add(alert.alert_id, alert)
                if alert.notice == "resolved":
                    self.resolved.add(alert.alert_id)
        self.loaded_since = start


def _parse_alert(raw: bytes) -> Alert | None:
    try:
        return Alert.model_validate_json(raw)
    except ValidationError:
        log.exception("unreadable alert message")
        return None
