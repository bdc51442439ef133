"""Wire the alert rules to Faust: publish alerts, count recurring issues, watch segment
scores, and deliver alerts to the webhook and the log.

Topics and tables:
- ``cx.alerts`` (record of truth; key: customer_id, or the group for group alerts);
- ``<app_id>-issue-signals`` (internal, keyed by "touchpoint:<name>" or "topic:<name>") and
  table ``issue_windows``: distinct customers per key and window;
- the webhook sink reads cx.alerts with a plain consumer (streams.webhook_sink).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiokafka.partitioner import DefaultPartitioner
from pydantic import ValidationError

from cxstream.alerts.config import RulesConfig
from cxstream.alerts.group_rules import (
    IssueWindow,
    Signal,
    fold_signal,
    issue_recovered,
    issue_window_expired,
    issue_window_key,
    issue_window_start,
    parse_issue_window_key,
    segment_drop_alerts,
    segment_recovered,
)
from cxstream.alerts.reactions import AlertOut, ResolveOut, SignalOut
from cxstream.alerts.sinks import log_line
from cxstream.schemas.outputs import Alert
from cxstream.scoring.conventions import Conventions
from cxstream.scoring.reports import merge_rows
from cxstream.scoring.tallies import Tally
from cxstream.scoring.windows import WindowSpec, window_start
from cxstream.streams.alert_cases import AlertCases, AlertEvent, subject_key
from cxstream.streams.changelog import BulkChangelog, kafka_sender
from cxstream.streams.clients import alert_event_topic
from cxstream.streams.cluster import Cluster, ClusterIncomplete
from cxstream.streams.faust_compat.access import writing_for
from cxstream.streams.io import read_topic
from cxstream.streams.metrics import WorkerMetrics
from cxstream.streams.settings import Settings
from cxstream.streams.webhook_sink import start_webhook_sink

log = logging.getLogger(__name__)


#: header of every alert record: its rule, so a reader looking for one rule parses only
#: those records
RULE_HEADER = "cx.rule"


def _now() -> datetime:
    return datetime.now(UTC)


class AlertPublisher:
    """Where alert messages go: ``cx.alerts`` (keyed by subject, the record of truth for
    consumers) and the alert events topic (keyed by alert id: the cases are kept from it).
    Each method returns what to await for Kafka's acknowledgement."""

    def __init__(self, alerts_topic: Any, events_topic: Any) -> None:
        self.alerts_topic = alerts_topic
        self.events_topic = events_topic

    async def alert(self, alert: Alert) -> Any:
        first = await publish_alert(self.alerts_topic, alert)
        second = await self.events_topic.send(
            key=alert.alert_id.encode(),
            value=AlertEvent(alert=alert).model_dump_json(exclude_none=True).encode())
        return asyncio.gather(first, second)

    async def follow_up(self, alert: Alert) -> Any:
        """An escalation or a resolution, for the sinks (cx.alerts only)."""
        log.info("ALERT %s %s", (alert.notice or "").upper(), log_line(alert))
        return await self.alerts_topic.send(key=subject_key(alert),
                                            value=alert.model_dump_json().encode(),
                                            headers={RULE_HEADER: alert.rule.encode()})

    async def resolution(self, alert_id: str, reason: str, at: datetime) -> Any:
        event = AlertEvent(resolve=alert_id, reason=reason, at=at)
        return await self.events_topic.send(
            key=alert_id.encode(), value=event.model_dump_json(exclude_none=True).encode())


class AlertEmitter:
    """Publishes what the fold's reactions produced."""

    def __init__(self, publisher: AlertPublisher, signals_topic: Any,
                 metrics: WorkerMetrics) -> None:
        self.publisher = publisher
        self.signals_topic = signals_topic
        self.metrics = metrics

    async def emit(self, outputs: list[Any]) -> None:
        """Send every output, then wait until Kafka acknowledged them all (the batch's
        state and offsets must not be written before); safe to call again after a
        failure: alert ids and signals are idempotent downstream."""
        acks = []
        for output in outputs:
            if isinstance(output, AlertOut):
                acks.append(await self.publisher.alert(output.alert))
            elif isinstance(output, ResolveOut):
                resolution = output.resolution
                acks.append(await self.publisher.resolution(
                    resolution.alert_id, resolution.reason, resolution.at))
            elif isinstance(output, SignalOut):
                signal = output.signal
                acks.append(await self.signals_topic.send(
                    key=signal.group.encode(), value=signal.model_dump_json().encode()))
        await asyncio.gather(*acks)
        for output in outputs:
            if isinstance(output, AlertOut):
                self._count(output)
                if output.source_time is not None:
                    self.metrics.alert_latency.observe(max(time.time() - output.source_time,
                                                           0.0))
            elif isinstance(output, SignalOut):
                self.metrics.signals_emitted.labels(output.signal.kind).inc()

    def _count(self, output: AlertOut) -> None:
        alert = output.alert
        if output.status == "new":
            self.metrics.alerts_raised.labels(alert.rule, alert.severity).inc()
        else:
            self.metrics.alerts_folded.labels(alert.rule).inc()


