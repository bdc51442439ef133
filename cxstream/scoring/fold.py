"""The fold's vocabulary: its rules, a sourced event, a partition's share of a group tally
and the keys of the partials table. The fold itself runs on plain data
(scoring.batch_fold, driven by alerts.customer_core); its reference on the contract's pydantic
models, which the differential tests check it against, is testkit/reference/fold.py.

Exactly-once effects on top of at-least-once delivery:
- a customer remembers the offset that first brought each event id: the same id at
  another offset is a resend (ignored); at the same offset, a replay after a crash;
- each partial tally records the last feedback offset applied to it, and the watermark the
  last offset that moved it, so a replayed answer never counts twice in either.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from cxstream.schemas.events import InputEvent
from cxstream.scoring.conventions import Conventions
from cxstream.scoring.customer import (
    StateRules,
)
from cxstream.scoring.group_answers import is_answers_key
from cxstream.scoring.journey import Journey
from cxstream.scoring.tallies import Tally
from cxstream.scoring.windows import Watermark, WindowSpec, is_expired

WATERMARK_SUFFIX = "~watermark"
GROUP_KEYS_MARK = "~keys"


class FoldRules(BaseModel):
    model_config = ConfigDict(frozen=True)

    state: StateRules
    conventions: Conventions
    windows: tuple[WindowSpec, ...]
    allowed_lateness_seconds: float
    max_clock_skew_seconds: float
    #: distinct keys per group dimension and partition (None: no cap)
    max_group_keys: int | None = None
    #: journey stages of the touchpoints (scores per stage)
    journey: Journey = Journey()


class PartialTally(BaseModel):
    """One partition's share of a group's tally in one window."""

    model_config = ConfigDict(frozen=True)

    tally: Tally = Tally()
    offset: int = -1


@dataclass(frozen=True)
class SourcedEvent:
    event: InputEvent
    offset: int
    record_time: float  # Kafka record timestamp, epoch seconds


def partial_key(partition: int, dimension: str, window: str, start: int, key: str) -> str:
    return f"{partition}|{dimension}|{window}|{start}|{key}"


def parse_partial_key(raw: str) -> tuple[int, str, str, int, str]:
    """(partition, dimension, window, start, group key) of a partial-tally key."""
    partition, dimension, window, start, key = raw.split("|", 4)
    return int(partition), dimension, window, int(start), key


def watermark_key(partition: int) -> str:
    return f"{partition}|{WATERMARK_SUFFIX}"


def group_keys_key(partition: int, dimension: str) -> str:
    """Where a partition's admitted keys of a dimension are kept, beside its tallies."""
    return f"{partition}|{GROUP_KEYS_MARK}|{dimension}"


def is_bookkeeping_key(raw: str) -> bool:
    """True for the partials table's keys that are not tallies (watermark, group keys,
    a group's recent answers)."""
    return (raw.endswith("|" + WATERMARK_SUFFIX) or f"|{GROUP_KEYS_MARK}|" in raw
            or is_answers_key(raw))


@dataclass(frozen=True)
class PartialSlot:
    """Where a partial tally of the partials table belongs (its key, parsed)."""

    raw: str
    partition: int
    dimension: str
    window: str
    start: int
    key: str


def partial_slots(items: Iterable[tuple[bytes, Any]], partitions: Container[int] | None = None
                  ) -> Iterator[tuple[PartialSlot, Any]]:
    """The partial tallies among a partials table's (key, value) items, with their values:
    bookkeeping keys (watermarks, group keys) left out, and partitions outside
    ``partitions`` (None: all)."""
    for raw_key, value in items:
        raw = raw_key.decode()
        if is_bookkeeping_key(raw):
            continue
        slot = PartialSlot(raw, *parse_partial_key(raw))
        if partitions is None or slot.partition in partitions:
            yield slot, value


def expired_partial_keys(keys: Sequence[str], watermark: Watermark,
                         windows: tuple[WindowSpec, ...]) -> list[str]:
    """Partial tallies whose window has fallen out of retention at this watermark."""
    spec_of = {spec.name: spec for spec in windows}
    expired = []
    for slot, _ in partial_slots((raw.encode(), None) for raw in keys):
        spec = spec_of.get(slot.window)
        if spec is None or is_expired(slot.start, spec, watermark.at):
            expired.append(slot.raw)
    return expired
