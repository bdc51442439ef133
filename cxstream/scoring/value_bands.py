"""High-value customers: the top share by value, estimated from log-spaced histograms.

Why a histogram and not exact ranks: the estimate must be merged across partitions owned
by different workers, and a histogram merges by adding counts. Buckets grow by 1 % (value
v >= 1 goes to bucket floor(log(v) / log(1.01)) + 1; values below 1 to bucket 0), so the
estimated threshold is the lower edge of the bucket that holds the exact quantile: never
above the exact value and less than 1 % below it. Customers in that bucket just under the
exact quantile may be classed high-value; none above it is missed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

GROWTH = 1.01
_LOG_GROWTH = math.log(GROWTH)

Histogram = dict[int, int]


def bucket_of(value: float) -> int:
    """The histogram bucket of a value >= 0."""
    if value < 1:
        return 0
    bucket = int(math.log(value) / _LOG_GROWTH) + 1
    # guard against floating error at exact bucket edges
    if lower_edge(bucket) > value:
        bucket -= 1
    elif lower_edge(bucket + 1) <= value:
        bucket += 1
    return bucket


def lower_edge(bucket: int) -> float:
    """Smallest value of a bucket."""
    return 0.0 if bucket <= 0 else GROWTH ** (bucket - 1)


def histogram_of(values: Iterable[float]) -> Histogram:
    counts: Histogram = {}
    for value in values:
        bucket = bucket_of(value)
        counts[bucket] = counts.get(bucket, 0) + 1
    return counts


def merge(histograms: Iterable[Histogram]) -> Histogram:
    merged: Histogram = {}
    for histogram in histograms:
        for bucket, count in histogram.items():
            merged[int(bucket)] = merged.get(int(bucket), 0) + count
    return merged


def top_share_threshold(histogram: Histogram, top_share: float,
                        min_customers: int = 1) -> float | None:
    """The value at or above which a customer is in the top ``top_share`` (None if empty).

    The exact threshold is the value of the ceil(top_share * n)-th largest customer; this
    returns the lower edge of its bucket. None too while fewer than ``min_customers``
    are counted (CXSTREAM_HIGH_VALUE_MIN_CUSTOMERS): one customer is no "top 20 %"."""
    total = sum(histogram.values())
    if total == 0 or total < min_customers:
        return None
    wanted = max(1, math.ceil(top_share * total))
    seen = 0
    for bucket in sorted(histogram, reverse=True):
        seen += histogram[bucket]
        if seen >= wanted:
            return lower_edge(bucket)
    return 0.0  # pragma: no cover - the loop always reaches `wanted`


class ValueBands:
    """Thresholds of the high-value band, overall and per segment."""

    def __init__(self, histograms: dict[str, Histogram], top_share: float,
                 scope: str = "segment", fixed_threshold: float | None = None,
                 overall: Histogram | None = None, min_customers: int = 1) -> None:
        #: histograms per segment; the overall one is their sum (``overall``, if the
        #: caller has it)
        self.by_segment = {segment: top_share_threshold(h, top_share, min_customers)
                           for segment, h in histograms.items()}
        self.overall = top_share_threshold(
            merge(histograms.values()) if overall is None else overall, top_share,
            min_customers)
        self.customers = sum(sum(h.values()) for h in histograms.values())
        self.top_share = top_share
        self.scope = scope
        self.fixed_threshold = fixed_threshold

    def flags(self, segment: str, value: float) -> dict[str, bool | None]:
        """Whether a customer is high-value overall, within the segment, and as configured."""
        overall = None if self.overall is None else value >= self.overall
        threshold = self.by_segment.get(segment)
        in_segment = None if threshold is None else value >= threshold
        if self.fixed_threshold is not None:
            chosen: bool | None = value >= self.fixed_threshold
        else:
            chosen = in_segment if self.scope == "segment" else overall
        return {"overall": overall, "in_segment": in_segment, "high_value": chosen}

    def threshold(self, segment: str) -> float | None:
        """The value from which a customer of ``segment`` is high-value (as configured)."""
        if self.fixed_threshold is not None:
            return self.fixed_threshold
        return self.by_segment.get(segment) if self.scope == "segment" else self.overall

    def describe(self) -> dict[str, object]:
        return {"top_share": self.top_share, "scope": self.scope,
                "fixed_threshold": self.fixed_threshold, "customers": self.customers,
                "overall_threshold": self.overall, "segment_thresholds": self.by_segment}


class ValueIndex:
    """Each owned customer's (segment, value, experience), with per-partition histograms.

    Lets a worker answer "value histograms of my partitions" without scanning its table:
    a profile update moves one count from the old bucket to the new one. The experience
    (``low``: True, False, or None before any score or interaction) is kept beside it so
    customers per quadrant can be counted against the current bands without decoding
    every state.
    """

    def __init__(self) -> None:
        self._customers: dict[int, dict[str, tuple[str, float]]] = {}
        self._histograms: dict[int, dict[str, Histogram]] = {}
        #: the histograms of every partition held, added up (kept as they change: bands
        #: are rebuilt after every new profile, and merging every partition's stood out)
        self._merged: dict[str, Histogram] = {}
        self._overall: Histogram = {}  # and all segments added up
        self._low: dict[int, dict[str, bool | None]] = {}
        #: customers whose experience is low, per segment: (partition, value) by id; the
        #: candidates when a threshold falls (``newly_high``)
        self._low_by_segment: dict[str, dict[str, tuple[int, float]]] = {}
        #: bumped whenever a histogram changes (readers rebuild their bands then)
        self.version = 0
        #: partitions whose customers are all in the index (set once a recovery of the
        #: table has been read into it): only those count as known
        self.indexed: set[int] = set()

    def mark_indexed(self, partitions: set[int]) -> None:
        """The index now holds every customer of ``partitions`` (and of no others)."""
        self.indexed = set(partitions)
        self.version += 1

    def update(self, partition: int, customer_id: str, segment: str, value: float,
               low: bool | None = None) -> None:
        self._low.setdefault(partition, {})[customer_id] = low
        customers = self._customers.setdefault(partition, {})
        histograms = self._histograms.setdefault(partition, {})
        old = customers.get(customer_id)
        if old is not None and old[0] != segment:
            self._low_by_segment.get(old[0], {}).pop(customer_id, None)
        if low:
            self._low_by_segment.setdefault(segment, {})[customer_id] = (partition, value)
        else:
            self._low_by_segment.get(segment, {}).pop(customer_id, None)
        if old == (segment, value):
            return
        self.version += 1
        if old is not None:
            self._count(histograms, old[0], bucket_of(old[1]), -1)
        customers[customer_id] = (segment, value)
        self._count(histograms, segment, bucket_of(value), 1)

    def _count(self, histograms: dict[str, Histogram], segment: str, bucket: int,
               change: int) -> None:
        """Add ``change`` to a bucket of a partition's histogram and of the merged one."""
        for counts in (histograms.setdefault(segment, {}),
                       self._merged.setdefault(segment, {}), self._overall):
            counts[bucket] = counts.get(bucket, 0) + change
            if counts[bucket] == 0:
                del counts[bucket]

    def quadrant_counts(self, partitions: set[int], bands: ValueBands
                        ) -> dict[tuple[str, str], int]:
        """Customers per (segment, quadrant) over ``partitions``; "unknown" until both the
        customer's band and experience are known (see scoring.customer.quadrant)."""
        counts: dict[tuple[str, str], int] = {}
        thresholds: dict[str, float | None] = {}
        for partition in partitions & set(self._customers):
            low_of = self._low.get(partition, {})
            for customer_id, (segment, value) in self._customers[partition].items():
                if segment not in thresholds:
                    thresholds[segment] = bands.threshold(segment)
                threshold = thresholds[segment]
                name = quadrant_name(None if threshold is None else value >= threshold,
                                     low_of.get(customer_id))
                counts[(segment, name)] = counts.get((segment, name), 0) + 1
        return counts

    def newly_high(self, before: ValueBands, after: ValueBands, partitions: set[int]
                   ) -> list[tuple[int, str]]:
        """(partition, customer_id) of the customers with a low experience in
        ``partitions`` that are high-value with ``after`` and were not with ``before``."""
        found = []
        for segment, members in self._low_by_segment.items():
            old, new = before.threshold(segment), after.threshold(segment)
            if new is None or (old is not None and new >= old):
                continue  # nobody of the segment crossed into the band
            for customer_id, (partition, value) in members.items():
                if partition in partitions and value >= new and (old is None or value < old):
                    found.append((partition, customer_id))
        return sorted(found)

    def fill(self, rows: Iterable[tuple[int, str, str, float, bool | None]]) -> int:
        """Add (partition, customer id, segment, value, low) rows of customers not yet in
        the index, in bulk (after ``clear``: a rebuild reads every customer held, and one
        ``update`` each stood out in a profile of a restart); returns how many."""
        added = 0
        for partition, customer_id, segment, value, low in rows:
            bucket = bucket_of(value)
            self._customers.setdefault(partition, {})[customer_id] = (segment, value)
            self._low.setdefault(partition, {})[customer_id] = low
            if low:
                self._low_by_segment.setdefault(segment, {})[customer_id] = (partition, value)
            counts = self._histograms.setdefault(partition, {}).setdefault(segment, {})
            counts[bucket] = counts.get(bucket, 0) + 1
            added += 1
        self._merged.clear()
        self._overall.clear()
        for histograms in self._histograms.values():
            for segment, counts in histograms.items():
                merged = self._merged.setdefault(segment, {})
                for bucket, count in counts.items():
                    merged[bucket] = merged.get(bucket, 0) + count
                    self._overall[bucket] = self._overall.get(bucket, 0) + count
        self.version += 1
        return added

    def fill_saved(self, partition: int, rows: Sequence[Sequence[Any]],
                   histograms: dict[str, Histogram]) -> int:
        """Add a partition's (customer id, segment, value, low) rows with the histograms
        saved with them (``rows``, ``histograms_of``), without a bucket per row: at a
        restart with 1,000,000 customers, ``fill`` of the saved rows took most of the
        value index's 2.4 s (the worker's log; docs/performance.md). Call ``fill`` after
        the last partition (with the rows read from the table, if any): it adds the
        partitions' histograms up. Returns how many."""
        if not rows:  # as ``fill`` of no row: nothing is held for the partition
            return 0
        self._customers.setdefault(partition, {}).update(
            {customer_id: (segment, float(value)) for customer_id, segment, value, _ in rows})
        self._low.setdefault(partition, {}).update(
            {customer_id: low for customer_id, _, _, low in rows})
        for customer_id, segment, value, low in rows:
            if low:
                self._low_by_segment.setdefault(segment, {})[customer_id] = (partition,
                                                                              float(value))
        self._histograms[partition] = {segment: dict(counts)
                                       for segment, counts in histograms.items()}
        return len(rows)

    def histograms_of(self, partition: int) -> dict[str, Histogram]:
        """One partition's histograms, without empty buckets: what ``fill_saved`` takes
        back with the partition's ``rows``."""
        kept = {segment: {bucket: count for bucket, count in counts.items() if count}
                for segment, counts in self._histograms.get(partition, {}).items()}
        return {segment: counts for segment, counts in kept.items() if counts}

    def rows(self, partition: int) -> list[tuple[str, str, float, bool | None]]:
        """(customer id, segment, value, low) of every customer of ``partition``: what
        ``fill`` takes back (with the partition), for a snapshot of the index."""
        low_of = self._low.get(partition, {})
        return [(customer_id, segment, value, low_of.get(customer_id))
                for customer_id, (segment, value) in self._customers.get(partition, {}).items()]

    def forget(self, partition: int, customer_id: str) -> None:
        """Remove one customer (erasure)."""
        old = self._customers.get(partition, {}).pop(customer_id, None)
        self._low.get(partition, {}).pop(customer_id, None)
        if old is None:
            return
        self._low_by_segment.get(old[0], {}).pop(customer_id, None)
        self._count(self._histograms[partition], old[0], bucket_of(old[1]), -1)
        self.version += 1

    def keep_only(self, partitions: set[int]) -> None:
        """Forget partitions this worker no longer owns."""
        for partition in set(self._customers) - partitions:
            for customer_id, (segment, _) in self._customers[partition].items():
                self._low_by_segment.get(segment, {}).pop(customer_id, None)
            del self._customers[partition]
            for segment, counts in self._histograms.pop(partition, {}).items():
                for bucket, count in counts.items():
                    self._count({}, segment, bucket, -count)
            self._low.pop(partition, None)
        self.indexed &= partitions
        self.version += 1

    def clear(self) -> None:
        self._customers.clear()
        self._histograms.clear()
        self._merged.clear()
        self._overall.clear()
        self._low.clear()
        self._low_by_segment.clear()
        self.indexed = set()
        self.version += 1

    def overall(self, partitions: set[int]) -> Histogram | None:
        """All segments' histograms added up over ``partitions``, if that is all the
        index holds (None otherwise: add up ``histograms``)."""
        return self._overall if set(self._histograms) <= partitions else None

    def histograms(self, partitions: set[int]) -> dict[str, Histogram]:
        """Histograms per segment over ``partitions`` (not to be changed by the caller)."""
        if set(self._histograms) <= partitions:  # the usual case: all that is held
            return {segment: counts for segment, counts in self._merged.items() if counts}
        merged: dict[str, Histogram] = {}
        for partition in partitions & set(self._histograms):
            for segment, counts in self._histograms[partition].items():
                into = merged.setdefault(segment, {})
                for bucket, count in counts.items():
                    into[bucket] = into.get(bucket, 0) + count
        return {segment: counts for segment, counts in merged.items() if counts}



