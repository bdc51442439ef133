"""What a partition of cx.alerts may commit: up to its lowest alert not yet settled.

An alert message is settled once it is posted, dead-lettered, found not to need a post
(a duplicate, an update, no destination) or carried by a digest that was posted or
dead-lettered. Alerts of one partition settle out of order (each destination has its own
queue), so the commit point is the lowest offset read and not settled, else the next
offset to read. Pure: no Kafka.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Iterable


class OffsetTracker:
    """Per partition: the offsets read and not yet settled, and the next to read."""

    def __init__(self) -> None:
        self._pending: dict[Hashable, set[int]] = {}
        self._heap: dict[Hashable, list[int]] = {}  # the pending offsets, lazily pruned
        self._next: dict[Hashable, int] = {}
        self._committed: dict[Hashable, int] = {}

    def read(self, tp: Hashable, offset: int) -> None:
        """An alert message was read; it is pending until ``settle``."""
        self._pending.setdefault(tp, set()).add(offset)
        heapq.heappush(self._heap.setdefault(tp, []), offset)
        self._next[tp] = max(self._next.get(tp, 0), offset + 1)

    def settle(self, tp: Hashable, offset: int) -> None:
        pending = self._pending.get(tp)
        if pending is not None:
            pending.discard(offset)

    def pending(self, tp: Hashable) -> int:
        return len(self._pending.get(tp, ()))

    def commit_point(self, tp: Hashable) -> int | None:
        """The offset to commit: the lowest pending one, else the next to read (None:
        nothing read from ``tp``)."""
        pending, heap = self._pending.get(tp, set()), self._heap.get(tp, [])
        while heap and heap[0] not in pending:
            heapq.heappop(heap)
        return heap[0] if heap else self._next.get(tp)

    def to_commit(self, tps: Iterable[Hashable]) -> dict[Hashable, int]:
        """The commit points of ``tps`` that moved since they were last committed."""
        moved = {}
        for tp in tps:
            point = self.commit_point(tp)
            if point is not None and point > self._committed.get(tp, -1):
                moved[tp] = point
        return moved

    def committed(self, points: dict[Hashable, int]) -> None:
        self._committed.update(points)

    def forget(self, tps: Iterable[Hashable]) -> None:
        """Revoked partitions: their new owner reads them again from the last commit."""
        for tp in tps:
            for table in (self._pending, self._heap, self._next, self._committed):
                table.pop(tp, None)
