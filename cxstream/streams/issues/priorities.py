"""Priorities in the worker: the issue counts of alerts.priorities, kept per input
partition in the table ``issue_priorities``.

The fold tells the board of each applied event that gave negative signals, with the
customer's value and band at that event (``observe``, called by alerts.customer_core). Once the
fold of a partition's batch is done, the state writer asks for the batch's writes
(``finish``) and writes them before the customers: a count records the offsets that
moved it, so a signal read again after a crash that kept the count but not the customer
moves nothing twice.

Keys (per partition, in the partition's own table partition):
- ``c|<partition>|<window start>|<group>``: an IssueCount (alerts.priorities); they sort
  first, so a recovery reads them without the marks;
- ``m|<window start, 10 digits>|<customer id>``: the issues the customer counts in, in that
  window; windows sort in time order, so the expired ones are deleted from the front.
The counts of owned partitions are also held in memory, for the API.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from cxstream.alerts.customer_core import Fact
from cxstream.alerts.group_rules import Signal
from cxstream.alerts.priorities import (
    Marks,
    PrioritiesConfig,
    count_signal,
    counted_windows,
    empty_count,
    revalue,
    signal_window,
)
from cxstream.schemas.events import CustomerProfile, Feedback
from cxstream.scoring.fold import SourcedEvent
from cxstream.scoring.groups import OTHER_KEY
from cxstream.scoring.plain_customer import Customer
from cxstream.streams.kafka.faust_compat.access import stored_items, table_store
from cxstream.streams.metrics import WorkerMetrics

COUNT = b"c|"
COUNT_END = b"d"  # every count key sorts below it, every mark above
MARK = b"m|"
#: writes of one partition (key -> value, None: delete)
Writes = dict[bytes, bytes | None]


def count_key(partition: int, start: int, group: str) -> bytes:
    return COUNT + f"{partition}|{start}|{group}".encode()


def parse_count_key(key: bytes) -> tuple[int, int, str]:
    partition, start, group = key[len(COUNT):].decode().split("|", 2)
    return int(partition), int(start), group


def mark_key(start: int, customer_id: str) -> bytes:
    return MARK + b"%010d|" % start + customer_id.encode()


def decode_mark(raw: bytes) -> Marks:
    marks: Marks = orjson.loads(raw[raw.index(b"|") + 1:])
    return marks


def mark_partition(raw: bytes) -> int:
    return int(raw[:raw.index(b"|")])


@dataclass(frozen=True, slots=True)
class _Seen:
    customer_id: str
    source: str  # "f" (feedback topic), "i" (interactions topic) or "c" (a profile)
    offset: int
    at: float
    groups: tuple[str, ...]
    answered: bool
    value: float | None
    top: bool
    segment: str | None = None
    predicted: bool = False  # predicted at risk (PrioritiesConfig.predicted_min)


class PriorityBoard:
    """Counts the issues of the batches a worker folds."""

    def __init__(self, config: PrioritiesConfig, table: Any,
                 metrics: WorkerMetrics | None = None,
                 clock: Callable[[], float] = time.time, max_keys: int = 1_000,
                 top_of: Callable[[str, float], bool | None] | None = None) -> None:
        self.config = config
        #: distinct issues (groups) counted per partition and window at most; a signal of
        #: any other counts under "<kind>:(other)" (CXSTREAM_MAX_GROUP_KEYS)
        self.max_keys = max_keys
        self.table = table  # issue_priorities
        self.load: Callable[[bytes], bytes | None] = table_store(table).get
        self.metrics = metrics
        self.clock = clock
        self._seen: list[_Seen] = []
        self._results: Counter[str] = Counter()
        #: (segment, value) -> in the top value band, with the current bands (a new
        #: profile's band is looked up with it; None: the fold's own answer is kept)
        self.top_of = top_of
        #: partition -> (window start, group) -> count, for the partitions read in
        self.counts: dict[int, dict[tuple[int, str], dict[str, Any]]] = {}

    # -- the fold's side ---------------------------------------------------------------

    def begin(self) -> None:
        """A partition's fold starts (what an earlier, failed one saw is dropped)."""
        self._seen.clear()

    def observe(self, item: SourcedEvent, state: Customer | Fact, signals: list[Signal],
                top: bool | None) -> None:
        """An applied event's signals, with the customer's state after it and whether
        they are in the top value band (None: no band known); or a new profile (no
        signals), whose value the issues the customer counts in take."""
        event = item.event
        if isinstance(event, CustomerProfile):
            if state.profile is not None:
                self._seen.append(_Seen(event.customer_id, "c", item.offset, 0.0, (), False,
                                        state.profile[1], top is True, state.profile[0]))
            return
        if not signals:
            return
        answered = isinstance(event, Feedback)
        probability = state.predicted if isinstance(state, Fact) else (
            state.prediction[0] if state.prediction else None)
        self._seen.append(_Seen(
            event.customer_id, "f" if answered else "i", item.offset,
            signals[0].at.timestamp(), tuple(signal.group for signal in signals), answered,
            state.profile[1] if state.profile else None, top is True,
            predicted=probability is not None and probability >= self.config.predicted_min))

    def finish(self, partition: int) -> Writes:
        """The batch's writes, counts before marks."""
        seen, self._seen = self._seen, []
        if not seen:
            return {}
        current, previous = counted_windows(self.clock(), self.config)
        counts = self.counts.setdefault(partition, {})
        sizes: dict[int, int] = {}  # groups counted per window, found when first needed
        moved: dict[tuple[int, str], None] = {}
        marks: dict[bytes, Marks] = {}
        for entry in seen:
            if entry.source == "c":
                self._revalue(entry, counts, marks, moved, (current, previous))
            else:
                self._count_signals(entry, counts, sizes, marks, moved, current, previous)
        writes: Writes = {count_key(partition, start, group): orjson.dumps(counts[start, group])
                          for start, group in moved}
        for key, mark in marks.items():
            writes[key] = b"%d|" % partition + orjson.dumps(mark)
        self._count()
        return writes

    def _revalue(self, entry: _Seen, counts: dict[tuple[int, str], Any],
                 marks: dict[bytes, Marks], moved: dict[tuple[int, str], None],
                 starts: tuple[int, int]) -> None:
        """A profile's new value moved into the counts its customer is marked in."""
        top: bool | None = None
        for start in starts:
            key = mark_key(start, entry.customer_id)
            mark = marks.get(key)
            if mark is None:
                raw = self.load(key)
                if raw is None:
                    continue
                mark = marks[key] = decode_mark(raw)
            if top is None:
                top = bool(self.top_of(entry.segment or "", entry.value or 0.0)) \
                    if self.top_of is not None else entry.top
            for group in list(mark):
                count = counts.get((start, group))
                if count is not None and revalue(count, mark, group, entry.value or 0.0,
                                                 top, entry.offset):
                    moved[start, group] = None
                    self._results["revalued"] += 1

    def _count_signals(self, entry: _Seen, counts: dict[tuple[int, str], Any],
                       sizes: dict[int, int], marks: dict[bytes, Marks],
                       moved: dict[tuple[int, str], None], current: int,
                       previous: int) -> None:
        """An event's issue signals counted in their window, each customer once."""
        start = signal_window(entry.at, self.config)
        if start not in (current, previous):
            self._results["too_old" if start < previous else "ahead"] += len(entry.groups)
            return
        key = mark_key(start, entry.customer_id)
        mark = marks.get(key)
        if mark is None:
            raw = self.load(key)
            mark = marks[key] = {} if raw is None else decode_mark(raw)
        for named in entry.groups:
            group = self._capped(counts, sizes, start, named)
            count = counts.get((start, group))
            if count is None:
                count = counts[start, group] = empty_count()
                sizes[start] += 1
            if count_signal(count, mark, group, entry.answered, entry.value, entry.top,
                            entry.source, entry.offset, entry.predicted):
                moved[start, group] = None
                self._results["counted"] += 1
            else:
                self._results["again"] += 1

    def _capped(self, counts: dict[tuple[int, str], Any], sizes: dict[int, int], start: int,
                group: str) -> str:
        """``group``, or its kind's "(other)" once the window counts ``max_keys`` issues
        (random touchpoint strings must not grow the table and the API with traffic)."""
        if start not in sizes:
            sizes[start] = sum(1 for window, _ in counts if window == start)
        if (start, group) in counts or sizes[start] < self.max_keys:
            return group
        kind = group.split(":", 1)[0]
        if self.metrics is not None:
            self.metrics.group_keys_overflow.labels(f"priority_{kind}").inc()
        return f"{kind}:{OTHER_KEY}"

    # -- upkeep ------------------------------------------------------------------------

    def expired(self, partition: int) -> list[bytes]:
        """The keys of windows no longer counted in (older than the previous window):
        deleted by the caller through the changelog."""
        _, previous = counted_windows(self.clock(), self.config)
        counts = self.counts.get(partition, {})
        old = [(start, group) for start, group in counts if start < previous]
        keys = [count_key(partition, start, group) for start, group in old]
        for found in old:
            del counts[found]
        below = mark_key(previous, "")
        for _, key, raw in stored_items(self.table, {partition}, below=below):
            # a memory store gives every partition's items: the value says whose
            if key.startswith(MARK) and key < below and mark_partition(raw) == partition:
                keys.append(key)
        return keys

    def recovered(self, owned: set[int]) -> int:
        """Read the counts of the owned partitions again (after a recovery); returns how
        many."""
        found: dict[int, dict[tuple[int, str], dict[str, Any]]] = {p: {} for p in owned}
        for _, key, raw in stored_items(self.table, owned, below=COUNT_END):
            if key.startswith(COUNT):
                partition, start, group = parse_count_key(key)
                if partition in found:
                    found[partition][start, group] = orjson.loads(raw)
        self.counts = found
        return sum(len(counts) for counts in found.values())

    def forget(self, partition: int, customer_id: str) -> list[bytes]:
        """An erased customer: the keys to delete (their marks; the counts hold no ids)."""
        starts = {start for start, _ in self.counts.get(partition, {})}
        return [mark_key(start, customer_id) for start in sorted(starts)]

    def local(self, owned: set[int], starts: set[int]) -> dict[str, Any]:
        """The counts of ``starts`` in the owned partitions that were read in: a share
        for cluster.gather."""
        partitions = sorted(owned & set(self.counts))
        rows = [[start, group, {name: count[name] for name in count if name != "offsets"}]
                for partition in partitions
                for (start, group), count in self.counts[partition].items()
                if start in starts]
        return {"partitions": partitions, "rows": rows}

    def _count(self) -> None:
        if self.metrics is not None:
            for result, number in self._results.items():
                self.metrics.priority_signals.labels(result).inc(number)
        self._results.clear()
