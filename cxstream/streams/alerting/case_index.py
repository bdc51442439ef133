"""The unresolved alert cases of the partitions a worker owns, kept as they change, and
when each is next due: so the alert list, the inbox and the deadline check cost what they
return or what is due, never a read of every alert ever raised.

Resolved cases are not indexed (they are most of the table after months); they leave the
table after CXSTREAM_ALERT_CASE_RETENTION_DAYS, swept a slice at a time
(``ResolvedSweep``). Pure: no Faust, no Kafka.
"""

from __future__ import annotations

import heapq
import itertools
import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sortedcontainers import SortedList

from cxstream.alerts.lifecycle import SEVERITY_RANK
from cxstream.schemas.outputs import AlertCase

#: the age bands of cxstream_alerts_open, by their upper bound in seconds (the last: none)
AGE_LIMITS = ((3_600.0, "lt_1h"), (4 * 3_600.0, "1h_4h"), (24 * 3_600.0, "4h_24h"))


def next_due(case: AlertCase) -> float | None:
    """When time alone next changes ``case`` (epoch seconds): its deadline, or the end of
    its snooze; None: nothing is due (resolved)."""
    if case.status == "snoozed" and case.snoozed_until is not None:
        return case.snoozed_until.timestamp()
    deadline = case.deadline()
    return None if deadline is None else deadline.timestamp()


@dataclass(frozen=True, slots=True)
class CaseSummary:
    """What the alert list, the inbox and the metrics show of an unresolved case: a few
    hundred bytes where the case (its alert's context, its history) takes ten thousand
    or more. The index keeps these; the whole case is read from the store when asked for."""

    alert_id: str
    rule: str
    severity: str
    status: str
    owner: str
    team: str
    customer_id: str | None
    segment: str | None
    summary: str
    occurrences: int
    customer_value: Any
    high_value: Any
    created_at: datetime
    deadline: datetime | None
    escalations: int
    resolution: str | None
    updated_at: datetime

    @staticmethod
    def of(case: AlertCase) -> CaseSummary:
        alert = case.alert
        return CaseSummary(
            case.alert_id, alert.rule, case.severity, case.status, case.owner, case.team,
            alert.customer_id, alert.segment, alert.summary, alert.occurrences,
            alert.context.get("customer_value"), alert.context.get("high_value"),
            alert.created_at, case.deadline(), case.escalations, case.resolution,
            case.updated_at)


def list_order(deadline: float | None, severity: str, customer_value: Any,
               alert_id: str) -> tuple[Any, ...]:
    """Where a case comes in the alert list: by severity (critical first), then deadline
    (soonest first, to the second; none last), then customer value (highest first): a
    critical alert is never below a warning due at the same time. Absolute times, so
    the order of two cases never changes while they do not."""
    return (-SEVERITY_RANK.get(severity, 0), deadline is None,
            0 if deadline is None else math.floor(deadline), -(customer_value or 0),
            alert_id)


def summary_list_order(summary: CaseSummary) -> tuple[Any, ...]:
    deadline = summary.deadline
    return list_order(None if deadline is None else deadline.timestamp(), summary.severity,
                      summary.customer_value, summary.alert_id)


#: what the alert list filters on, as an index bucket holds it:
#: (team, owner, status, severity, rule)
Bucket = tuple[str, str, str, str, str]


def bucket_of(summary: CaseSummary) -> Bucket:
    return (summary.team, summary.owner, summary.status, summary.severity, summary.rule)


#: a word of the alert list's text search: letters, digits and . @ - _
WORD = re.compile(r"[\w.@-]+")
#: words indexed per case, and characters per word (the index's bound per case)
MAX_WORDS, MAX_WORD_CHARS = 32, 64


def words_of(text: str, most: int = MAX_WORDS) -> set[str]:
    """The search words of ``text``: lower case, the first ``most``, clipped."""
    return {word[:MAX_WORD_CHARS] for word in WORD.findall(text.lower())[:most]}


def summary_words(summary: CaseSummary) -> set[str]:
    """What the text search finds a case by: its summary, customer, segment, rule, owner
    and team."""
    return words_of(" ".join(str(part) for part in (
        summary.summary, summary.customer_id or "", summary.segment or "", summary.rule,
        summary.owner, summary.team)))