class LiveBands:
    """The value bands from the local index and the other workers' last shares, rebuilt
    lazily when either changed (readers never see a mix). Everything it reads is a value
    set on it (the owned partitions, the remote shares), so the fold can read the bands
    mid-batch, after its own profiles moved them, without calling out of this layer."""

    def __init__(self, top_share: float, scope: str, fixed_threshold: float | None,
                 index: ValueIndex | None = None,
                 partition_count: int | None = None, min_customers: int = 1) -> None:
        self.partition_count = partition_count
        self.min_customers = min_customers
        #: whether the last bands built counted every partition (this worker's indexed
        #: ones and the other workers' shares); False while partitions are recovering
        self.complete = True
        self.top_share = top_share
        self.scope = scope
        self.fixed_threshold = fixed_threshold
        self.index = index
        self.owned_now: frozenset[int] = frozenset()
        self.remote: list[dict[str, Any]] = []  # other workers' shares, last refresh
        self._remote_version = 0
        self._owned_version = 0
        self._built_for: tuple[int, int, int] | None = None
        self._bands = ValueBands({}, top_share, scope, fixed_threshold)

    def own(self, partitions: Iterable[int]) -> None:
        """The partitions this worker owns now (the bands are rebuilt if they moved)."""
        owned = frozenset(partitions)
        if owned != self.owned_now:
            self.owned_now = owned
            self._owned_version += 1

    @property
    def current(self) -> ValueBands:
        if self.index is not None:
            key = (self.index.version, self._remote_version, self._owned_version)
            if key != self._built_for:
                self._bands = self._build()
                self._built_for = key
        return self._bands

    def read(self) -> ValueBands:
        """``current``, as a function (for RecentFlags)."""
        return self.current

    def _build(self) -> ValueBands:
        owned = set(self.owned_now)
        assert self.index is not None
        known = owned & self.index.indexed
        local = self.index.histograms(known)
        per_segment: dict[str, list[Histogram]] = {
            segment: [counts] for segment, counts in local.items()}
        covered = set(known)
        remote = False
        for share in self.remote:
            if set(share["partitions"]) & owned:
                continue  # a share from before a rebalance: those partitions are here now
            covered |= set(share["partitions"])
            for segment, histogram in share["segments"].items():
                per_segment.setdefault(segment, []).append(histogram)
                remote = True
        wanted = owned if self.partition_count is None else set(range(self.partition_count))
        self.complete = covered >= wanted
        # the index's own sums where nothing is added (a share from JSON has text keys:
        # merge reads them as numbers)
        return ValueBands({segment: parts[0] if len(parts) == 1 and parts[0] is local.get(
            segment) else merge(parts) for segment, parts in per_segment.items()},
                          self.top_share, self.scope, self.fixed_threshold,
                          None if remote else self.index.overall(known), self.min_customers)


def quadrant_name(high_value: bool | None, low: bool | None) -> str:
    """The quadrant of scoring.customer.quadrant from its two inputs, or "unknown"."""
    if high_value is None or low is None:
        return "unknown"
    if high_value:
        return "at-risk" if low else "exemplary"
    return "dangling" if low else "growth"
