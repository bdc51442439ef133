"""Rules backtest: replay the input topics through the fold and the alert rules a worker
runs, without Faust and without sending anything, and count the alerts that would fire.

Shape: inputs (read from Kafka) -> merged in record-time order, each partition in offset
order -> validated as the worker validates them -> folded in batches by the worker's own
``StateWriter`` (tables are dicts, outputs are collected instead of sent) -> the group
rules run on what the batches produced: issue signals into issue windows (as the
``count_recurring_issues`` agent), segment shares into segment tallies evaluated at the
worker's evaluation interval (as its timer) -> per rule, severity and owner: the alerts.

The clock is the records' time. A worker decides with its own clock, which for live
traffic is the record's time plus its lag: "too old to alert" (max_event_age_hours), an
issue window's retention and the segment evaluations are all taken at the time each
input was written. One worker owns every partition, so the value bands are those of the
whole base, as every worker computes them once it has the other workers' shares.

What the replay does not know: the state customers had before ``since`` (cooldowns,
recent negative signals, answers counted), except their profiles, read from the
beginning of the customers topic.
"""

from __future__ import annotations

import heapq
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry

from cxstream.alerts.config import RulesConfig
from cxstream.alerts.customer_alerts import ReplayClock
from cxstream.alerts.group_rules import (
    IssueWindow,
    fold_signal,
    issue_window_expired,
    issue_window_key,
    issue_window_start,
)
from cxstream.alerts.reactions import AlertOut, SignalOut
from cxstream.schemas.outputs import Alert
from cxstream.schemas.parsing import Clocks, Rejection, parse_input
from cxstream.scoring.recompute import RawInput
from cxstream.scoring.windows import from_epoch
from cxstream.streams.core import CorePorts, CoreTables, build_core
from cxstream.streams.customers.revaluation import Revaluator
from cxstream.streams.groups.segment_drops import SegmentTallies, ShareOut
from cxstream.streams.ingest.batches import Accepted
from cxstream.streams.kafka.plain_clients import read_topic
from cxstream.streams.metrics import WorkerMetrics
from cxstream.streams.settings import Settings

EXAMPLES_KEPT = 3
#: one alert group of the report: (rule, severity, owner)
GroupKey = tuple[str, str, str]


class _Table(dict[bytes, Any]):
    """A table for the replay: its own store (what ``table_store`` reads)."""

    @property
    def data(self) -> _Table:
        return self


class _NoChangelog:
    """Segment tallies write their changelog through this: the replay keeps no changelog."""

    def set(self, table: Any, partition: int, key: Any, value: Any) -> None:
        pass

    def delete(self, table: Any, partition: int, key: Any) -> None:
        pass

    async def flush(self) -> None:
        pass


class _Source:
    """What a worker's state writer reads of a Faust event: its message (a RawInput has
    the fields it reads: topic, partition, offset, timestamp)."""

    __slots__ = ("__weakref__", "message")

    def __init__(self, message: RawInput) -> None:
        self.message = message


@dataclass
class Report:
    """What the replay of one rules file found."""

    rules: str
    inputs: int = 0
    rejected: int = 0
    first_record: str | None = None
    last_record: str | None = None
    #: alert id -> the alert as first raised
    alerts: dict[str, Alert] = field(default_factory=dict)

    def groups(self) -> dict[GroupKey, list[Alert]]:
        found: dict[GroupKey, list[Alert]] = {}
        for alert in self.alerts.values():
            found.setdefault((alert.rule, alert.severity, alert.owner), []).append(alert)
        return found

    def per_rule(self) -> dict[str, int]:
        return dict(sorted(Counter(alert.rule for alert in self.alerts.values()).items()))


def merged(inputs: Iterable[RawInput]) -> Iterator[RawInput]:
    """Every input once, in record-time order across partitions and topics, each
    partition in its own offset order (as a consumer reads them, near enough)."""
    by_partition: dict[tuple[str, int], list[RawInput]] = {}
    for raw in inputs:
        by_partition.setdefault((raw.topic, raw.partition), []).append(raw)
    # equal record times go in topic and partition order: two replays agree
    lists = [sorted(by_partition[where], key=lambda raw: raw.offset)
             for where in sorted(by_partition)]
    return heapq.merge(*lists, key=lambda raw: raw.timestamp)


