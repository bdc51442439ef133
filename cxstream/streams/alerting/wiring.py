"""Wire the alert rules to Faust: publish alerts, count recurring issues, watch segment
scores, and deliver alerts to the webhook and the log.

Topics and tables:
- ``cx.alerts`` (record of truth; key: customer_id, or the group for group alerts);
- ``<app_id>-issue-signals`` (internal, keyed by "touchpoint:<name>" or "topic:<name>") and
  table ``issue_windows``: distinct customers per key and window;
- ``<app_id>-segment-shares`` (internal, keyed by segment) and table ``segment_tallies``:
  every input partition's tally of a segment window, where the segment drops are
  evaluated (streams.groups.segment_drops);
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
)
from cxstream.alerts.reactions import AlertOut, ResolveOut, SignalOut
from cxstream.alerts.receivers import log_line
from cxstream.schemas.export import CONTRACT_VERSION
from cxstream.schemas.outputs import Alert
from cxstream.scoring.conventions import Conventions
from cxstream.scoring.partials_index import PartialsIndex
from cxstream.scoring.windows import WindowSpec, window_start
from cxstream.streams.alerting.cases import AlertCases, AlertEvent, subject_key
from cxstream.streams.alerting.webhooks import start_webhook_sink
from cxstream.streams.customers.survey_desk import SurveyOut
from cxstream.streams.groups.segment_drops import (
    SegmentShares,
    SegmentTallies,
    ShareOut,
)
from cxstream.streams.kafka.changelog import BulkChangelog, kafka_sender
from cxstream.streams.kafka.clients import alert_event_topic, segment_shares_topic
from cxstream.streams.kafka.faust_compat.access import writing_for
from cxstream.streams.kafka.plain_clients import read_topic
from cxstream.streams.kafka.stores import state_store
from cxstream.streams.kafka.timers import state_timer
from cxstream.streams.metrics import WorkerMetrics
from cxstream.streams.settings import Settings

log = logging.getLogger(__name__)


#: header of every alert record: its rule, so a reader looking for one rule parses only
#: those records
RULE_HEADER = "cx.rule"
#: header of every output record: the contract version its value follows
VERSION_HEADER = "cx.contract.version"
#: the CloudEvents source of this deployment's alerts (a URI reference)
EVENT_SOURCE = "/cxstream"


def alert_headers(alert: Alert, source: str = EVENT_SOURCE) -> dict[str, bytes]:
    """Kafka headers of an alert record: its rule, the contract version, and the
    CloudEvents attributes in binary mode (Kafka protocol binding: ``ce_`` headers and
    ``content-type``), so that CloudEvents tooling reads cx.alerts as it is. An update
    (a later trigger folded in: ``occurrences``), an escalation or a resolution is
    another event of the same alert: its id says which, and a record sent again after a
    crash keeps its id (a consumer drops it as a duplicate)."""
    if alert.notice is None and alert.occurrences == 1:
        event_id, kind, at = alert.alert_id, "raised", alert.created_at
    elif alert.notice is None:
        event_id, kind = f"{alert.alert_id}:{alert.occurrences}", "updated"
        at = alert.created_at
    else:
        event_id = f"{alert.alert_id}:{alert.notice}:{alert.escalations}"
        kind, at = alert.notice, alert.notice_at or alert.created_at
    subject = alert.customer_id or alert.segment or alert.alert_id
    return {RULE_HEADER: alert.rule.encode(), VERSION_HEADER: CONTRACT_VERSION.encode(),
            "ce_specversion": b"1.0", "ce_id": event_id.encode(),
            "ce_type": f"cxstream.alert.{kind}.v{CONTRACT_VERSION}".encode(),
            "ce_source": source.encode(), "ce_time": at.isoformat().encode(),
            "ce_subject": subject.encode(), "content-type": b"application/json"}


def _now() -> datetime:
    return datetime.now(UTC)


class AlertPublisher:
    """Where alert messages go: ``cx.alerts`` (keyed by subject, the record of truth for
    consumers) and the alert events topic (keyed by alert id: the cases are kept from it).
    Each method returns what to await for Kafka's acknowledgement."""

    def __init__(self, alerts_topic: Any, events_topic: Any,
                 source: str = EVENT_SOURCE) -> None:
        self.alerts_topic = alerts_topic
        self.events_topic = events_topic
        self.source = source  # CloudEvents source

    async def alert(self, alert: Alert) -> Any:
        first = await publish_alert(self.alerts_topic, alert, self.source)
        second = await self.events_topic.send(
            key=alert.alert_id.encode(),
            value=AlertEvent(alert=alert).model_dump_json(exclude_none=True).encode())
        return asyncio.gather(first, second)

    async def follow_up(self, alert: Alert) -> Any:
        """An escalation or a resolution, for the sinks (cx.alerts only)."""
        log.info("ALERT %s %s", (alert.notice or "").upper(), log_line(alert))
        return await self.alerts_topic.send(key=subject_key(alert),
                                            value=alert.model_dump_json().encode(),
                                            headers=alert_headers(alert, self.source))

    async def resolution(self, alert_id: str, reason: str, at: datetime) -> Any:
        event = AlertEvent(resolve=alert_id, reason=reason, at=at)
        return await self.events_topic.send(
            key=alert_id.encode(), value=event.model_dump_json(exclude_none=True).encode())