class CaseIndex:
    """Unresolved cases by id (their summaries), a heap of when each is next due, and
    their creation times and deadlines in order: a metrics scrape counts them by age band
    and overdue with a few bisections, whatever the number of cases.

    The alert list reads them through ``select``: cases are grouped in buckets of what a
    list filters on (team, owner, status, severity, rule), each kept in the list's order,
    and a customer's cases by customer, so a page costs the buckets looked at plus the
    rows returned, never a visit of every unresolved case."""

    def __init__(self) -> None:
        self.open: dict[str, CaseSummary] = {}
        self._buckets: dict[Bucket, SortedList] = {}
        self._by_customer: dict[str, set[str]] = {}
        #: search word -> the ids of the cases whose summary_words hold it
        self._by_word: dict[str, set[str]] = {}
        self._heap: list[tuple[float, str]] = []
        self._due_at: dict[str, float] = {}  # the heap entry that counts, per id
        #: (severity, status) -> creation times; severity -> deadlines (epoch seconds)
        self._created: dict[tuple[str, str], SortedList] = {}
        self._deadlines: dict[str, SortedList] = {}

    def update(self, case: AlertCase) -> None:
        alert_id = case.alert_id
        if not case.is_open:
            self.remove(alert_id)
            return
        old = self.open.get(alert_id)
        if old is not None:
            self._uncount(old)
        summary = self.open[alert_id] = CaseSummary.of(case)
        self._count(summary)
        due = next_due(case)
        if due is None:
            self._due_at.pop(alert_id, None)
        elif self._due_at.get(alert_id) != due:
            self._due_at[alert_id] = due
            heapq.heappush(self._heap, (due, alert_id))

    def remove(self, alert_id: str) -> None:
        old = self.open.pop(alert_id, None)
        if old is not None:
            self._uncount(old)
        self._due_at.pop(alert_id, None)

    def _count(self, summary: CaseSummary) -> None:
        key = (summary.severity, summary.status)
        self._created.setdefault(key, SortedList()).add(summary.created_at.timestamp())
        if summary.deadline is not None:
            self._deadlines.setdefault(summary.severity, SortedList()).add(
                summary.deadline.timestamp())
        self._buckets.setdefault(bucket_of(summary), SortedList()).add(
            summary_list_order(summary))
        if summary.customer_id is not None:
            self._by_customer.setdefault(summary.customer_id, set()).add(summary.alert_id)
        for word in summary_words(summary):
            self._by_word.setdefault(word, set()).add(summary.alert_id)

    def _uncount(self, summary: CaseSummary) -> None:
        self._created[(summary.severity, summary.status)].remove(
            summary.created_at.timestamp())
        if summary.deadline is not None:
            self._deadlines[summary.severity].remove(summary.deadline.timestamp())
        bucket = bucket_of(summary)
        ordered = self._buckets[bucket]
        ordered.remove(summary_list_order(summary))
        if not ordered:  # owners and teams come and go: no empty bucket stays
            del self._buckets[bucket]
        if summary.customer_id is not None:
            ids = self._by_customer[summary.customer_id]
            ids.discard(summary.alert_id)
            if not ids:
                del self._by_customer[summary.customer_id]
        for word in summary_words(summary):
            holders = self._by_word[word]
            holders.discard(summary.alert_id)
            if not holders:
                del self._by_word[word]

    def search(self, text: str) -> set[str]:
        """The ids of the unresolved cases holding every word of ``text`` (at most 8
        words): the smallest word's cases, checked against the others. Cost: the cases
        of that word, never every case."""
        words = sorted(words_of(text, 8), key=lambda word: len(self._by_word.get(word, ())))
        if not words:
            return set()
        found = set(self._by_word.get(words[0], ()))
        for word in words[1:]:
            found &= self._by_word.get(word, set())
        return found

    def select(self, wanted: Callable[[Bucket], bool], first: int | None = None,
               customer_id: str | None = None) -> tuple[int, list[CaseSummary]]:
        """(how many unresolved cases match, the first ``first`` of them in the list's
        order; all of them when None). ``wanted``: whether a bucket's cases match;
        ``customer_id``: only that customer's cases. Cost: the buckets, plus the rows
        returned (or the customer's cases)."""
        if customer_id is not None:
            found = [self.open[alert_id] for alert_id in self._by_customer.get(customer_id, ())]
            kept = sorted((summary for summary in found if wanted(bucket_of(summary))),
                          key=summary_list_order)
            return len(kept), kept if first is None else kept[:first]
        chosen = [ordered for bucket, ordered in self._buckets.items() if wanted(bucket)]
        matched = sum(len(ordered) for ordered in chosen)
        merged = heapq.merge(*chosen)
        keys = merged if first is None else itertools.islice(merged, first)
        return matched, [self.open[key[-1]] for key in keys]

    def counts(self, now: datetime) -> tuple[dict[tuple[str, str, str], int], dict[str, int]]:
        """Unresolved cases by (severity, status, age band) and, per severity, those whose
        deadline is at or before ``now``; O(log n) per count."""
        at = now.timestamp()
        by_band: dict[tuple[str, str, str], int] = {}
        for (severity, status), created in self._created.items():
            younger = 0  # created after the band's lower edge
            for limit, band in AGE_LIMITS:
                within = len(created) - created.bisect_right(at - limit)
                by_band[(severity, status, band)] = within - younger
                younger = within
            by_band[(severity, status, "gt_24h")] = len(created) - younger
        overdue = {severity: deadlines.bisect_right(at)
                   for severity, deadlines in self._deadlines.items()}
        return by_band, overdue

    def due(self, now: float) -> list[str]:
        """The ids due at ``now``, each once; they are due again only once ``update``
        gives them a new time (a case escalated as far as it goes stays out)."""
        found = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            at, alert_id = heapq.heappop(heap)
            if self._due_at.get(alert_id) == at:
                del self._due_at[alert_id]
                found.append(alert_id)
        if len(heap) > 4 * len(self._due_at) + 64:  # stale entries: rebuild, bounded
            self._heap = [(at, alert_id) for alert_id, at in self._due_at.items()]
            heapq.heapify(self._heap)
        return found

    def __len__(self) -> int:
        return len(self.open)


