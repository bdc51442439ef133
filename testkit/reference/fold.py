"""The reference fold on the contract's pydantic models: the product's plain-data core
(alerts.customer_core, scoring.batch_fold) must give the same states, tallies, watermark and
outcome counts for any stream (tests/unit/test_plain_core.py). Kept here, not in the
product: a rule changes in the product first, and this reference follows it in the same
change, checked by those tests.

Shape: [SourcedEvent] (offset order per topic) + current state -> FoldResult with only what
changed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cxstream.schemas.events import CustomerProfile, Feedback, Interaction
from cxstream.scoring.customer import (
    CustomerState,
    apply_feedback,
    apply_interaction,
    apply_profile,
    remember,
)
from cxstream.scoring.fold import FoldRules, PartialTally, SourcedEvent, partial_key
from cxstream.scoring.groups import GroupKeys, contributions
from cxstream.scoring.windows import Watermark


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