class AlertEmitter:
    """Publishes what the fold's reactions produced."""

    def __init__(self, publisher: AlertPublisher, signals_topic: Any,
                 metrics: WorkerMetrics, shares_topic: Any = None,
                 surveys_topic: Any = None) -> None:
        self.publisher = publisher
        self.shares_topic = shares_topic
        self.surveys_topic = surveys_topic  # cx.survey-requests
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
            elif isinstance(output, ShareOut) and self.shares_topic is not None:
                acks.append(await self.shares_topic.send(key=output.segment.encode(),
                                                         value=output.encode()))
            elif isinstance(output, SurveyOut) and self.surveys_topic is not None:
                acks.append(await self.surveys_topic.send(
                    key=output.key, value=output.encode(),
                    headers={VERSION_HEADER: CONTRACT_VERSION.encode()}))
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


async def publish_alert(alerts_topic: Any, alert: Alert, source: str = EVENT_SOURCE) -> Any:
    """Publish to cx.alerts; the log sink writes the first occurrence as one line.
    Returns what to await for Kafka's acknowledgement."""
    ack = await alerts_topic.send(key=subject_key(alert),
                                  value=alert.model_dump_json().encode(),
                                  headers=alert_headers(alert, source))
    if alert.occurrences == 1:
        log.info("ALERT %s", log_line(alert))
    return ack


def register_alerting(app: Any, settings: Settings, config: RulesConfig, metrics: WorkerMetrics,
                      partitions: int, alerts_partitions: int,
                      conventions: Conventions, windows: tuple[WindowSpec, ...],
                      shares: SegmentShares | None, input_owned: Callable[[], set[int]]
                      ) -> tuple[AlertEmitter, AlertCases]:
    """Add the alert topics, tables and agents; return the emitter for the state writer
    (``shares``: segment_shares, the segment drops' part of it)."""
    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    alerts_topic = app.topic(settings.topic_alerts, **raw)
    signals_topic = app.topic(f"{settings.app_id}-issue-signals", partitions=partitions,
                              internal=True, **raw)
    events_topic = app.topic(alert_event_topic(settings), partitions=alerts_partitions,
                             internal=True, **raw)
    publisher = AlertPublisher(alerts_topic, events_topic, f"{EVENT_SOURCE}/{settings.app_id}")
    cases = _register_alert_cases(app, settings, config, metrics, publisher, events_topic,
                                  alerts_partitions)
    _register_recurring_issues(app, settings, config, metrics, publisher, signals_topic,
                               partitions)
    shares_topic = _register_segment_drops(app, settings, config, metrics, publisher,
                                           conventions, partitions, shares, input_owned)
    _register_sinks(app, settings, config, metrics)
    surveys_topic = app.topic(settings.topic_survey_requests, **raw)
    return AlertEmitter(publisher, signals_topic, metrics, shares_topic, surveys_topic), cases