async def publish_alert(alerts_topic: Any, alert: Alert) -> Any:
    """Publish to cx.alerts; the log sink writes the first occurrence as one line.
    Returns what to await for Kafka's acknowledgement."""
    ack = await alerts_topic.send(key=subject_key(alert),
                                  value=alert.model_dump_json().encode(),
                                  headers={RULE_HEADER: alert.rule.encode()})
    if alert.occurrences == 1:
        log.info("ALERT %s", log_line(alert))
    return ack


def register_alerting(app: Any, settings: Settings, config: RulesConfig, metrics: WorkerMetrics,
                      cluster: Cluster, partitions: int, alerts_partitions: int,
                      conventions: Conventions, windows: tuple[WindowSpec, ...]
                      ) -> tuple[AlertEmitter, AlertCases]:
    """Add the alert topics, tables and agents; return the emitter for the state writer."""
    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    alerts_topic = app.topic(settings.topic_alerts, **raw)
    signals_topic = app.topic(f"{settings.app_id}-issue-signals", partitions=partitions,
                              internal=True, **raw)
    events_topic = app.topic(alert_event_topic(settings), partitions=alerts_partitions,
                             internal=True, **raw)
    publisher = AlertPublisher(alerts_topic, events_topic)
    cases = _register_alert_cases(app, settings, config, metrics, publisher, events_topic,
                                  alerts_partitions)
    _register_recurring_issues(app, settings, config, metrics, publisher, signals_topic,
                               partitions)
    _register_segment_drops(app, settings, config, metrics, cluster, publisher,
                            conventions, windows)
    _register_sinks(app, settings, config, metrics)
    return AlertEmitter(publisher, signals_topic, metrics), cases


def _register_alert_cases(app: Any, settings: Settings, config: RulesConfig,
                          metrics: WorkerMetrics, publisher: AlertPublisher, events_topic: Any,
                          partitions: int) -> AlertCases:
    # the table's changelog is the lifecycle topic of the contract (compacted, created
    # with as many partitions as cx.alerts by ensure_topics)
    lifecycle_topic = app.topic(settings.topic_alert_lifecycle, partitions=partitions,
                                key_serializer="raw", value_serializer="raw")
    table = app.Table("alert_cases", partitions=partitions, key_type=bytes,
                      value_type=bytes, changelog_topic=lifecycle_topic)
    cases = AlertCases(table, config, metrics, partitions, BulkChangelog(kafka_sender(app)),
                       lambda: {tp.partition for tp in app.assignor.assigned_actives()
                                if tp.topic == events_topic.get_topic_name()},
                       publisher.follow_up)
    app.cx_alert_cases = cases  # type: ignore[attr-defined]  # for the API and inspection

    @table.on_recover
    async def read_open_cases_again() -> None:
        cases.table_recovered()

    @app.agent(events_topic, name="track_alert_cases", concurrency=1)
    async def track_alert_cases(stream: Any) -> None:
        async for events in stream.take_events(settings.batch_size,
                                               within=settings.batch_timeout_seconds):
            await cases.take_events([event.message.value for event in events])

    @app.timer(config.lifecycle.check_every_seconds)
    async def check_alert_deadlines() -> None:
        try:
            await cases.check_deadlines()
        except Exception:  # the next check tries again; nothing is lost meanwhile
            log.exception("checking alert deadlines failed")

    return cases


