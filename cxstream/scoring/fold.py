"""Fold a batch of one partition's validated inputs into customer states and group tallies.

Shape: [SourcedEvent] (offset order per topic) + current state -> FoldResult with only what
changed, so an agent writes each table key once per batch.

Exactly-once effects on top of at-least-once delivery:
- a customer remembers the offset that first brought each event id: the same id at
  another offset is a resend (ignored); at the same offset, a replay after a crash;
- each partial tally records the last feedback offset applied to it, and the watermark the
  last offset that moved it, so a replayed answer never counts twice in either.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from cxstream.schemas.events import CustomerProfile, Feedback, InputEvent, Interaction
from cxstream.scoring.conventions import Conventions
from cxstream.scoring.customer import (
    CustomerState,
    StateRules,
    apply_feedback,
    apply_interaction,
    apply_profile,
    remember,
)
from cxstream.scoring.groups import GroupKeys, contributions
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


@dataclass(frozen=True)
class Applied:
    """An event applied for the first time, with the customer's state around it: what the
    alert rules look at once the fold is done."""

    item: SourcedEvent
    before: CustomerState
    after: CustomerState


@dataclass
class FoldResult:
    states: dict[str, CustomerState] = field(default_factory=dict)
    partials: dict[str, PartialTally] = field(default_factory=dict)
    watermark: Watermark = field(default_factory=Watermark)
    #: (kind, outcome) -> count; outcomes: applied, duplicate, replayed, late
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: events applied for the first time, in order, with the customer's state around each
    applied: list[Applied] = field(default_factory=list)
    #: the partition's admitted group keys (None: uncapped)
    keys: GroupKeys | None = None


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
    """True for the partials table's keys that are not tallies (watermark, group keys)."""
    return raw.endswith("|" + WATERMARK_SUFFIX) or f"|{GROUP_KEYS_MARK}|" in raw


def fold_batch(
    partition: int,
    items: Sequence[SourcedEvent],
    load_state: Callable[[str], CustomerState | None],
    load_partial: Callable[[str], PartialTally | None],
    watermark: Watermark,
    rules: FoldRules,
    keys: GroupKeys | None = None,
) -> FoldResult:
    """Apply ``items`` of ``partition`` in order; return what changed. ``keys``: the group
    keys the partition admits (updated in place)."""
    result = FoldResult(watermark=watermark, keys=keys)
    for item in items:
        customer_id = item.event.customer_id
        state = result.states.get(customer_id) or load_state(customer_id) or CustomerState(
            customer_id=customer_id)
        after, applied = _fold_one(partition, item, state, load_partial, result, rules)
        if applied:
            result.applied.append(Applied(item, state, after))
        result.states[customer_id] = after
    return result


def _fold_one(partition: int, item: SourcedEvent, state: CustomerState,
              load_partial: Callable[[str], PartialTally | None], result: FoldResult,
              rules: FoldRules) -> tuple[CustomerState, bool]:
    """The state after ``item``, and whether it was applied now (not a duplicate or a
    replay)."""
    event = item.event
    if isinstance(event, CustomerProfile):
        result.outcomes["customer", "applied"] += 1
        return apply_profile(state, event), True
    kind = "feedback" if isinstance(event, Feedback) else "interaction"
    delivery = state.delivery_of(kind, event.event_id, item.offset)
    if delivery == "duplicate":
        result.outcomes[kind, "duplicate"] += 1
        return state, False
    seen_at = item.offset if delivery == "replay" else None
    if isinstance(event, Interaction):
        if seen_at is not None:
            result.outcomes[kind, "replayed"] += 1
            return state, False
        result.outcomes[kind, "applied"] += 1
        return remember(apply_interaction(state, event, rules.state), kind,
                        event.event_id, item.offset, rules.state), True
    after = _fold_feedback(partition, item, event, state, seen_at, load_partial, result, rules)
    return after, seen_at is None


def _fold_feedback(partition: int, item: SourcedEvent, event: Feedback, state: CustomerState,
                   seen_at: int | None, load_partial: Callable[[str], PartialTally | None],
                   result: FoldResult, rules: FoldRules) -> CustomerState:
    occurred = event.occurred_at.timestamp()
    late = result.watermark.is_late(occurred, rules.allowed_lateness_seconds)
    if item.offset > result.watermark.offset:
        result.watermark = result.watermark.advance(
            occurred, item.record_time, rules.max_clock_skew_seconds, item.offset)
    counted_before = state.counted
    if seen_at is None:
        state = remember(apply_feedback(state, event, rules.state), "feedback", event.event_id,
                         item.offset, rules.state)
    result.outcomes["feedback", "late" if late else "applied" if seen_at is None
                    else "replayed"] += 1
    if late:
        return state
    segment = state.profile.segment if state.profile else None
    changes, counted_after = contributions(event, segment, counted_before, rules.windows,
                                           rules.conventions, result.keys, rules.journey)
    already_in: dict[str, bool] = {}  # decided once per key: an answer may touch it twice
    for change in changes:
        key = partial_key(partition, change.dimension, change.window, change.start, change.key)
        partial = result.partials.get(key) or load_partial(key) or PartialTally()
        if already_in.setdefault(key, item.offset <= partial.offset):
            continue  # already in this tally (replay after a crash)
        tally = partial.tally.record(change.survey, change.score, rules.conventions, change.sign)
        result.partials[key] = PartialTally(tally=tally, offset=item.offset)
    if rules.conventions.score_basis == "latest_per_customer" and seen_at is None:
        state = state.model_copy(update={"counted": counted_after})
    return state


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
