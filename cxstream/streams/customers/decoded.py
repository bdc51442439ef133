"""Decoded table values kept beside the bytes they came from, bounded by count and by an
estimate of their memory (the customer states of streams.customers.state_writer, the survey
memories of
streams.customers.survey_desk): decoding stood out in the in-process bench, and an unbounded cache
is
memory that grows with the customers a worker has seen."""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

DECODED_BYTES = 192 * 2**20
DECODED_ENTRIES = 100_000
#: memory of a decoded value per byte of its JSON (measured 6.2 for a customer's hot state)
DECODED_FACTOR = 7
Decoded = TypeVar("Decoded")


class DecodedCache(Generic[Decoded]):
    """Decoded values by key, with the table bytes they came from, bounded by count and
    by an estimate of their memory: DECODED_FACTOR times those bytes (a decoded customer's
    hot state took 6.2 times its JSON bytes, measured with tracemalloc on grown customers:
    100 remembered ids, 10 signals, 40 history slots). Least recently written dropped
    first."""

    def __init__(self, max_bytes: int = DECODED_BYTES, max_entries: int = DECODED_ENTRIES
                 ) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.bytes = 0  # the estimate of what the entries hold
        self.entries: OrderedDict[str, tuple[bytes, Decoded]] = OrderedDict()

    def get(self, key: str, raw: bytes) -> Decoded | None:
        cached = self.entries.get(key)
        # the same bytes: the very object (memory store), or equal ones (RocksDB)
        if cached is None or not (cached[0] is raw or cached[0] == raw):
            return None
        return cached[1]

    def put(self, key: str, raw: bytes, value: Decoded) -> None:
        self.pop(key)
        self.entries[key] = (raw, value)
        self.bytes += len(raw) * DECODED_FACTOR
        while (self.bytes > self.max_bytes or len(self.entries) > self.max_entries) \
                and self.entries:
            _, (old, _) = self.entries.popitem(last=False)
            self.bytes -= len(old) * DECODED_FACTOR

    def touch(self, key: str) -> None:
        if key in self.entries:
            self.entries.move_to_end(key)

    def pop(self, key: str) -> None:
        cached = self.entries.pop(key, None)
        if cached is not None:
            self.bytes -= len(cached[0]) * DECODED_FACTOR

    def __len__(self) -> int:
        return len(self.entries)