def _register_recurring_issues(app: Any, settings: Settings, config: RulesConfig,
                               metrics: WorkerMetrics, publisher: AlertPublisher,
                               signals_topic: Any, partitions: int) -> None:
    issue_windows = app.Table("issue_windows", partitions=partitions, key_type=bytes,
                              value_type=bytes)
    # a late event may still raise alerts (and signals) this long after its time
    retention = max(settings.allowed_lateness_seconds, config.max_event_age_hours * 3_600)
    expiry = IssueWindowExpiry(issue_windows, config, retention, partitions,
                               BulkChangelog(kafka_sender(app)),
                               lambda: {tp.partition for tp in app.assignor.assigned_actives()
                                        if tp.topic == signals_topic.get_topic_name()})

    @app.agent(signals_topic, name="count_recurring_issues", concurrency=1)
    async def count_recurring_issues(stream: Any) -> None:
        async for events in stream.take_events(settings.batch_size,
                                               within=settings.batch_timeout_seconds):
            for event in events:
                with writing_for(event):
                    alert = _fold_signal_event(event, issue_windows, config, retention)
                if alert is not None:
                    await (await publisher.alert(alert))
                    metrics.alerts_raised.labels(alert.rule, alert.severity).inc()
            await expiry.maybe_sweep(time.time())

    if config.recurring_issue.auto_resolve:
        @app.timer(min(60.0, config.recurring_issue.window_minutes * 15.0))
        async def resolve_recovered_issues() -> None:
            await expiry.resolve_recovered(time.time(), publisher)


class IssueWindowExpiry:
    """Deletes issue windows past their retention, from the partitions this worker owns,
    at most once a minute (tombstones in the table's changelog)."""

    EVERY_SECONDS = 60.0

    def __init__(self, table: Any, config: RulesConfig, retention: float, partitions: int,
                 changelog: BulkChangelog, owned: Callable[[], set[int]]) -> None:
        self.table = table
        self.config = config
        self.retention = retention
        self.partitions = list(range(partitions))
        self.changelog = changelog
        self.owned = owned
        self.partitioner = DefaultPartitioner()  # the producer's: where a group's key went
        self.last_sweep = 0.0
        self.expired = 0

    def partition_of(self, group: str) -> int:
        return int(self.partitioner(group.encode(), self.partitions, self.partitions))

    async def resolve_recovered(self, now: float, publisher: AlertPublisher) -> int:
        """Resolve the alerts of issue windows whose next whole window stayed below the
        threshold (alerts.group_rules.issue_recovered); returns how many."""
        owned = self.owned()
        rule = self.config.recurring_issue
        resolved = 0
        for key in list(self.table.keys()):
            group, start = parse_issue_window_key(key)
            partition = self.partition_of(group)
            if partition not in owned:
                continue
            window = IssueWindow.model_validate_json(self.table[key])
            if window.alert is None or window.resolved:
                continue
            following_raw = self.table.get(issue_window_key(group,
                                                            start + rule.window_minutes * 60))
            following = (IssueWindow.model_validate_json(following_raw) if following_raw
                         else None)
            if not issue_recovered(start, following, rule, now):
                continue
            reason = (f"fewer than {rule.min_customers} customers in the next "
                      f"{rule.window_minutes} minutes ({following.count if following else 0})")
            await (await publisher.resolution(str(window.alert["alert_id"]), reason,
                                              _now()))
            self.changelog.set(self.table, partition, key, window.model_copy(
                update={"resolved": True}).model_dump_json().encode())
            resolved += 1
        if resolved:
            await self.changelog.flush()
        return resolved

    async def maybe_sweep(self, now: float) -> int:
        if now - self.last_sweep < self.EVERY_SECONDS:
            return 0
        self.last_sweep = now
        owned = self.owned()
        deleted = 0
        for key in list(self.table.keys()):
            group, start = parse_issue_window_key(key)
            partition = self.partition_of(group)
            if partition in owned and issue_window_expired(
                    start, self.config.recurring_issue, now, self.retention):
                self.changelog.delete(self.table, partition, key)
                deleted += 1
        if deleted:
            await self.changelog.flush()
            self.expired += deleted
            log.info("%d issue windows expired", deleted)
        return deleted


def _fold_signal_event(event: Any, issue_windows: Any, config: RulesConfig,
                       retention: float) -> Alert | None:
    try:
        signal = Signal.model_validate_json(event.message.value)
    except ValidationError:
        log.exception("unreadable issue signal at offset %d", event.message.offset)
        return None
    start = issue_window_start(signal, config.recurring_issue)
    if issue_window_expired(start, config.recurring_issue, time.time(), retention):
        return None  # its window is gone: it must not be counted again from zero
    key = issue_window_key(signal.group, start)
    stored = issue_windows.get(key)
    window = IssueWindow.model_validate_json(stored) if stored else IssueWindow()
    window, alert = fold_signal(window, signal, event.message.offset, config, _now())
    issue_windows[key] = window.model_dump_json().encode()
    return alert