class Replay:
    """One rules file's replay: a worker's state writer on dict tables."""

    def __init__(self, settings: Settings, config: RulesConfig, name: str) -> None:
        self.settings = settings
        self.config = config
        self.report = Report(name)
        self.clock = ReplayClock()
        self.kinds = settings.input_kinds()
        self._outputs: list[Any] = []
        self.partitions: set[int] = set()
        # the worker's core, on dict tables, with the record time reached for a clock
        core = build_core(settings, config,
                          CoreTables(_Table(), _Table(), _Table(), _Table()),
                          CorePorts(WorkerMetrics(CollectorRegistry()), lambda: self.partitions,
                                    None, self._collect, now=self.clock.at,
                                    clock=lambda: self.clock.now))
        rules = self.rules = core.rules
        self.index, self.bands, self.shares = core.index, core.bands, core.shares
        self.writer = core.writer
        customer_alerts = core.customer_alerts
        self.revaluator = Revaluator(self.bands, self.index, lambda: self.partitions,
                                     self.writer, customer_alerts)
        self.issue_windows: dict[bytes, IssueWindow] = {}
        self.retention = max(settings.allowed_lateness_seconds,
                             config.max_event_age_hours * 3_600)
        self.signal_offset = 0
        self.tallies: SegmentTallies | None = None
        if self.shares is not None:  # one partition of the shares: every segment's
            self.tallies = SegmentTallies(None, self.shares.spec, config, rules.conventions,
                                          _NoChangelog(), lambda: {0})  # type: ignore[arg-type]
            self.tallies.loaded = {0}
        self.next_evaluation: float | None = None

    async def _collect(self, outputs: list[Any]) -> None:
        self._outputs += outputs

    async def run(self, inputs: Iterable[RawInput],
                  advance: Callable[[int], None] = lambda n: None) -> Report:
        """Replay ``inputs`` (in the order given: see ``merged``); ``advance`` is told
        how many inputs each step took (for a progress bar)."""
        batch: list[Accepted] = []
        for raw in inputs:
            kind = self.kinds.get(raw.topic)
            if kind is None:
                continue
            due = self._evaluations_due(raw.timestamp)
            if due and batch:  # the worker's timer runs between batches
                await self._fold(batch)
                advance(len(batch))
                batch = []
            for at in due:
                self.clock.now = max(self.clock.now, at)
                self.evaluate_segments(at)
            self.clock.now = max(self.clock.now, raw.timestamp)
            self.report.inputs += 1
            self.report.first_record = self.report.first_record or _iso(raw.timestamp)
            self.report.last_record = _iso(raw.timestamp)
            event = parse_input(kind, raw.key, raw.value, self.settings.max_event_bytes,
                                Clocks(raw.timestamp, raw.timestamp,
                                       self.settings.max_clock_skew_seconds))
            if isinstance(event, Rejection):  # a worker dead-letters it
                self.report.rejected += 1
                advance(1)
                continue
            self.partitions.add(raw.partition)
            batch.append(Accepted(kind, event, _Source(raw)))
            if len(batch) >= self.settings.batch_size:
                await self._fold(batch)
                advance(len(batch))
                batch = []
        if batch:
            await self._fold(batch)
            advance(len(batch))
        if self.tallies is not None and self.report.inputs:
            # the worker's next evaluation after the last input sees every answer
            self.evaluate_segments(self.clock.now)
        return self.report

    def _evaluations_due(self, timestamp: float) -> list[float]:
        """The segment evaluations due before an input of ``timestamp``: every
        evaluate_every_seconds from the first input, as the worker's timer."""
        if self.tallies is None:
            return []
        every = self.config.segment_drop.evaluate_every_seconds
        if self.next_evaluation is None:
            self.next_evaluation = timestamp + every
        due = []
        while timestamp >= self.next_evaluation:
            due.append(self.next_evaluation)
            self.next_evaluation += every
        return due

    async def _fold(self, batch: list[Accepted]) -> None:
        failures = await self.writer.handle(batch)
        self.report.rejected += len(failures)  # a worker dead-letters these too
        await self.writer.finish()
        await self.revaluator.run()
        await self.writer.finish()
        self._group_rules()

    def _group_rules(self) -> None:
        outputs, self._outputs = self._outputs, []
        for output in outputs:
            if isinstance(output, AlertOut) and output.status == "new":
                self._raised(output.alert)
            elif isinstance(output, SignalOut):
                self._signal(output)
            elif isinstance(output, ShareOut) and self.tallies is not None:
                self.tallies.fold(0, output.encode())

    def _signal(self, output: SignalOut) -> None:
        signal = output.signal
        rule = self.config.recurring_issue
        start = issue_window_start(signal, rule)
        if issue_window_expired(start, rule, self.clock.now, self.retention):
            return
        key = issue_window_key(signal.group, start)
        self.signal_offset += 1
        window, alert = fold_signal(self.issue_windows.get(key, IssueWindow()), signal,
                                    self.signal_offset, self.config, self.clock.at())
        self.issue_windows[key] = window
        if alert is not None:
            self._raised(alert)

    def evaluate_segments(self, at: float) -> None:
        assert self.tallies is not None
        alerts, _ = self.tallies.evaluate(from_epoch(at))
        for alert in alerts:
            self._raised(alert)

    def _raised(self, alert: Alert) -> None:
        self.report.alerts.setdefault(alert.alert_id, alert)