def _register_alert_cases(app: Any, settings: Settings, config: RulesConfig,
                          metrics: WorkerMetrics, publisher: AlertPublisher, events_topic: Any,
                          partitions: int) -> AlertCases:
    # the table's changelog is the lifecycle topic of the contract (compacted, created
    # with as many partitions as cx.alerts by ensure_topics)
    lifecycle_topic = app.topic(settings.topic_alert_lifecycle, partitions=partitions,
                                key_serializer="raw", value_serializer="raw")
    table = app.Table("alert_cases", partitions=partitions, key_type=bytes,
                      value_type=bytes, changelog_topic=lifecycle_topic,
                      **state_store(settings, "alert_cases"))
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

    @state_timer(app, config.lifecycle.check_every_seconds, metrics)
    async def check_alert_deadlines() -> None:
        await cases.check_deadlines()

    @state_timer(app, 5.0, metrics)
    async def forget_resolved_alerts() -> None:
        # 500 stored cases looked at per tick (about 6 ms: bench/alert_cases.py): a whole
        # walk of a million cases takes under three hours, far within the retention's days
        await cases.forget_resolved(settings.alert_case_retention_days, slice_size=500)

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
                                        if tp.topic == signals_topic.get_topic_name()},
                               settings.max_group_keys, metrics)

    @issue_windows.on_recover
    async def index_issue_windows_again() -> None:
        expiry.table_recovered()

    @app.agent(signals_topic, name="count_recurring_issues", concurrency=1)
    async def count_recurring_issues(stream: Any) -> None:
        async for events in stream.take_events(settings.batch_size,
                                               within=settings.batch_timeout_seconds):
            for event in events:
                with writing_for(event):
                    alert = _fold_signal_event(event, issue_windows, config, retention,
                                               expiry)
                if alert is not None:
                    await (await publisher.alert(alert))
                    metrics.alerts_raised.labels(alert.rule, alert.severity).inc()
            await expiry.maybe_sweep(time.time())

    if config.recurring_issue.auto_resolve:
        @state_timer(app, min(60.0, config.recurring_issue.window_minutes * 15.0), metrics)
        async def resolve_recovered_issues() -> None:
            await expiry.resolve_recovered(time.time(), publisher)


