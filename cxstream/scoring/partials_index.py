"""A worker's partial tallies by partition and window slice, kept beside the partials
table as batches fold, so the readers of group tallies never scan the table.

The partials table (streams.customers.state_writer) holds one partial tally per
(partition, dimension, window, start, group key). Its readers want a few slices of it:
the API and the metrics the current windows of one dimension, the segment-drop shares a
window and its baselines, the expiry the slices past retention. A scan of the whole
table costs as much as every window ever retained and, on RocksDB, a read of all of it
from disk; here each of them costs what it returns.

The index is filled from the table once a partition is recovered (``load``) and follows
every write after that (``put``); ``loaded`` says which partitions it can answer for.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from typing import Any

from cxstream.scoring.fold import is_bookkeeping_key, parse_partial_key, partial_key
from cxstream.scoring.group_answers import AnswersIndex, is_answers_key, parse_answers_key
from cxstream.scoring.windows import WindowSpec, is_expired

#: (dimension, window name, window start)
Slice = tuple[str, str, int]


class PartialsIndex:
    """partition -> slice -> group key -> the partial tally's table value."""

    def __init__(self) -> None:
        self._partitions: dict[int, dict[Slice, dict[str, dict[str, Any]]]] = {}
        self.loaded: set[int] = set()
        #: the groups' recent answers, kept under their own keys in the same table
        self.answers = AnswersIndex()

    def load(self, items: Iterable[tuple[bytes, Any]], partitions: set[int]) -> int:
        """Replace everything with the table's (key, value) items of ``partitions`` (after
        a recovery: partitions no longer owned are dropped); returns the tallies read."""
        self._partitions = {partition: {} for partition in partitions}
        self.answers.clear(partitions)
        read = 0
        for raw_key, value in items:
            raw = raw_key.decode()
            if is_answers_key(raw):
                if parse_answers_key(raw)[0] in partitions:
                    self.answers.put(raw, value)
                continue
            if is_bookkeeping_key(raw):
                continue
            partition, dimension, window, start, key = parse_partial_key(raw)
            slices = self._partitions.get(partition)
            if slices is not None:
                slices.setdefault((dimension, window, start), {})[key] = value
                read += 1
        self.loaded = set(partitions)
        return read

    def put(self, raw_key: str, value: dict[str, Any] | None) -> None:
        """Follow a write of the table (None: a delete)."""
        partition, dimension, window, start, key = parse_partial_key(raw_key)
        slices = self._partitions.setdefault(partition, {})
        where = (dimension, window, start)
        if value is not None:
            slices.setdefault(where, {})[key] = value
            return
        tallies = slices.get(where)
        if tallies is not None:
            tallies.pop(key, None)
            if not tallies:
                del slices[where]

    def slice(self, partition: int, dimension: str, window: str, start: int
              ) -> dict[str, dict[str, Any]]:
        """Group key -> table value of one slice of one partition (not to be changed)."""
        return self._partitions.get(partition, {}).get((dimension, window, start), {})

    def rows(self, dimension: str, slices: set[tuple[str, int]] | None, key: str | None,
             partitions: Container[int], prefix: str | None = None) -> list[list[Any]]:
        """[window, start, group key, tally] of ``dimension`` in ``slices`` ((window,
        start); None: all) of the loaded ``partitions``, optionally of one group key or of
        the keys starting with ``prefix`` (a group's parts)."""
        rows = []
        for partition, by_slice in self._partitions.items():
            if partition not in partitions or partition not in self.loaded:
                continue
            for (dim, window, start), tallies in by_slice.items():
                if dim != dimension or (slices is not None and (window, start) not in slices):
                    continue
                for group, value in tallies.items():
                    if (key is None or group == key) and (
                            prefix is None or group.startswith(prefix)):
                        rows.append([window, start, group, value["tally"]])
        return rows

    def expired(self, partition: int, watermark: float,
                windows: tuple[WindowSpec, ...]) -> list[str]:
        """The table keys of the partition's tallies whose window has fallen out of
        retention at ``watermark`` (fold.expired_partial_keys, without reading keys)."""
        spec_of = {spec.name: spec for spec in windows}
        keys = []
        for (dimension, window, start), tallies in self._partitions.get(partition, {}).items():
            spec = spec_of.get(window)
            if spec is None or is_expired(start, spec, watermark):
                keys += [partial_key(partition, dimension, window, start, group)
                         for group in tallies]
        return keys

    def slice_count(self) -> int:
        return sum(len(slices) for slices in self._partitions.values())
