"""Input events: customer profiles, interactions and survey feedback.

Rules from the contract: UTF-8 JSON objects, unknown fields ignored, timestamps ISO 8601
with a UTC offset (normalised to UTC here), bounded strings, score ranges per survey.
Names such as channel, touchpoint and segment are 1-128 characters: they become group keys.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    model_validator,
)

Survey = Literal["nps", "csat", "ces"]
Outcome = Literal["success", "failure", "abandoned", "escalated"]

#: Inclusive score range of each survey type (CES: 7 = very easy).
SCORE_RANGES: dict[str, tuple[int, int]] = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}
MAX_TEXT_CHARS = 10_000


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00: before year 1 in UTC
        raise ValueError(f"{value.isoformat()} is out of range once in UTC") from None


Id = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Timestamp = Annotated[AwareDatetime, AfterValidator(_to_utc)]
FreeText = Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS)]
LanguageTag = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$", max_length=35)
]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=False)


class CustomerProfile(_Event):
    """A CRM profile; the latest ``updated_at`` per customer wins."""

    customer_id: Id
    segment: Name
    value: NonNegative
    owner: Name | None = None
    region: Name | None = None
    updated_at: Timestamp


class Interaction(_Event):
    """Something happened to a customer at a touchpoint."""

    event_id: Id
    customer_id: Id
    occurred_at: Timestamp
    channel: Name
    touchpoint: Name
    outcome: Outcome | None = None
    wait_seconds: NonNegative | None = None
    sentiment: Annotated[float, Field(ge=-1, le=1, allow_inf_nan=False)] | None = None
    text: FreeText | None = None
    amount: Finite | None = None
    #: the agent who handled it (optional)
    handled_by: Id | None = None


class Feedback(_Event):
    """A survey answer: one scored question and an optional comment."""

    event_id: Id
    customer_id: Id
    occurred_at: Timestamp
    survey: Survey
    # Strict: the contract says integer, so 9.5, "9" and true are refused.
    score: Annotated[int, Strict()]
    channel: Name
    touchpoint: Name
    comment: FreeText | None = None
    language: LanguageTag | None = None
    #: the agent who handled what the answer is about (optional): scores per agent
    handled_by: Id | None = None

    @model_validator(mode="after")
    def _score_in_survey_range(self) -> Feedback:
        low, high = SCORE_RANGES[self.survey]
        if not low <= self.score <= high:
            raise ValueError(
                f"score {self.score} is outside {self.survey} range {low}-{high}"
            )
        return self


InputEvent = CustomerProfile | Interaction | Feedback