def _register_segment_drops(app: Any, settings: Settings, config: RulesConfig,
                            metrics: WorkerMetrics, cluster: Cluster, publisher: AlertPublisher,
                            conventions: Conventions, windows: tuple[WindowSpec, ...]) -> None:
    rule = config.segment_drop
    if not rule.enabled:
        return
    spec = next((s for s in windows if s.name == rule.window), None)
    if spec is None:
        raise ValueError(f"segment_drop.window {rule.window!r} is not one of "
                         f"{', '.join(s.name for s in windows)}")
    raised = RaisedGroupAlerts(settings, "segment_drop")

    # The worker that owns partition 0 evaluates; a timer, not an agent on a one-partition
    # topic: such a topic and its table stalled a worker's consumption after a rebalance.
    @app.timer(rule.evaluate_every_seconds)
    async def check_segment_drops() -> None:
        if 0 not in cluster.active_partitions():
            raised.forget()
            return
        now = _now()
        try:
            alerts, recovered = await _segment_drops(cluster, spec, config, conventions, now)
            # this window's alerts and the previous one's: both may still be open
            await raised.load_since(window_start(now.timestamp(), spec.seconds)
                                    - spec.seconds)
        except ClusterIncomplete as exc:
            log.info("segment drops not evaluated: %s", exc)
            return
        for alert in alerts:
            if raised.add(alert.alert_id, alert):
                await (await publisher.alert(alert))
                metrics.alerts_raised.labels(alert.rule, alert.severity).inc()
        if not rule.auto_resolve:
            return
        for alert_key, (segment, metric) in list(raised.subjects.items()):
            figures = recovered.get((segment, metric))
            if figures is not None and raised.resolve(alert_key):
                await (await publisher.resolution(
                    alert_key, f"{metric.upper()} of segment {segment} is back at "
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
        self.subjects: dict[str, tuple[str, str]] = {}  # id -> (segment, metric)
        self.resolved: set[str] = set()
        self.loaded_since: int | None = None

    def forget(self) -> None:
        self.ids.clear()
        self.subjects.clear()
        self.resolved.clear()
        self.loaded_since = None

    def add(self, alert_id: str, alert: Alert | None = None) -> bool:
        """Remember an id; False if it was already raised."""
        if alert is not None and alert.segment and alert.reason.get("metric"):
            self.subjects[alert_id] = (alert.segment, str(alert.reason["metric"]))
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


async def _segment_drops(cluster: Cluster, spec: WindowSpec, config: RulesConfig,
                         conventions: Conventions, now: datetime
                         ) -> tuple[list[Alert], dict[tuple[str, str], dict[str, Any]]]:
    """The drops to raise, and the (segment, metric) pairs recovered (with figures)."""
    rule = config.segment_drop
    current = window_start(now.timestamp(), spec.seconds)
    starts = [current - k * spec.seconds for k in range(rule.baseline_windows + 1)]
    slices = {(spec.name, start) for start in starts}
    shares = await cluster.gather(
        "/internal/partials",
        {"dimension": "segment", "slices": ",".join(f"{w}:{s}" for w, s in sorted(slices))},
        lambda: cluster.local_partials("segment", slices, None))
    tallies = merge_rows(tuple(row) for share in shares for row in share["rows"])
    alerts = []
    recovered: dict[tuple[str, str], dict[str, Any]] = {}
    for segment in sorted({key for _, _, key in tallies}):
        now_tally = tallies.get((spec.name, current, segment), Tally())
        baseline = Tally()
        for start in starts[1:]:
            baseline = baseline.merge(tallies.get((spec.name, start, segment), Tally()))
        alerts += segment_drop_alerts(segment, now_tally, baseline, spec.name, current, config,
                                      conventions, now)
        for metric in rule.metrics:
            figures = segment_recovered(metric, now_tally, baseline, config, conventions)
            if figures is not None:
                recovered[(segment, metric)] = figures
    return alerts, recovered


def _register_sinks(app: Any, settings: Settings, config: RulesConfig,
                    metrics: WorkerMetrics) -> None:
    start_webhook_sink(app, settings, config, metrics)


def _parse_alert(raw: bytes) -> Alert | None:
    try:
        return Alert.model_validate_json(raw)
    except ValidationError:
        log.exception("unreadable alert message")
        return None