class IssueWindowExpiry:
    """Deletes issue windows past their retention, from the partitions this worker owns,
    at most once a minute (tombstones in the table's changelog), and resolves the alerts
    of windows that recovered.

    Neither scans the table: the windows' keys by partition and start, and the windows
    with an open alert, are read from it once (after each recovery) and then follow every
    write.

    Keys are capped too (``max_keys`` groups per partition and window, the group-key cap):
    random touchpoint strings would otherwise grow the table with traffic. A signal past
    the cap counts in its partition's overflow window (``OVERFLOW``), which raises no
    alert (it mixes unrelated causes) and is counted by cxstream_group_keys_overflow_total.
    The overflow group names its partition, so its key never collides with another
    partition's, and starts with "(" where every real group starts with its kind.
    """

    OVERFLOW = "(other)#"

    EVERY_SECONDS = 60.0

    def __init__(self, table: Any, config: RulesConfig, retention: float, partitions: int,
                 changelog: BulkChangelog, owned: Callable[[], set[int]],
                 max_keys: int = 1_000, metrics: WorkerMetrics | None = None) -> None:
        self.table = table
        self.max_keys = max_keys
        self.metrics = metrics
        self.config = config
        self.retention = retention
        self.partitions = list(range(partitions))
        self.changelog = changelog
        self.owned = owned
        self.partitioner = DefaultPartitioner()  # the producer's: where a group's key went
        self.last_sweep = 0.0
        self.expired = 0
        #: partition -> window start -> keys (None: to be read from the table first)
        self._starts: dict[int, dict[int, set[bytes]]] | None = None
        #: key -> partition of the windows with an alert not resolved (None: to be read)
        self._open: dict[bytes, int] | None = None

    def partition_of(self, group: str) -> int:
        if group.startswith(self.OVERFLOW):
            return int(group[len(self.OVERFLOW):].split(":", 1)[0])
        return int(self.partitioner(group.encode(), self.partitions, self.partitions))

    def capped_key(self, signal: Signal, start: int, partition: int) -> tuple[bytes, bool]:
        """The key ``signal`` counts under in its window: its own, or (True) its
        partition's overflow window once the window holds ``max_keys`` groups."""
        key = issue_window_key(signal.group, start)
        keys = self._index().get(partition, {}).get(start, set())
        if key in keys or len(keys) < self.max_keys:
            return key, False
        if self.metrics is not None:
            self.metrics.group_keys_overflow.labels(f"issue_{signal.kind}").inc()
        return issue_window_key(f"{self.OVERFLOW}{partition}:{signal.kind}", start), True

    def table_recovered(self) -> None:
        self._starts = None  # read again at the next use

    def note(self, key: bytes, window: IssueWindow) -> None:
        """Follow a write of the table."""
        if self._starts is None:
            return  # the table is read in full at the next use, this write with it
        group, start = parse_issue_window_key(key)
        partition = self.partition_of(group)
        self._starts.setdefault(partition, {}).setdefault(start, set()).add(key)
        if self._open is None:
            return
        if window.alert is not None and not window.resolved:
            self._open[key] = partition
        else:
            self._open.pop(key, None)

    def _index(self) -> dict[int, dict[int, set[bytes]]]:
        if self._starts is None:
            self._starts, self._open = {}, None
            for key in list(self.table.keys()):
                group, start = parse_issue_window_key(key)
                partition = self.partition_of(group)
                self._starts.setdefault(partition, {}).setdefault(start, set()).add(key)
        return self._starts

    def _open_windows(self) -> dict[bytes, int]:
        starts = self._index()
        if self._open is None:
            self._open = {}
            for partition, by_start in starts.items():
                for keys in by_start.values():
                    for key in keys:
                        raw = self.table.get(key)
                        if raw and b'"alert":null' not in raw:  # may be open: decoded
                            window = IssueWindow.model_validate_json(raw)
                            if window.alert is not None and not window.resolved:
                                self._open[key] = partition
        return self._open

    async def resolve_recovered(self, now: float, publisher: AlertPublisher) -> int:
        """Resolve the alerts of issue windows whose next whole window stayed below the
        threshold (alerts.group_rules.issue_recovered); returns how many."""
        open_windows = self._open_windows()
        owned = self.owned()
        rule = self.config.recurring_issue
        resolved = 0
        for key, partition in sorted(open_windows.items()):
            if partition not in owned:
                continue
            raw = self.table.get(key)
            window = IssueWindow.model_validate_json(raw) if raw else None
            if window is None or window.alert is None or window.resolved:
                open_windows.pop(key, None)
                continue
            group, start = parse_issue_window_key(key)
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
            done = window.model_copy(update={"resolved": True})
            self.changelog.set(self.table, partition, key, done.model_dump_json().encode())
            self.note(key, done)
            resolved += 1
        if resolved:
            await self.changelog.flush()
        return resolved

    async def maybe_sweep(self, now: float) -> int:
        if now - self.last_sweep < self.EVERY_SECONDS:
            return 0
        self.last_sweep = now
        starts = self._index()
        deleted = 0
        for partition in sorted(self.owned() & set(starts)):
            by_start = starts[partition]
            for start in sorted(by_start):
                if not issue_window_expired(start, self.config.recurring_issue, now,
                                            self.retention):
                    break  # later starts expire later
                for key in sorted(by_start.pop(start)):
                    self.changelog.delete(self.table, partition, key)
                    if self._open is not None:
                        self._open.pop(key, None)
                    deleted += 1
        if deleted:
            await self.changelog.flush()
            self.expired += deleted
            log.info("%d issue windows expired", deleted)
        return deleted


def _fold_signal_event(event: Any, issue_windows: Any, config: RulesConfig,
                       retention: float, expiry: IssueWindowExpiry | None = None
                       ) -> Alert | None:
    try:
        signal = Signal.model_validate_json(event.message.value)
    except ValidationError:
        log.exception("unreadable issue signal at offset %d", event.message.offset)
        return None
    start = issue_window_start(signal, config.recurring_issue)
    if issue_window_expired(start, config.recurring_issue, time.time(), retention):
        return None  # its window is gone: it must not be counted again from zero
    key, overflow = (expiry.capped_key(signal, start, event.message.partition)
                     if expiry is not None else (issue_window_key(signal.group, start), False))
    stored = issue_windows.get(key)
    window = IssueWindow.model_validate_json(stored) if stored else IssueWindow()
    window, alert = fold_signal(window, signal, event.message.offset,
                                _without_alerts(config) if overflow else config, _now())
    issue_windows[key] = window.model_dump_json().encode()
    if expiry is not None:
        expiry.note(key, window)
    return alert


def _without_alerts(config: RulesConfig) -> RulesConfig:
    """The rules with the recurring-issue rule off: an overflow window only counts."""
    rule = config.recurring_issue.model_copy(update={"enabled": False})
    return config.model_copy(update={"recurring_issue": rule})


