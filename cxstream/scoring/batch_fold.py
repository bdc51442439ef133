"""The fold on plain data: a batch's decisions, states and tallies, updated in place.

Its reference on the contract's pydantic models is testkit/reference/fold.py
(tests/unit/test_plain_core.py checks that both give the same results for any stream);
this is what a worker runs. One ``FoldBatch`` holds
what a batch of one partition changed: customers (plain ``Customer``), partial tallies as
the plain JSON values the partials table holds, the watermark and the outcome counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from cxstream.schemas.events import CustomerProfile, Feedback, Interaction
from cxstream.scoring.fold import FoldRules, SourcedEvent, partial_key
from cxstream.scoring.group_answers import answer_of, answers_key, keep_answer
from cxstream.scoring.groups import Contribution, GroupKeys, contributions
from cxstream.scoring.plain_customer import (
    Customer,
    PlainRules,
    apply_feedback,
    apply_interaction,
    apply_profile,
    to_us,
)
from cxstream.scoring.tallies import add_answer

#: the fields of a tally in the order the partials table holds them (Tally's), and those
#: that are floats once an answer is recorded (Tally validates them as floats)
TALLY_FIELDS = ("promoters", "passives", "detractors", "csat_n", "csat_satisfied",
                "csat_sum", "csat_sum_sq", "ces_n", "ces_easy", "ces_hard", "ces_sum",
                "ces_sum_sq")
FLOAT_FIELDS = ("csat_sum", "csat_sum_sq", "ces_sum", "ces_sum_sq")


def loaded_partial(stored: dict[str, Any] | None) -> dict[str, Any]:
    """A copy of a stored partial tally (or an empty one) to record answers into: its
    float fields as floats, as Tally validates them once an answer is recorded."""
    tally = dict.fromkeys(TALLY_FIELDS, 0) if stored is None else dict(stored["tally"])
    for name in FLOAT_FIELDS:
        tally[name] = float(tally[name])
    return {"tally": tally, "offset": -1 if stored is None else stored["offset"]}


class FoldBatch:
    """What one batch of one partition changed; ``fold`` applies one event."""

    def __init__(self, partition: int, rules: FoldRules, plain_rules: PlainRules,
                 stored_partials: Mapping[bytes, Any],
                 watermark: tuple[float, int], keys: GroupKeys | None) -> None:
        self.partition = partition
        self.rules = rules
        self.plain_rules = plain_rules
        #: the partial tallies' store (a table's, by encoded key)
        self.stored_partials = stored_partials
        self.watermark_at, self.watermark_offset = watermark
        self.keys = keys
        self.partials: dict[str, dict[str, Any]] = {}  # as loaded, then as moved
        self.moved: dict[str, None] = {}  # keys an answer moved, in order
        #: the recent answers of the groups an answer counted in (scoring.group_answers)
        self.answers: dict[str, list[list[Any]]] = {}
        self.outcomes: Counter[tuple[str, str]] = Counter()

    def fold(self, item: SourcedEvent, state: Customer) -> tuple[bool, bool]:
        """Apply ``item`` to ``state`` in place: (applied now, state changed)."""
        event = item.event
        if isinstance(event, CustomerProfile):
            self.outcomes["customer", "applied"] += 1
            return True, apply_profile(state, event)
        kind = "feedback" if isinstance(event, Feedback) else "interaction"
        delivery = state.delivery_of(kind, event.event_id, item.offset)
        if delivery == "duplicate":
            self.outcomes[kind, "duplicate"] += 1
            return False, False
        if isinstance(event, Interaction):
            if delivery == "replay":
                self.outcomes[kind, "replayed"] += 1
                return False, False
            self.outcomes[kind, "applied"] += 1
            apply_interaction(state, event, to_us(event.occurred_at), self.plain_rules)
            state.remember(kind, event.event_id, item.offset,
                           self.rules.state.seen_event_ids_kept)
            return True, True
        assert isinstance(event, Feedback)
        new = delivery == "new"
        self._fold_feedback(item, event, state, new)
        return new, new

    def _fold_feedback(self, item: SourcedEvent, event: Feedback, state: Customer,
                       new: bool) -> None:
        rules = self.rules
        occurred = event.occurred_at.timestamp()
        late = occurred < self.watermark_at - rules.allowed_lateness_seconds
        if item.offset > self.watermark_offset:
            bounded = min(occurred, item.record_time + rules.max_clock_skew_seconds)
            self.watermark_at = max(self.watermark_at, bounded)
            self.watermark_offset = item.offset
        counted_before = state.counted
        if new:
            apply_feedback(state, event, to_us(event.occurred_at), self.plain_rules)
            state.remember("feedback", event.event_id, item.offset,
                           rules.state.seen_event_ids_kept)
        self.outcomes["feedback", "late" if late else "applied" if new else "replayed"] += 1
        if late:
            return
        segment = state.profile[0] if state.profile else None
        changes, counted_after = contributions(event, segment, counted_before, rules.windows,
                                               rules.conventions, self.keys, rules.journey)
        already_in: dict[str, bool] = {}  # decided once per key: an answer may touch it twice
        for change in changes:
            key = partial_key(self.partition, change.dimension, change.window, change.start,
                              change.key)
            partial = self.partials.get(key)
            if partial is None:
                partial = self.partials[key] = loaded_partial(
                    self.stored_partials.get(key.encode()))
            if already_in.setdefault(key, item.offset <= partial["offset"]):
                continue  # already in this tally (replay after a crash)
            add_answer(partial["tally"], change.survey, change.score, rules.conventions,
                       change.sign)
            partial["offset"] = item.offset
            self.moved[key] = None
        if rules.conventions.score_basis == "latest_per_customer" and new:
            state.counted = counted_after
        if rules.state.group_answers_kept and changes:
            self._keep_answer(event, changes, rules.state.group_answers_kept)

    def _keep_answer(self, event: Feedback, changes: list[Contribution], kept: int) -> None:
        """The answer among the recent answers of every group it counts in."""
        answer = answer_of(event)
        groups = dict.fromkeys((change.dimension, change.key) for change in changes
                               if change.sign > 0 and "." not in change.dimension)
        for dimension, key in groups:
            ring_key = answers_key(self.partition, dimension, key)
            answers = self.answers.get(ring_key)
            if answers is None:
                answers = list(self.stored_partials.get(ring_key.encode()) or ())
            if keep_answer(answers, answer, kept):
                self.answers[ring_key] = answers

    def changed_partials(self) -> dict[str, dict[str, Any]]:
        """The partial tallies an answer moved (a key only read stays unwritten)."""
        return {key: self.partials[key] for key in self.moved}

    def watermark(self) -> dict[str, Any]:
        return {"at": self.watermark_at, "offset": self.watermark_offset}
