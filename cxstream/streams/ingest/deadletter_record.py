"""Build the dead-letter record for an input that could not be processed.

The record keeps the original key and bytes unchanged; what went wrong and where the
message came from travel in Kafka headers (all values UTF-8 strings):

| header | meaning |
|---|---|
| ``cx.source.topic`` / ``cx.source.partition`` / ``cx.source.offset`` | where it was read |
| ``cx.error.class`` | one of ``schemas.parsing.ErrorClass`` |
| ``cx.error.reason`` | a readable sentence |
| ``cx.failed_at`` | when it was refused (ISO 8601, UTC) |
| ``cx.contract.version`` | the contract version of this record (``1``) |
| ``cx.original.size`` / ``cx.original.sha256`` | only on a truncated copy: the size and |
| | digest of the whole original value (``cx.truncated`` is then ``true``) |

A value larger than the dead-letter topic can take (``copy_limit``) is kept as its first
``copy_limit`` bytes; a key longer than ``KEY_COPY_LIMIT`` likewise.

Every dead-letter record of one input partition goes to one partition of the dead-letter
topic (``deadletter_partition``), so a worker can tell which inputs of a partition are
there already by reading that partition from a known offset (streams.ingest.deadletter_once).
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from datetime import datetime

from cxstream.schemas.export import CONTRACT_VERSION
from cxstream.schemas.parsing import Rejection

HEADER_PREFIX = "cx."
KEY_COPY_LIMIT = 1_024
#: room in a dead-letter record for the key, the headers and Kafka's record overhead
RECORD_HEADROOM = 4_096


@dataclass(frozen=True)
class SourcePosition:
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class Refusal:
    """Why an output, not an input, is dead-lettered (an alert the webhook refused)."""

    error_class: str
    reason: str


@dataclass(frozen=True)
class DeadLetter:
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


def build_deadletter(
    key: bytes | None,
    raw: bytes | None,
    source: SourcePosition,
    rejection: Rejection | Refusal,
    failed_at: datetime,
    copy_limit: int | None = None,
) -> DeadLetter:
    """The dead-letter record for ``raw`` read at ``source`` and refused for ``rejection``;
    a value over ``copy_limit`` bytes is cut to that prefix (its size and digest in headers)."""
    value = raw if raw is not None else b""
    headers = {
        "source.topic": source.topic,
        "source.partition": str(source.partition),
        "source.offset": str(source.offset),
        "error.class": str(getattr(rejection.error_class, "value", rejection.error_class)),
        "error.reason": rejection.reason,
        "failed_at": failed_at.isoformat(),
        "contract.version": CONTRACT_VERSION,
    }
    if copy_limit is not None and len(value) > copy_limit:
        headers.update({"truncated": "true", "original.size": str(len(value)),
                        "original.sha256": hashlib.sha256(value).hexdigest()})
        value = value[:copy_limit]
    if key is not None and len(key) > KEY_COPY_LIMIT:
        headers["original.key_size"] = str(len(key))
        key = key[:KEY_COPY_LIMIT]
    return DeadLetter(
        key=key,
        value=value,
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


def deadletter_partition(source_topic: str, source_partition: int, partitions: int) -> int:
    """The dead-letter partition of every record from one input partition (stable: CRC-32
    of "<topic>|<partition>", so it survives restarts and differs between input topics)."""
    return zlib.crc32(f"{source_topic}|{source_partition}".encode()) % partitions


def copy_limit(producer_max_request_bytes: int, topic_max_message_bytes: int | None) -> int:
    """The largest input value a dead-letter record copies whole: what the producer and the
    dead-letter topic both take, less room for the key, headers and record overhead."""
    limits = [producer_max_request_bytes]
    if topic_max_message_bytes is not None:
        limits.append(topic_max_message_bytes)
    return min(limits) - RECORD_HEADROOM


def message_limit_problem(max_event_bytes: int, producer_max_request_bytes: int,
                          topic: str, topic_max_message_bytes: int | None) -> str | None:
    """Why an input of ``max_event_bytes`` could not be dead-lettered whole (None: it can)."""
    limit = copy_limit(producer_max_request_bytes, topic_max_message_bytes)
    if max_event_bytes <= limit:
        return None
    topic_part = ("" if topic_max_message_bytes is None else
                  f" and max.message.bytes={topic_max_message_bytes} of topic {topic}")
    return (f"CXSTREAM_MAX_EVENT_BYTES={max_event_bytes} is too large for a dead-letter copy: "
            f"CXSTREAM_PRODUCER_MAX_REQUEST_BYTES={producer_max_request_bytes}{topic_part} "
            f"leave room for {limit} bytes ({RECORD_HEADROOM} bytes go to the key, headers "
            "and record overhead); lower the first or raise the others")
