"""Keep the high-value thresholds current: this worker's own customers at once, the other
workers' shares as of their last refresh.

Why both: a customer's profile is folded by the worker that owns its partition, which
then knows it exactly and at once (scoring.value_bands.ValueIndex, updated inside the
fold), so a key account whose profile arrives a second before their first bad answer is
already in the band. The other workers' customers are known from their histograms,
gathered every ``value_band_refresh_seconds``.

Error bound: the thresholds are those of the exact histograms of every customer, except
that the other workers' customers are counted as they were at the last refresh (at most
``value_band_refresh_seconds`` old); each threshold is the lower edge of a 1 % bucket
(scoring.value_bands). With one worker the bands are exact to that bucket at all times.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from cxstream.scoring.value_bands import Histogram, ValueBands, ValueIndex, merge
from cxstream.streams.cluster import Cluster, ClusterIncomplete

log = logging.getLogger(__name__)


class BandsHolder:
    """The value bands from the local index and the other workers' last shares; rebuilt
    lazily when either changed (readers never see a mix)."""

    def __init__(self, top_share: float, scope: str, fixed_threshold: float | None,
                 index: ValueIndex | None = None,
                 owned: Callable[[], set[int]] = set,
                 partition_count: int | None = None) -> None:
        self.partition_count = partition_count
        #: whether the last bands built counted every partition (this worker's indexed
        #: ones and the other workers' shares); False while partitions are recovering
        self.complete = True
        self.top_share = top_share
        self.scope = scope
        self.fixed_threshold = fixed_threshold
        self.index = index
        self.owned = owned
        self.remote: list[dict[str, Any]] = []  # other workers' shares, last refresh
        self._remote_version = 0
        self._owned_version = 0
        self._built_for: tuple[int, int, int] | None = None
        self._bands = ValueBands({}, top_share, scope, fixed_threshold)

    @property
    def current(self) -> ValueBands:
        if self.index is not None:
            key = (self.index.version, self._remote_version, self._owned_version)
            if key != self._built_for:
                self._bands = self._build()
                self._built_for = key
        return self._bands

    def ownership_changed(self) -> None:
        """After a rebalance: this worker's partitions are others now."""
        self._owned_version += 1

    def _build(self) -> ValueBands:
        owned = self.owned()
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
                          None if remote else self.index.overall(known))

    async def refresh(self, cluster: Cluster) -> None:
        try:
            shares = await cluster.gather("/internal/value-histograms", {},
                                          cluster.local_value_histograms)
        except ClusterIncomplete as exc:
            log.debug("value bands not refreshed: %s", exc)
            return
        if self.index is None:  # no local index: every share as gathered
            per_segment: dict[str, list[Histogram]] = {}
            for share in shares:
                for segment, histogram in share["segments"].items():
                    per_segment.setdefault(segment, []).append(histogram)
            self._bands = ValueBands({segment: merge(parts) for segment, parts in
                                      per_segment.items()}, self.top_share, self.scope,
                                     self.fixed_threshold)
            return
        self.remote = shares[1:]  # Cluster.gather puts this worker's own share first
        self._remote_version += 1
