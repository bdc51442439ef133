"""Which group windows an answer counts in, per the score-basis convention.

Shape: (answer, customer's segment, what was counted for them before)
       -> [Contribution(dimension, key, window, start, survey, score, sign)], counted after
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict

from schemas.events import Feedback
from scoring.conventions import Conventions
from scoring.windows import WindowSpec, window_start

DIMENSIONS = ("segment", "channel", "touchpoint")
UNKNOWN_SEGMENT = "unknown"


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


def group_keys(event: Feedback, segment: str | None) -> tuple[tuple[str, str], ...]:
    """(dimension, key) of every group the answer belongs to."""
    return (("segment", segment or UNKNOWN_SEGMENT), ("channel", event.channel),
            ("touchpoint", event.touchpoint))


def contributions(
    event: Feedback,
    segment: str | None,
    counted: CountedAnswers,
    specs: tuple[WindowSpec, ...],
    conventions: Conventions,
) -> tuple[list[Contribution], CountedAnswers]:
    """The tally changes an answer makes, and what is counted for the customer afterwards."""
    groups = group_keys(event, segment)
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
