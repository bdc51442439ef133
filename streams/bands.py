"""Keep the high-value thresholds current: rebuild them from every worker's histograms."""

from __future__ import annotations

import logging

from scoring.value_bands import Histogram, ValueBands, merge
from streams.cluster import Cluster, ClusterIncomplete

log = logging.getLogger(__name__)


class BandsHolder:
    """The latest value bands; replaced whole by ``refresh`` (readers never see a mix)."""

    def __init__(self, top_share: float, scope: str, fixed_threshold: float | None) -> None:
        self.top_share = top_share
        self.scope = scope
        self.fixed_threshold = fixed_threshold
        self.current = ValueBands({}, top_share, scope, fixed_threshold)

    async def refresh(self, cluster: Cluster) -> None:
        try:
            shares = await cluster.gather("/internal/value-histograms", {},
                                          cluster.local_value_histograms)
        except ClusterIncomplete as exc:
            log.debug("value bands not refreshed: %s", exc)
            return
        per_segment: dict[str, list[Histogram]] = {}
        for share in shares:
            for segment, histogram in share["segments"].items():
                per_segment.setdefault(segment, []).append(histogram)
        self.current = ValueBands({segment: merge(parts) for segment, parts in
                                   per_segment.items()}, self.top_share, self.scope,
                                  self.fixed_threshold)
