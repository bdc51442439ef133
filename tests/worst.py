"""The costliest values of the contract, for the tests of the computed bounds."""

from __future__ import annotations

from datetime import UTC, datetime

from cxstream.scoring.bounds import ID_CHARS

BIG = -(2**63)  # the longest integer in JSON
LATE = datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
WORST = "\x00"  # a control character: six bytes in JSON


def worst(n: int = 0) -> str:
    """A longest id of the costliest character, distinct per ``n``."""
    tail = str(n)
    return WORST * (ID_CHARS - len(tail)) + tail
