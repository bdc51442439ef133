"""Which group windows an answer counts in, per the score-basis convention.

Shape: (answer, customer's segment, what was counted for them before)
       -> [Contribution(dimension, key, window, start, survey, score, sign)], counted after
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict

from cxstream.schemas.events import Feedback
from cxstream.scoring.conventions import Conventions
from cxstream.scoring.journey import Journey
from cxstream.scoring.windows import WindowSpec, window_start

DIMENSIONS = ("segment", "channel", "touchpoint", "stage", "agent")
UNKNOWN_SEGMENT = "unknown"
#: where answers of keys beyond the cap of a dimension count (not a valid name: names
#: from the contract are 1-128 characters, this one is reserved by its parentheses)
OTHER_KEY = "(other)"


class GroupKeys:
    """The group keys one partition admits, per dimension, up to ``cap`` each: the first
    ``cap`` distinct keys in the partition's order of answers. An answer of any other key
    counts under OTHER_KEY, so tallies, windows and metric series stay bounded whatever
    producers send. Plain data: kept beside the partition's tallies."""

    __slots__ = ("admitted", "cap", "changed", "overflow")

    def __init__(self, cap: int, admitted: dict[str, list[str]] | None = None) -> None:
        self.cap = cap
        self.admitted: dict[str, dict[str, None]] = {
            dimension: dict.fromkeys(keys) for dimension, keys in (admitted or {}).items()}
        self.changed: set[str] = set()
        self.overflow: dict[str, int] = {}

    def key(self, dimension: str, key: str) -> str:
        known = self.admitted.setdefault(dimension, {})
        if key in known:
            return key
        if len(known) < self.cap:
            known[key] = None
            self.changed.add(dimension)
            return key
        self.overflow[dimension] = self.overflow.get(dimension, 0) + 1
        return OTHER_KEY

    def keys_of(self, dimension: str) -> list[str]:
        return list(self.admitted.get(dimension, {}))


class Contribution(NamedTuple):  # a tuple: built for every answer, window and group
    dimension: str
    key: str
    window: str
    start: int
    survey: str
    score: int
    sign: int


class Counted(BaseModel):
    """The answer that counts for a customer in a window (latest_per_customer only)."""

    model_config = ConfigDict(frozen=True)

    start: int
    score: int
    at: datetime
    groups: tuple[tuple[str, str], ...]


#: window name -> survey -> the answer counted in the customer's latest window
CountedAnswers = dict[str, dict[str, Counted]]


def group_keys(event: Feedback, segment: str | None,
               keys: GroupKeys | None = None, journey: Journey | None = None
               ) -> tuple[tuple[str, str], ...]:
    """(dimension, key) of every group the answer belongs to (capped by ``keys``): its
    segment, channel and touchpoint, the touchpoint's journey stage (with ``journey``)
    and the agent who handled it (if the answer says)."""
    groups: tuple[tuple[str, str], ...] = (
        ("segment", segment or UNKNOWN_SEGMENT), ("channel", event.channel),
        ("touchpoint", event.touchpoint))
    if journey is not None:
        groups += (("stage", journey.stage_of(event.touchpoint)),)
    if event.handled_by is not None:
        groups += (("agent", event.handled_by),)
    if keys is None:
        return groups
    return tuple((dimension, keys.key(dimension, key)) for dimension, key in groups)


def contributions(
    event: Feedback,
    segment: str | None,
    counted: CountedAnswers,
    specs: tuple[WindowSpec, ...],
    conventions: Conventions,
    keys: GroupKeys | None = None,
    journey: Journey | None = None,
) -> tuple[list[Contribution], CountedAnswers]:
    """The tally changes an answer makes, and what is counted for the customer afterwards."""
    groups = group_keys(event, segment, keys, journey)
    at = event.occurred_at.timestamp()
    changes: list[Contribution] = []
    after = {name: dict(per_survey) for name, per_survey in counted.items()}
    for spec in specs:
        start = window_start(at, spec.seconds)
        if conventions.score_basis == "all_answers":
            changes += _adds(groups, spec.name, start, event.survey, event.score, 1)
            continue
        previous = after.get(spec.name, {}).get(event.survey)
        if previous is not None and (previous.start > start or (
                previous.start == start and event.occurred_at < previous.at)):
            continue  # an older answer than the one that counts: superseded
        if previous is not None and previous.start == start:
            changes += _adds(previous.groups, spec.name, start, event.survey, previous.score, -1)
        changes += _adds(groups, spec.name, start, event.survey, event.score, 1)
        after.setdefault(spec.name, {})[event.survey] = Counted(
            start=start, score=event.score, at=event.occurred_at, groups=groups)
    return changes, after


def _adds(groups: tuple[tuple[str, str], ...], window: str, start: int, survey: str,
          score: int, sign: int) -> list[Contribution]:
    return [Contribution(dimension, key, window, start, survey, score, sign)
            for dimension, key in groups]
