"""Segment drops, evaluated where each segment's tallies meet.

A segment's answers are spread over every input partition (customers are keyed by id),
so its drop needs every partition's share. Rather than gather them over HTTP on one
worker, each worker sends its shares to the segment:

1. After a batch moved a segment tally of the rule's window, the state writer sends that
   partition's whole tally of the slice (``ShareOut``) to the internal topic
   ``<app_id>-segment-shares``, keyed by segment, before the batch's changelog (as it
   sends alerts and signals).
2. Whoever owns the segment's partition of that topic keeps the shares of every input
   partition in the table ``segment_tallies`` (changelogged: a failover moves a segment
   with its shares), and a copy in memory.
3. A timer on every worker evaluates the segments of the partitions it owns, from at most
   ``partitions x (baseline_windows + 1)`` shares per segment: the cost is per segment,
   whatever the number of customers or workers.

A share is a partition's whole tally with the input offset it reached, not a delta: a
share sent twice or replayed after a crash changes nothing, and an older share arriving
after a newer one is ignored. A partition recovered by a worker sends its shares again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cxstream.alerts.config import RulesConfig
from cxstream.alerts.group_drops import DropEvaluation
from cxstream.schemas.outputs import Alert
from cxstream.scoring.conventions import Conventions
from cxstream.scoring.fold import parse_partial_key
from cxstream.scoring.partials_index import PartialsIndex
from cxstream.scoring.reports import merge_rows
from cxstream.scoring.tallies import Tally
from cxstream.scoring.windows import WindowSpec, window_start
from cxstream.streams.kafka.changelog import BulkChangelog

log = logging.getLogger(__name__)

#: one input partition's share of a segment window: {"tally": ..., "offset": ...}
Share = dict[str, Any]


def group_name(dimension: str, key: str) -> str:
    """A group's name on the shares topic and in the table: a segment's own name (as
    before other dimensions were evaluated, so a segment keeps its partition), else
    "~<dimension>|<key>"."""
    return key if dimension == "segment" else f"~{dimension}|{key}"


@dataclass(frozen=True)
class ShareOut:
    """An input partition's whole tally of one group window, to send to the group."""

    key: str  # the group's key in its dimension
    partition: int
    start: int
    share: Share
    dimension: str = "segment"

    @property
    def topic_key(self) -> bytes:
        return group_name(self.dimension, self.key).encode()

    def encode(self) -> bytes:
        return json.dumps({"dimension": self.dimension, "segment": self.key,
                           "partition": self.partition, "start": self.start,
                           "tally": self.share["tally"], "offset": self.share["offset"]},
                          separators=(",", ":")).encode()


class SegmentShares:
    """The shares a worker sends for the group tallies its batches moved, of the
    dimensions the rule evaluates."""

    def __init__(self, spec: WindowSpec, baseline_windows: int, index: PartialsIndex,
                 dimensions: tuple[str, ...] = ("segment",)) -> None:
        self.spec = spec
        self.baseline_windows = baseline_windows
        self.index = index
        self.dimensions = dimensions
        #: input partitions recovered since their shares were last sent in full
        self.to_resend: set[int] = set()

    def outputs(self, partition: int, partials: dict[str, Share]) -> list[ShareOut]:
        """StateWriter's share hook: a ShareOut per moved group tally of the window."""
        prefixes = tuple(f"{partition}|{dimension}|{self.spec.name}|"
                         for dimension in self.dimensions)
        found = []
        for key, share in partials.items():
            if key.startswith(prefixes):
                _, dimension, _, start, group = parse_partial_key(key)
                found.append(ShareOut(group, partition, start, share, dimension))
        return found

    def resend(self, now: float, owned: set[int]) -> list[ShareOut]:
        """Every share of the evaluated windows of the recovered partitions still owned
        (taken: a partition is sent again only after its next recovery)."""
        partitions, self.to_resend = self.to_resend & owned, set()
        current = window_start(now, self.spec.seconds)
        found = []
        for partition in sorted(partitions):
            for k in range(self.baseline_windows + 1):
                start = current - k * self.spec.seconds
                for dimension in self.dimensions:
                    for key, share in self.index.slice(partition, dimension, self.spec.name,
                                                       start).items():
                        found.append(ShareOut(key, partition, start, share, dimension))
        return found


def tally_key(group: str, start: int) -> bytes:
    """A group window's key in the table (``group``: ``group_name``)."""
    return f"{start}|{group}".encode()


