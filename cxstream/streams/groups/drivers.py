"""The drivers of a group's change, gathered from every worker's partitions: the tallies
of the group's parts (the part dimension "<dimension>.<by>", scoring.groups.BY) in the
windows compared, added up, then split (scoring.drivers).

Used by the API (a group's drivers between two windows) and by the segment-drop check
(the drivers of a drop against its baseline, in the alert as it fires). A request reads
the part tallies of one group in the windows it compares, from the partials index.
"""

from __future__ import annotations

import logging
from typing import Any

from cxstream.alerts.config import Drivers
from cxstream.scoring.conventions import Conventions
from cxstream.scoring.drivers import Decomposition, decompose, summary
from cxstream.scoring.groups import (
    BY,
    DRIVER_WINDOWS,
    parse_part_key,
    part_dimension,
    part_key,
)
from cxstream.scoring.reports import Tallies, merge_rows
from cxstream.scoring.tallies import Tally
from cxstream.scoring.windows import WindowSpec
from cxstream.streams.groups.cluster import Cluster, ClusterIncomplete

log = logging.getLogger(__name__)

#: the drivers an alert's context keeps (the largest in the drop's direction first)
DRIVERS_IN_ALERT = 5


class GroupDrivers:
    """A worker's way to the part tallies of any group, and their split."""

    def __init__(self, cluster: Cluster, conventions: Conventions, settings: Drivers) -> None:
        self.cluster = cluster
        self.conventions = conventions
        self.settings = settings

    async def part_tallies(self, dimension: str, by: str, key: str, spec: WindowSpec,
                           starts: set[int]) -> Tallies:
        """(window, start, part key) -> the whole tally, of ``key``'s parts by ``by`` in
        the windows of ``spec`` starting at ``starts``."""
        name, prefix = part_dimension(dimension, by), part_key(key, "")
        slices = {(spec.name, start) for start in starts}
        params = {"dimension": name, "prefix": prefix,
                  "slices": ",".join(f"{w}:{s}" for w, s in sorted(slices))}
        shares = await self.cluster.gather(
            "/internal/partials", params,
            lambda: self.cluster.local_partials(name, slices, None, prefix=prefix))
        return merge_rows(tuple(row) for share in shares for row in share["rows"])

    def split(self, metric: str, key: str, tallies: Tallies, before: set[int],
              now: int) -> Decomposition:
        """The change of ``metric`` from the windows ``before`` (added up) to ``now``."""
        parts: dict[str, list[Tally]] = {}
        for (_, start, raw), tally in tallies.items():
            group, part = parse_part_key(raw)
            if group != key or (start != now and start not in before):
                continue
            pair = parts.setdefault(part, [Tally(), Tally()])
            side = 1 if start == now else 0
            pair[side] = pair[side].merge(tally)
        return decompose(metric, {part: (pair[0], pair[1])  # type: ignore[arg-type]
                                  for part, pair in parts.items()},
                         self.conventions, self.settings.min_answers)

    async def of_drop(self, dimension: str, key: str, metric: str, spec: WindowSpec,
                      now: int, baseline: list[int]) -> dict[str, Any] | None:
        """What a group alert says of the drop's drivers: for the group's first part
        dimension, the summary and the largest drivers (None: no part tallies for this
        window, or the partitions are moving: the alert goes out without them)."""
        bys = BY.get(dimension, ())
        if not bys or spec.name not in DRIVER_WINDOWS:
            return None
        by = bys[0]
        try:
            tallies = await self.part_tallies(dimension, by, key, spec, {now, *baseline})
        except ClusterIncomplete as exc:
            log.warning("drivers of %s %s left out of its alert: %s", dimension, key, exc)
            return None
        found = self.split(metric, key, tallies, set(baseline), now)
        if found.change is None:
            return None
        return {"by": by, "summary": summary(found, self.settings.named),
                "change": round(found.change, 2), "parts": len(found.drivers),
                "drivers": [{"part": d.part, "points": round(d.points, 2),
                             "answers": d.answers, "baseline_answers": d.previous_answers,
                             "few": d.few} for d in found.drivers[:DRIVERS_IN_ALERT]]}
