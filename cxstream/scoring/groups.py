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
#: the parts a group's change is split across (scoring.drivers): a group of a dimension
#: is also tallied by each dimension named here, in the windows of DRIVER_WINDOWS, as the
#: "part dimension" "<dimension>.<by>" with the key ``part_key(group, part)``
BY: dict[str, tuple[str, ...]] = {
    "segment": ("touchpoint", "channel", "stage"), "channel": ("touchpoint", "stage"),
    "stage": ("touchpoint", "channel"), "touchpoint": ("channel",), "agent": ("touchpoint",)}
PART_DIMENSIONS = tuple(f"{dimension}.{by}" for dimension, bys in BY.items() for by in bys)
#: every dimension of the partials table, with the group keys a partition admits
KEYED_DIMENSIONS = DIMENSIONS + PART_DIMENSIONS
DRIVER_WINDOWS = ("day",)
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

    def cap_of(self, dimension: str) -> int:
        """A part dimension admits half as many keys: each holds two names, and the list
        of a dimension's keys must stay under the producer's request limit."""
        return self.cap if "." not in dimension else max(1, self.cap // 2)

    def key(self, dimension: str, key: str) -> str:
        known = self.admitted.setdefault(dimension, {})
        if key in known:
            return key
        if len(known) < self.cap_of(dimension):
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


def part_dimension(dimension: str, by: str) -> str:
    """The part dimension of ``dimension``'s groups by ``by`` ("segment.touchpoint": no
    "/", so it names a URL path segment)."""
    return f"{dimension}.{by}"


def part_key(group: str, part: str) -> str:
    """A group's key and one of its parts in one key, unambiguous whatever the names
    hold: the group's length first ("3:smbdelivery")."""
    return f"{len(group)}:{group}{part}"


def parse_part_key(raw: str) -> tuple[str, str]:
    length, rest = raw.split(":", 1)
    return rest[:int(length)], rest[int(length):]


def with_parts(groups: tuple[tuple[str, str], ...], keys: GroupKeys | None
               ) -> tuple[tuple[str, str], ...]:
    """``groups`` and the part groups they make (BY): the same answer in
    "segment.touchpoint" under part_key(segment, touchpoint), and so on; a part past the
    cap of its part dimension counts as the group's OTHER_KEY part, so a group's parts
    always hold all of its answers."""
    named = dict(groups)
    found = list(groups)
    for dimension, key in groups:
        for by in BY.get(dimension, ()):
            part = named.get(by)
            if part is None:
                continue
            name, composite = part_dimension(dimension, by), part_key(key, part)
            if keys is not None and keys.key(name, composite) == OTHER_KEY:
                composite = part_key(key, OTHER_KEY)
            found.append((name, composite))
    return tuple(found)


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
    parted: tuple[tuple[str, str], ...] | None = None  # made once, if a window needs them
    at = event.occurred_at.timestamp()
    changes: list[Contribution] = []
    after = {name: dict(per_survey) for name, per_survey in counted.items()}
    for spec in specs:
        start = window_start(at, spec.seconds)
        adding = groups
        if spec.name in DRIVER_WINDOWS:
            adding = parted = parted or with_parts(groups, keys)
        if conventions.score_basis == "all_answers":
            changes += _adds(adding, spec.name, start, event.survey, event.score, 1)
            continue
        previous = after.get(spec.name, {}).get(event.survey)
        if previous is not None and (previous.start > start or (
                previous.start == start and event.occurred_at < previous.at)):
            continue  # an older answer than the one that counts: superseded
        if previous is not None and previous.start == start:
            retracted = previous.groups if spec.name not in DRIVER_WINDOWS else with_parts(
                previous.groups, keys)  # the same part keys: admitted keys stay admitted
            changes += _adds(retracted, spec.name, start, event.survey, previous.score, -1)
        changes += _adds(adding, spec.name, start, event.survey, event.score, 1)
        after.setdefault(spec.name, {})[event.survey] = Counted(
            start=start, score=event.score, at=event.occurred_at, groups=groups)
    return changes, after


def _adds(groups: tuple[tuple[str, str], ...], window: str, start: int, survey: str,
          score: int, sign: int) -> list[Contribution]:
    return [Contribution(dimension, key, window, start, survey, score, sign)
            for dimension, key in groups]