#: how often a slice of ``IndexBuild.step`` looks at the clock, in stored cases: an open
#: case costs about 70 µs to build and index, a resolved one about 16 µs to skip
CLOCK_EVERY = 64


class IndexNotReady(RuntimeError):
    """The unresolved cases are still being read after a recovery or a rebalance: the
    alert list answers 503, the deadline check waits, the open-alert gauges are left out."""


class IndexBuild:
    """An index read from the stored cases a slice at a time (``step``), so that reading
    a million cases after a recovery (16 s on this machine: bench/alert_cases.py) never
    blocks the event loop for more than a slice. Changes made meanwhile go to the index
    at once (``changed``), and the stored value of a case changed meanwhile is skipped
    when the walk reaches it: it is older than what the index holds."""

    def __init__(self, owned: frozenset[int], stored: Iterator[tuple[int, bytes, bytes]]
                 ) -> None:
        self.owned = owned
        self.index = CaseIndex()
        self.read = 0  # stored cases looked at so far
        self.done = False
        self.task: Any = None  # the task walking the rest, once one is started
        self._stored = stored
        self._touched: set[str] = set()

    def changed(self, case: AlertCase) -> None:
        self.index.update(case)
        self._touched.add(case.alert_id)

    def step(self, seconds: float | None) -> bool:
        """Read stored cases for about ``seconds`` (None: all of them); True once every
        one is read. The clock is looked at every CLOCK_EVERY cases."""
        began = time.perf_counter()
        for _, key, raw in self._stored:
            self.read += 1
            if is_open_value(raw) and key.decode() not in self._touched:
                self.index.update(AlertCase.model_validate_json(raw))
            if (seconds is not None and self.read % CLOCK_EVERY == 0
                    and time.perf_counter() - began >= seconds):
                return False
        self.done = True
        return True


def is_open_value(raw: bytes) -> bool:
    """Whether a stored case is unresolved, read without building the model (a worker
    reads every case of its partitions once after a recovery)."""
    status: Any = orjson.loads(raw).get("status")
    return status != "resolved"


def resolved_before(raw: bytes, limit: float) -> bool:
    """Whether a stored case was resolved before ``limit`` (epoch seconds)."""
    body = orjson.loads(raw)
    if body.get("status") != "resolved":
        return False
    at = body.get("resolved_at") or body.get("updated_at")
    return at is not None and _epoch(str(at)) < limit


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


class ResolvedSweep:
    """Walks the stored cases a slice at a time, from where it stopped, and yields the
    keys of cases resolved before the retention limit; a full walk starts again once
    done. The walk is restarted when the partitions it walks change."""

    def __init__(self) -> None:
        self._walk: Iterator[tuple[int, bytes, bytes]] | None = None
        self._for: frozenset[int] = frozenset()

    def take(self, items: Any, owned: frozenset[int], limit: float, slice_size: int
             ) -> list[tuple[int, bytes]]:
        """Up to ``slice_size`` stored cases looked at; (partition, key) of those to delete.
        ``items``: a function of the owned partitions giving (partition, key, value)."""
        if self._walk is None or owned != self._for:
            self._walk, self._for = iter(items(owned)), owned
        expired = []
        for _ in range(slice_size):
            try:
                partition, key, raw = next(self._walk)
            except StopIteration:
                self._walk = None
                break
            if resolved_before(raw, limit):
                expired.append((partition, key))
        return expired
