"""Recurring issues: the same touchpoint or comment topic for many customers in a window.

Issue signals (``<app_id>-issue-signals``, keyed by "touchpoint:<name>" or
"topic:<name>") are counted per key and window in the table ``issue_windows`` by the agent
``count_recurring_issues``; an alert is raised when a window reaches the rule's customers,
and resolved when the next window stays below it.
"""

from __future__ import annotations

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
from cxstream.schemas.outputs import Alert
from cxstream.streams.alerting.publishing import AlertPublisher
from cxstream.streams.kafka.changelog import BulkChangelog
from cxstream.streams.kafka.faust_compat.access import writing_for
from cxstream.streams.metrics import WorkerMetrics

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


class RecurringIssues:
    """The agent's and the timer's work: signals counted, alerts raised and resolved."""

    def __init__(self, expiry: IssueWindowExpiry, publisher: AlertPublisher,
                 metrics: WorkerMetrics) -> None:
        self.expiry = expiry
        self.publisher = publisher
        self.metrics = metrics

    async def count(self, events: list[Any]) -> None:
        """One batch of issue signals (agent ``count_recurring_issues``)."""
        expiry = self.expiry
        for event in events:
            with writing_for(event):
                alert = fold_signal_event(event, expiry.table, expiry.config,
                                          expiry.retention, expiry)
            if alert is not None:
                await (await self.publisher.alert(alert))
                self.metrics.alerts_raised.labels(alert.rule, alert.severity).inc()
        await expiry.maybe_sweep(time.time())

    async def resolve_recovered(self) -> int:
        """Timer ``resolve_recovered_issues``."""
        return await self.expiry.resolve_recovered(time.time(), self.publisher)


def issue_retention(settings_lateness: float, config: RulesConfig) -> float:
    """How long an issue window is kept: a late event may still raise alerts (and
    signals) this long after its time."""
    return max(settings_lateness, config.max_event_age_hours * 3_600)


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


def fold_signal_event(event: Any, issue_windows: Any, config: RulesConfig,
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