def _register_segment_drops(app: Any, settings: Settings, config: RulesConfig,
                            metrics: WorkerMetrics, publisher: AlertPublisher,
                            conventions: Conventions, partitions: int,
                            shares: SegmentShares | None,
                            input_owned: Callable[[], set[int]]) -> Any:
    """The shares' topic (returned: None without the rule), table and agent, and the
    evaluation timer (streams.groups.segment_drops)."""
    rule = config.segment_drop
    if shares is None:
        return None
    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    shares_topic = app.topic(segment_shares_topic(settings.app_id), partitions=partitions,
                             internal=True, **raw)
    table = app.Table("segment_tallies", partitions=partitions, key_type=bytes,
                      value_type=bytes)

    def owned() -> set[int]:
        return {tp.partition for tp in app.assignor.assigned_actives()
                if tp.topic == shares_topic.get_topic_name()}

    tallies = SegmentTallies(table, shares.spec, config, conventions,
                             BulkChangelog(kafka_sender(app)), owned)
    app.cx_segment_tallies = tallies  # type: ignore[attr-defined]  # for inspection
    raised = RaisedGroupAlerts(settings, "segment_drop")
    evaluated_for: list[set[int]] = [set()]  # the partitions the raised ids were read for

    @table.on_recover
    async def read_segment_tallies_again() -> None:
        tallies.load(list(table.items()), owned())

    @app.agent(shares_topic, name="fold_segment_shares", concurrency=1)
    async def fold_segment_shares(stream: Any) -> None:
        async for events in stream.take_events(settings.batch_size,
                                               within=settings.batch_timeout_seconds):
            for event in events:
                tallies.fold(event.message.partition, event.message.value)
            await tallies.changelog.flush()

    async def send_again() -> None:
        resent = shares.resend(time.time(), input_owned())
        acks = [await shares_topic.send(key=share.segment.encode(), value=share.encode())
                for share in resent]
        await asyncio.gather(*acks)
        if resent:
            log.info("%d segment shares sent again after a recovery", len(resent))

    @state_timer(app, rule.evaluate_every_seconds, metrics)
    async def check_segment_drops() -> None:
        try:
            await send_again()
        except Exception:  # the partitions are sent at the next recovery; tallies go on
            log.exception("sending the segment shares again failed")
        mine = owned() & tallies.loaded
        if mine != evaluated_for[0]:
            raised.forget()  # another worker may have raised alerts for these segments
            evaluated_for[0] = mine
        if not mine:
            return
        now = _now()
        spec = shares.spec
        alerts, recovered = tallies.evaluate(now)
        metrics.segment_evaluations.labels("evaluations").inc()
        metrics.segment_evaluations.labels("segments").inc(tallies.segment_count())
        # this window's alerts and the previous one's: both may still be open
        await raised.load_since(window_start(now.timestamp(), spec.seconds) - spec.seconds)
        for alert in alerts:
            if raised.add(alert.alert_id, alert):
                await (await publisher.alert(alert))
                metrics.alerts_raised.labels(alert.rule, alert.severity).inc()
        if rule.auto_resolve:
            for alert_key, (segment, metric) in list(raised.subjects.items()):
                figures = recovered.get((segment, metric))
                if figures is not None and raised.resolve(alert_key):
                    await (await publisher.resolution(
                        alert_key, f"{metric.upper()} of segment {segment} is back at "
                        f"{figures['current']:g} (baseline {figures['baseline']:g}, floor "
                        f"{figures['floor']:g}, n={figures['current_n']})", now))
        await tallies.expire(now.timestamp())

    return shares_topic


def segment_shares(config: RulesConfig, windows: tuple[WindowSpec, ...],
                   index: PartialsIndex) -> SegmentShares | None:
    """What the state writer sends for segment drops (None: the rule is off); raises
    ValueError for a window the rules do not keep."""
    rule = config.segment_drop
    if not rule.enabled:
        return None
    spec = next((s for s in windows if s.name == rule.window), None)
    if spec is None:
        raise ValueError(f"segment_drop.window {rule.window!r} is not one of "
                         f"{', '.join(s.name for s in windows)}")
    return SegmentShares(spec, rule.baseline_windows, index)


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


def _register_sinks(app: Any, settings: Settings, config: RulesConfig,
                    metrics: WorkerMetrics) -> None:
    start_webhook_sink(app, settings, config, metrics)


def _parse_alert(raw: bytes) -> Alert | None:
    try:
        return Alert.model_validate_json(raw)
    except ValidationError:
        log.exception("unreadable alert message")
        return None