class SegmentTallies:
    """The shares of the groups whose partitions of the shares topic this worker owns:
    shares partition -> group name -> window start -> input partition -> share."""

    def __init__(self, table: Any, spec: WindowSpec, config: RulesConfig,
                 conventions: Conventions, changelog: BulkChangelog,
                 owned: Callable[[], set[int]]) -> None:
        self.table = table
        self.spec = spec
        self.config = config
        self.conventions = conventions
        self.changelog = changelog
        self.owned = owned
        self.shares: dict[int, dict[str, dict[int, dict[int, Share]]]] = {}
        #: group name -> (dimension, key)
        self.groups: dict[str, tuple[str, str]] = {}
        self.loaded: set[int] = set()
        self.folded = 0  # shares taken (newer than the one kept)
        self.ignored = 0  # shares older than the one kept
        self.evaluation = DropEvaluation(config, conventions)

    def load(self, items: Iterable[tuple[bytes, bytes]], partitions: set[int]) -> None:
        """Read the table (after a recovery) for the owned ``partitions``."""
        self.shares = {partition: {} for partition in partitions}
        self.groups = {}
        for _, raw in items:
            value = json.loads(raw)
            by_group = self.shares.get(value["p"])
            if by_group is not None:
                dimension = value.get("dimension", "segment")  # before 0.5: segments only
                name = group_name(dimension, value["segment"])
                self.groups[name] = (dimension, value["segment"])
                by_group.setdefault(name, {})[value["start"]] = {
                    int(p): share for p, share in value["shares"].items()}
        self.loaded = set(partitions)

    def fold(self, partition: int, raw: bytes) -> bool:
        """Take one share read from the topic's ``partition``; False: older than the one
        kept (or unreadable, logged)."""
        try:
            value = json.loads(raw)
            dimension = str(value.get("dimension", "segment"))
            key, start = str(value["segment"]), int(value["start"])
            source, offset = int(value["partition"]), int(value["offset"])
            share = {"tally": dict(value["tally"]), "offset": offset}
        except (ValueError, KeyError, TypeError):
            log.exception("unreadable segment share on partition %d", partition)
            return False
        name = group_name(dimension, key)
        self.groups[name] = (dimension, key)
        starts = self.shares.setdefault(partition, {}).setdefault(name, {})
        by_source = starts.setdefault(start, {})
        kept = by_source.get(source)
        if kept is not None and kept["offset"] > offset:
            self.ignored += 1
            return False
        by_source[source] = share
        self._write(partition, name, start)
        self.folded += 1
        return True

    def _write(self, partition: int, name: str, start: int) -> None:
        by_source = self.shares[partition][name][start]
        dimension, key = self.groups[name]
        value = {"p": partition, "dimension": dimension, "segment": key, "start": start,
                 "shares": {str(p): share for p, share in sorted(by_source.items())}}
        self.changelog.set(self.table, partition, tally_key(name, start),
                           json.dumps(value, separators=(",", ":")).encode())

    def evaluate(self, now: datetime
                 ) -> tuple[list[Alert], dict[tuple[str, str, str], dict[str, Any]]]:
        """The drops to raise in the owned groups, and the (dimension, key, metric)
        recovered (with figures)."""
        rule = self.config.segment_drop
        current = window_start(now.timestamp(), self.spec.seconds)
        baseline_starts = [current - k * self.spec.seconds
                           for k in range(1, rule.baseline_windows + 1)]
        name = self.spec.name
        groups: dict[tuple[str, str], tuple[Tally, Tally]] = {}
        for partition in sorted(self.owned() & self.loaded):
            for group, starts in self.shares.get(partition, {}).items():
                tallies = merge_rows((name, start, group, share["tally"])
                                     for start, by_source in starts.items()
                                     for share in by_source.values())
                baseline = Tally()
                for start in baseline_starts:
                    baseline = baseline.merge(tallies.get((name, start, group), Tally()))
                groups[self.groups[group]] = (tallies.get((name, current, group), Tally()),
                                              baseline)
        return self.evaluation.evaluate(groups, name, current, now)

    def segment_count(self) -> int:
        """The groups of the owned partitions (what an evaluation looks at)."""
        return sum(len(self.shares.get(partition, {}))
                   for partition in self.owned() & self.loaded)

    async def expire(self, now: float) -> int:
        """Delete the windows older than the baselines (tombstones); returns how many."""
        horizon = (window_start(now, self.spec.seconds)
                   - self.config.segment_drop.baseline_windows * self.spec.seconds)
        deleted = 0
        for partition in sorted(self.owned() & self.loaded & set(self.shares)):
            for group, starts in self.shares[partition].items():
                for start in [start for start in starts if start < horizon]:
                    del starts[start]
                    self.changelog.delete(self.table, partition, tally_key(group, start))
                    deleted += 1
            for group in [group for group, starts in self.shares[partition].items()
                          if not starts]:
                del self.shares[partition][group]
                self.groups.pop(group, None)
        if deleted:
            await self.changelog.flush()
        return deleted


def segment_shares(config: RulesConfig, windows: tuple[WindowSpec, ...],
                   index: PartialsIndex) -> SegmentShares | None:
    """What the state writer sends for segment drops (None: the rule is off); raises
    ValueError for a window the rules do not keep."""
    rule = config.segment_drop
    if not rule.enabled:
        return None
    spec = next((s for s in windows if s.name == rule.window), None)
    if spec is None:
        raise ValueError(f"segment_drop.window {rule.window!r} is not one of "
                         f"{', '.join(s.name for s in windows)}")
    return SegmentShares(spec, rule.baseline_windows, index, tuple(rule.dimensions))
