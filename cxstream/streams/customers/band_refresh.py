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

from cxstream.scoring.value_bands import Histogram, LiveBands, ValueBands, ValueIndex, merge
from cxstream.streams.groups.cluster import Cluster, ClusterIncomplete

log = logging.getLogger(__name__)


class BandsHolder(LiveBands):
    """LiveBands with the partitions this worker owns taken from the cluster, and the other
    workers' shares gathered by ``refresh``."""

    def __init__(self, top_share: float, scope: str, fixed_threshold: float | None,
                 index: ValueIndex | None = None,
                 owned: Callable[[], set[int]] = set,
                 partition_count: int | None = None, min_customers: int = 1) -> None:
        super().__init__(top_share, scope, fixed_threshold, index, partition_count,
                         min_customers)
        self.owned = owned
        self.own(owned())

    def is_high_value(self, segment: str, value: float) -> bool | None:
        """Whether a customer of ``segment`` worth ``value`` is in the top band now."""
        high: bool | None = self.current.flags(segment, value)["high_value"]
        return high

    def ownership_changed(self) -> None:
        """After a rebalance: this worker's partitions are others now."""
        self.own(self.owned())

    def sync_ownership(self) -> ValueBands:
        """The current bands, with the owned partitions read again first (before a batch:
        the fold reads the bands as they stand, LiveBands.current)."""
        self.own(self.owned())
        return self.current

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
                                     self.fixed_threshold, min_customers=self.min_customers)
            return
        self.remote = shares[1:]  # Cluster.gather puts this worker's own share first
        self._remote_version += 1
