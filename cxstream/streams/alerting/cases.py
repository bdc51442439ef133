"""The alert cases: a table kept from the alert events, whose changelog is the lifecycle
topic, plus the deadline checks and the commands of the API.

Shape: alert messages and resolutions, keyed by alert id (``<app_id>-alert-events``) ->
agent ``track_alert_cases`` -> table ``alert_cases`` (alert id -> case JSON), changelog
= ``cx.alert-lifecycle`` (compacted: the latest record of an alert is its whole case)
-> follow-ups (escalated, resolved) on ``cx.alerts`` for the sinks.

Order of writes, as for customer state: follow-ups first, then the case. A worker killed
between the two applies the same events again (same alert ids: the sinks post a
follow-up once); a case in the changelog always has its follow-ups published.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pydantic_core
from aiokafka.partitioner import DefaultPartitioner
from pydantic import BaseModel, ConfigDict, ValidationError

from cxstream.alerts import lifecycle as lc
from cxstream.alerts.config import RulesConfig
from cxstream.schemas.outputs import Alert
from cxstream.streams.alerting.case_index import (
    CaseIndex,
    CaseSummary,
    IndexBuild,
    IndexNotReady,
    ResolvedSweep,
    list_order,
)
from cxstream.streams.kafka.changelog import BulkChangelog
from cxstream.streams.kafka.faust_compat.access import stored_items, table_store
from cxstream.streams.metrics import WorkerMetrics
from cxstream.streams.users import Principal

log = logging.getLogger(__name__)

#: how long a slice of reading the open cases again after a recovery may hold the event
#: loop (a million stored cases take about 16 s in all: bench/alert_cases.py)
INDEX_SLICE_SECONDS = 0.02


class AlertEvent(BaseModel):
    """A record of the alert events topic: an alert message, or a resolution."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    alert: Alert | None = None
    resolve: str | None = None  # alert id whose cause is gone
    reason: str | None = None
    at: datetime | None = None


class CaseNotFound(LookupError):
    """No alert with this id (HTTP 404)."""


def subject_key(alert: Alert) -> bytes:
    """The key of an alert's messages on cx.alerts: its customer, segment or group."""
    return str(alert.customer_id or alert.segment or alert.reason.get("key")
               or alert.rule).encode()


Publish = Callable[[Alert], Awaitable[Any]]


