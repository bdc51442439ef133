"""Build the dead-letter record for an input that could not be processed.

The record keeps the original key and bytes unchanged; what went wrong and where the
message came from travel in Kafka headers (all values UTF-8 strings):

| header | meaning |
|---|---|
| ``cx.source.topic`` / ``cx.source.partition`` / ``cx.source.offset`` | where it was read |
| ``cx.error.class`` | one of ``schemas.parsing.ErrorClass`` |
| ``cx.error.reason`` | a readable sentence |
| ``cx.failed_at`` | when it was refused (ISO 8601, UTC) |
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from schemas.parsing import Rejection

HEADER_PREFIX = "cx."


@dataclass(frozen=True)
class SourcePosition:
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class DeadLetter:
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


def build_deadletter(
    key: bytes | None,
    raw: bytes | None,
    source: SourcePosition,
    rejection: Rejection,
    failed_at: datetime,
) -> DeadLetter:
    """The dead-letter record for ``raw`` read at ``source`` and refused for ``rejection``."""
    headers = {
        "source.topic": source.topic,
        "source.partition": str(source.partition),
        "source.offset": str(source.offset),
        "error.class": rejection.error_class.value,
        "error.reason": rejection.reason,
        "failed_at": failed_at.isoformat(),
    }
    return DeadLetter(
        key=key,
        value=raw if raw is not None else b"",
        headers=[(HEADER_PREFIX + name, text.encode("utf-8", "backslashreplace"))
                 for name, text in headers.items()],
    )


def read_headers(headers: list[tuple[str, bytes]] | None) -> dict[str, str]:
    """The ``cx.*`` headers of a dead-letter record as a plain mapping (prefix removed)."""
    return {
        name.removeprefix(HEADER_PREFIX): value.decode("utf-8", "replace")
        for name, value in headers or []
        if name.startswith(HEADER_PREFIX)
    }