#: "30d", "12h", "90m", "45s": a regular expression is all it takes (no library parses
#: this short form without also taking forms the option does not document)
_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dhms])\s*$")
_UNIT = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}


def parse_since(raw: str, now: datetime) -> datetime:
    """``--since``: a span back from ``now`` (30d, 12h, 90m) or an ISO time with offset."""
    found = _SPAN.match(raw)
    if found:
        return now - timedelta(seconds=float(found.group(1)) * _UNIT[found.group(2)])
    try:
        at = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise ValueError(f"--since: a span like 30d, 12h or 90m, or an ISO time with "
                         f"offset, not {raw!r}") from exc
    if at.tzinfo is None:
        raise ValueError("--since: an ISO time needs a UTC offset, e.g. "
                         "2026-11-01T00:00:00+00:00")
    return at


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


async def read_history(settings: Settings, since: float | None) -> list[RawInput]:
    """The inputs to replay: interactions and answers stored at or after ``since``
    (epoch seconds; None: all), and every profile (a customer's value may be older)."""
    found = []
    for topic in settings.input_topics:
        start = None if topic == settings.topic_customers else since
        for record in await read_topic(settings, topic, timeout_seconds=600, since=start):
            found.append(RawInput(record.topic, record.partition, record.offset,
                                  record.timestamp, record.key, record.value))
    return found


def report_json(report: Report) -> dict[str, Any]:
    return {"rules": report.rules, "inputs": report.inputs, "rejected": report.rejected,
            "first_record": report.first_record, "last_record": report.last_record,
            "alerts": len(report.alerts), "per_rule": report.per_rule(),
            "groups": [group_json(key, alerts) for key, alerts in
                       sorted(report.groups().items())]}


def group_json(key: GroupKey, alerts: list[Alert]) -> dict[str, Any]:
    rule, severity, owner = key
    alerts = sorted(alerts, key=lambda alert: (alert.event_time, alert.alert_id))
    return {"rule": rule, "severity": severity, "owner": owner, "alerts": len(alerts),
            "examples": [{"alert_id": a.alert_id, "customer_id": a.customer_id,
                          "segment": a.segment, "event_time": a.event_time.isoformat(),
                          "summary": a.summary} for a in alerts[:EXAMPLES_KEPT]]}


def comparison(current: Report, proposed: Report) -> list[dict[str, Any]]:
    """Per rule, severity and owner: the alerts each rules file would have raised."""
    now, then = current.groups(), proposed.groups()
    rows = []
    for key in sorted(set(now) | set(then)):
        before, after = len(now.get(key, [])), len(then.get(key, []))
        verdict = "same" if before == after else "more" if after > before else "fewer"
        rows.append({"rule": key[0], "severity": key[1], "owner": key[2],
                     "current": before, "proposed": after, "change": verdict})
    return rows


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)