class AlertCases:
    """The cases of the partitions this worker owns, and every change made to them."""

    def __init__(self, table: Any, config: RulesConfig, metrics: WorkerMetrics,
                 partitions: int, changelog: BulkChangelog, owned: Callable[[], set[int]],
                 publish_follow_up: Publish,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.table = table
        self.config = config
        self.metrics = metrics
        self.partitions = list(range(partitions))
        self.changelog = changelog
        self.owned = owned
        self.publish_follow_up = publish_follow_up
        self.now = now
        self.lock = asyncio.Lock()  # events, deadline checks and commands, one at a time
        self.partitioner = DefaultPartitioner()  # the producer's: where an alert id went
        self.listeners: list[Callable[[lc.AlertCase], None]] = []
        #: the unresolved cases of the owned partitions and when each is next due, kept
        #: as they change (None: to be read from the table, after a recovery), and the
        #: partitions it was read for
        self._index: CaseIndex | None = None
        self._index_for: frozenset[int] = frozenset()
        self._building: IndexBuild | None = None  # the index being read, a slice at a time
        self.sweep = ResolvedSweep()

    def partition_of(self, alert_id: str) -> int:
        return int(self.partitioner(alert_id.encode(), self.partitions, self.partitions))

    def get(self, alert_id: str) -> lc.AlertCase | None:
        raw = table_store(self.table).get(alert_id.encode())
        return None if raw is None else lc.AlertCase.model_validate_json(raw)

    def stored(self, owned: frozenset[int]) -> Iterator[tuple[int, bytes, bytes]]:
        """(partition, key, value) of every stored case of ``owned`` partitions."""
        for partition, key, raw in stored_items(self.table, set(owned)):
            if partition < 0:  # a memory store: one map for every partition
                partition = self.partition_of(key.decode())
                if partition not in owned:
                    continue
            yield partition, key, raw

    def index(self) -> CaseIndex:
        """The unresolved cases of the owned partitions, kept as they change. After a
        recovery or a rebalance they are read again from the table, every stored case once
        (resolved ones without building them). In a running event loop that read goes a
        slice at a time (INDEX_SLICE_SECONDS) in a task of its own, and until it ends this
        raises IndexNotReady; without a loop (a script, a test) it is read at once."""
        owned = frozenset(self.owned())
        if self._index is not None and owned == self._index_for:
            return self._index
        build = self._building
        if build is None or build.owned != owned:
            build = self._building = IndexBuild(owned, self.stored(owned))
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if not build.step(None if loop is None else INDEX_SLICE_SECONDS):
            assert loop is not None
            if build.task is None:
                build.task = loop.create_task(self._read_rest(build))
            raise IndexNotReady(
                f"the open alerts are being read again after a recovery or a rebalance "
                f"({build.read:,} stored cases read so far); retry shortly")
        self._installed(build)
        return build.index

    def _installed(self, build: IndexBuild) -> None:
        if self._building is build:
            self._index, self._index_for, self._building = build.index, build.owned, None
            if build.read:
                log.info("alert cases of partitions %s: %d unresolved of %d stored, indexed",
                         sorted(build.owned), len(build.index), build.read)

    async def _read_rest(self, build: IndexBuild) -> None:
        try:
            while not build.step(INDEX_SLICE_SECONDS):
                await asyncio.sleep(0)  # the loop serves everything else between slices
                if self._building is not build or frozenset(self.owned()) != build.owned:
                    return  # recovered or rebalanced meanwhile: the next ask reads again
        except Exception:  # a database closed under the walk (a rebalance): read again
            log.warning("reading the alert cases was interrupted; reading them again",
                        exc_info=True)
            if self._building is build:
                self._building = None
            return
        if frozenset(self.owned()) == build.owned:
            self._installed(build)

    def unresolved(self) -> list[CaseSummary]:
        """The summaries of the unresolved cases of the partitions this worker owns."""
        return list(self.index().open.values())

    def local(self) -> list[lc.AlertCase]:
        """Every case of the partitions this worker owns, resolved ones too: a read of the
        whole table (only for a list that asks for resolved cases)."""
        return [lc.AlertCase.model_validate_json(raw)
                for _, _, raw in self.stored(frozenset(self.owned()))]

    def open_counts(self, now: datetime) -> tuple[dict[tuple[str, str, str], int],
                                                  dict[str, int]]:
        """The unresolved cases of the partitions this worker owns by severity, status and
        age band, and the overdue ones by severity (the metrics ask on every scrape):
        counted by the index, no case visited."""
        return self.index().counts(now)

    def table_recovered(self) -> None:
        """The table was restored from its changelog: read the open cases again."""
        self._index = self._building = None

    # -- changes ---------------------------------------------------------------------

    def _record(self, before: lc.AlertCase | None, case: lc.AlertCase,
                follow_ups: list[lc.AlertCase]) -> None:
        self.changelog.set(self.table, self.partition_of(case.alert_id),
                           case.alert_id.encode(), case.model_dump_json().encode())
        if self._index is not None:
            self._index.update(case)
        if self._building is not None:
            self._building.changed(case)
        change = case.last_change
        self.metrics.alert_changes.labels(change.action).inc()
        created = case.alert.created_at
        rule, severity = case.alert.rule, case.severity
        if change.action == "acknowledged":
            self.metrics.alert_time_to_acknowledge.labels(rule, severity).observe(
                max((change.at - created).total_seconds(), 0.0))
        elif change.action in {"resolved", "auto_resolved"}:
            how = "auto" if change.action == "auto_resolved" else "person"
            self.metrics.alert_time_to_resolve.labels(rule, severity, how).observe(
                max((change.at - created).total_seconds(), 0.0))
            follow_ups.append(case)
        elif change.action == "escalated":
            self.metrics.alert_sla_breaches.labels(rule, lc.missed_deadline(change)).inc()
            follow_ups.append(case)
        for listener in self.listeners:
            listener(case)

    async def _finish(self, follow_ups: list[lc.AlertCase]) -> None:
        acks = [await self.publish_follow_up(lc.as_notice(case)) for case in follow_ups]
        for ack in acks:
            await ack
        await self.changelog.flush()

    async def take_events(self, values: list[bytes]) -> int:
        """Fold a batch of alert events into their cases; returns the changes made."""
        async with self.lock:
            follow_ups: list[lc.AlertCase] = []
            changed = 0
            pending: dict[str, lc.AlertCase | None] = {}
            for value in values:
                try:
                    event = AlertEvent.model_validate_json(value)
                except ValidationError:
                    log.exception("unreadable alert event")
                    continue
                alert_id = event.alert.alert_id if event.alert else event.resolve
                if alert_id is None:
                    continue
                case = pending[alert_id] if alert_id in pending else self.get(alert_id)
                now = self.now()
                if event.alert is not None:
                    new = lc.take_alert(case, event.alert, event.alert.team or
                                        event.alert.owner, now, self.config)
                elif case is not None:
                    new = lc.auto_resolve(case, event.reason or "the cause is gone", now)
                else:
                    new = None  # resolved before its case exists: nothing to resolve
                if new is not None:
                    self._record(case, new, follow_ups)
                    pending[alert_id] = new
                    changed += 1
            await self._finish(follow_ups)
            return changed

    async def check_deadlines(self) -> int:
        """Escalate what missed its deadline and wake what was snoozed until now: only
        the cases due (the index's heap), not every case."""
        async with self.lock:
            now = self.now()
            follow_ups: list[lc.AlertCase] = []
            changed = 0
            try:
                index = self.index()
            except IndexNotReady:  # due cases are escalated once the read ends
                return 0
            for alert_id in index.due(now.timestamp()):
                case = self.get(alert_id)
                new = None if case is None else lc.tick(case, now, self.config)
                if case is not None and new is not None:
                    self._record(case, new, follow_ups)
                    changed += 1
            await self._finish(follow_ups)
            return changed

    async def forget_resolved(self, retention_days: float, slice_size: int = 2_000) -> int:
        """Delete the cases resolved more than ``retention_days`` ago, looking at up to
        ``slice_size`` stored cases per call (a tombstone on the lifecycle topic each);
        returns how many were deleted."""
        async with self.lock:
            limit = self.now().timestamp() - retention_days * 86_400
            try:
                expired = self.sweep.take(self.stored, frozenset(self.owned()), limit,
                                          slice_size)
            except Exception:  # a partition's database closed under the walk: start over
                self.sweep = ResolvedSweep()
                raise
            for partition, key in expired:
                self.changelog.delete(self.table, partition, key)
            if expired:
                await self.changelog.flush()
                self.metrics.alert_changes.labels("forgotten").inc(len(expired))
            return len(expired)

    async def redact_customer(self, customer_id: str, actor: str,
                              slice_size: int = 2_000) -> int:
        """Redact the customer's identity and free text from every case of the partitions
        this worker owns (right to erasure; a redacted record on the lifecycle topic
        each); returns how many. Reads every stored case, a slice at a time, letting
        other work run in between: an erasure is rare, and no index by customer is kept."""
        # the id as the stored cases write it (pydantic's JSON), found without parsing
        needle = b'"customer_id":' + pydantic_core.to_json(customer_id)
        found: list[bytes] = []
        walk = self.stored(frozenset(self.owned()))
        while chunk := list(itertools.islice(walk, slice_size)):
            found += [key for _, key, raw in chunk if needle in raw]
            await asyncio.sleep(0)
        async with self.lock:
            redacted = 0
            for key in found:
                case = self.get(key.decode())
                if case is None or case.alert.customer_id != customer_id:
                    continue
                self._record(case, lc.redact(case, actor, self.now()), [])
                redacted += 1
            await self._finish([])
            return redacted

    async def command(self, alert_id: str, verb: str, actor: Principal,
                      body: dict[str, Any]) -> lc.AlertCase:
        """An action of a person on an alert (raises CaseNotFound, TransitionRefused,
        InvalidCommand)."""
        async with self.lock:
            case = self.get(alert_id)
            if case is None or not actor.can_see(case.owner, case.team):
                raise CaseNotFound(f"no alert {alert_id!r}")
            now = self.now()
            who = actor.name
            if verb == "ack":
                new = lc.acknowledge(case, who, now, self.config)
            elif verb == "assign":
                new = lc.assign(case, who, str(body.get("to") or ""), now)
            elif verb == "note":
                new = lc.note(case, who, str(body.get("text") or ""), now)
            elif verb == "snooze":
                new = lc.snooze(case, who, parse_time(body.get("until")), now, self.config)
            elif verb == "resolve":
                text = body.get("note")
                new = lc.resolve(case, who, str(body.get("category") or ""),
                                 None if text is None else str(text), now, self.config)
            else:
                raise lc.InvalidCommand(f"unknown action {verb!r}")
            follow_ups: list[lc.AlertCase] = []
            self._record(case, new, follow_ups)
            await self._finish(follow_ups)
            return new


def parse_time(raw: Any) -> datetime:
    if not isinstance(raw, str):
        raise lc.InvalidCommand("until: an ISO 8601 time with a UTC offset")
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise lc.InvalidCommand(f"until: not an ISO 8601 time: {raw[:64]!r}") from exc
    if moment.tzinfo is None:
        raise lc.InvalidCommand("until: needs a UTC offset, e.g. 2026-11-23T10:00:00+00:00")
    try:
        return moment.astimezone(UTC)
    except OverflowError as exc:  # e.g. 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        raise lc.InvalidCommand(f"until: out of range in UTC: {raw[:64]!r}") from exc


def case_row(case: lc.AlertCase | CaseSummary, now: datetime) -> dict[str, Any]:
    """One line of the alert list: what the inbox shows and the API sorts on."""
    row = case if isinstance(case, CaseSummary) else CaseSummary.of(case)
    deadline = row.deadline
    return {
        "alert_id": row.alert_id, "rule": row.rule, "severity": row.severity,
        "status": row.status, "owner": row.owner, "team": row.team,
        "customer_id": row.customer_id, "segment": row.segment,
        "summary": row.summary, "occurrences": row.occurrences,
        "customer_value": row.customer_value, "high_value": row.high_value,
        "created_at": row.created_at.isoformat(),
        "due": deadline.isoformat() if deadline else None,
        "due_in_seconds": None if deadline is None else round(
            (deadline - now).total_seconds()),
        "escalations": row.escalations, "resolution": row.resolution,
        "updated_at": row.updated_at.isoformat(),
    }


def sort_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """By severity (critical first), then deadline (soonest first, none last), then
    customer value: the order of ``list_order``, which the index keeps."""
    def order(row: dict[str, Any]) -> tuple[Any, ...]:
        due = row["due"]
        return list_order(None if due is None else datetime.fromisoformat(due).timestamp(),
                          row["severity"], row["customer_value"], row["alert_id"])

    return sorted(rows, key=order)
