"""The batch recomputation agrees with the stream fold on any input, split any way."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cxstream.schemas.events import CustomerProfile, Feedback
from cxstream.schemas.parsing import InputKind, parse_input
from cxstream.scoring.conventions import Conventions
from cxstream.scoring.customer import StateRules
from cxstream.scoring.fold import (
    FoldRules,
    PartialTally,
    SourcedEvent,
    parse_partial_key,
)
from cxstream.scoring.recompute import GroupTallies, RawInput, recompute
from cxstream.scoring.tallies import Tally
from cxstream.scoring.windows import Watermark, window_specs
from testkit.reference.fold import fold_batch

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
KINDS = {"fb": InputKind.FEEDBACK, "cu": InputKind.CUSTOMER, "ix": InputKind.INTERACTION}


def rules(basis: str) -> FoldRules:
    return FoldRules(state=StateRules(), conventions=Conventions(score_basis=basis),  # type: ignore[arg-type]
                     windows=window_specs(7), allowed_lateness_seconds=2 * 3_600,
                     max_clock_skew_seconds=300)


answer_strategy = st.tuples(
    st.sampled_from(["c1", "c2", "c3"]),          # customer
    st.integers(0, 12),                            # event id (repeats are resends)
    st.sampled_from(["nps", "csat", "ces"]),
    st.integers(1, 5),                             # score (valid for every survey)
    st.integers(-300, 300),                        # minutes from T0 (out of order, late)
    st.sampled_from(["web", "phone"]),
)


def to_inputs(answers: list[tuple[Any, ...]]) -> list[RawInput]:
    inputs = [RawInput("cu", 0, 0, T0.timestamp() - 10, b"c1",
                       json.dumps({"customer_id": "c1", "segment": "enterprise", "value": 5,
                                   "updated_at": T0.isoformat()}).encode())]
    for offset, (customer, event_id, survey, score, minutes, channel) in enumerate(answers):
        at = T0 + timedelta(minutes=minutes)
        value = {"event_id": f"e{event_id}", "customer_id": customer, "occurred_at": at.isoformat(),
                 "survey": survey, "score": score, "channel": channel, "touchpoint": "support"}
        inputs.append(RawInput("fb", 0, offset, T0.timestamp() + 6 * 3_600 + offset,
                               customer.encode(),
                               json.dumps(value).encode()))
    return inputs


def stream_fold(inputs: list[RawInput], cuts: list[int], fold_rules: FoldRules) -> GroupTallies:
    states: dict[str, Any] = {}
    partials: dict[str, PartialTally] = {}
    watermark = Watermark()
    sourced = []
    for raw in inputs:
        event = parse_input(KINDS[raw.topic], raw.key, raw.value, 65_536)
        assert isinstance(event, Feedback | CustomerProfile)
        sourced.append(SourcedEvent(event, raw.offset, raw.timestamp))
    bounds = sorted({0, len(sourced), *[c % (len(sourced) + 1) for c in cuts]})
    for start, end in itertools.pairwise(bounds):
        result = fold_batch(0, sourced[start:end], states.get, partials.get, watermark,
                            fold_rules)
        states.update(result.states)
        partials.update(result.partials)
        watermark = result.watermark
    merged: GroupTallies = {}
    for key, partial in partials.items():
        _, dimension, window, slot_start, group = parse_partial_key(key)
        if not partial.tally.is_empty:
            merged[(dimension, window, slot_start, group)] = partial.tally
    return merged


@settings(max_examples=150, deadline=None)
@given(st.lists(answer_strategy, max_size=40), st.lists(st.integers(0, 100), max_size=5),
       st.sampled_from(["all_answers", "latest_per_customer"]))
def test_batch_recomputation_equals_the_stream_fold(
    answers: list[tuple[Any, ...]], cuts: list[int], basis: str
) -> None:
    inputs = to_inputs(answers)
    fold_rules = rules(basis)
    assert recompute(inputs, KINDS, 65_536, fold_rules) == stream_fold(inputs, cuts, fold_rules)


def test_known_set_by_hand() -> None:
    answers = [("c1", 1, "nps", 5, 0, "web"), ("c1", 1, "nps", 5, 0, "web"),  # resend
               ("c2", 2, "nps", 5, 200, "web"), ("c2", 3, "nps", 1, 0, "web")]  # 3 h late
    tallies = recompute(to_inputs(answers), KINDS, 65_536, rules("all_answers"))
    day = int(T0.timestamp() // 86_400 * 86_400)
    assert tallies[("segment", "day", day, "enterprise")] == Tally(detractors=1)
    assert tallies[("segment", "day", day, "unknown")] == Tally(detractors=1)
    assert tallies[("channel", "day", day, "web")] == Tally(detractors=2)
