"""Input events: customer profiles, interactions and survey feedback.

Rules from the contract: UTF-8 JSON objects, unknown fields ignored, timestamps ISO 8601
with a UTC offset (normalised to UTC here), bounded strings, score ranges per survey.
Names such as channel, touchpoint and segment are 1-128 characters: they become group keys.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    WithJsonSchema,
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


#: an RFC 3339 date-time (the JSON Schema's "date-time"): date, "T", hours, minutes and
#: seconds, optional fraction, "Z" or an offset; tests/unit/test_contract_schemas.py
#: checks that a JSON Schema validator and the models agree on a corpus
TIMESTAMP_PATTERN = (r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?"
                     r"([Zz]|[+-]\d{2}:\d{2})$")
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)


def _iso_text(value: object) -> object:
    """The contract's timestamps are RFC 3339 strings: a number (epoch seconds), a time
    without seconds or a space for the "T", all of which pydantic would take, are
    refused, as the JSON Schema refuses them."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _TIMESTAMP.match(value):
        raise ValueError("an RFC 3339 time with a UTC offset, e.g. 2026-11-23T10:00:00+00:00")
    return value
Id = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Timestamp = Annotated[
    AwareDatetime, BeforeValidator(_iso_text), AfterValidator(_to_utc),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN,
                    "description": "ISO 8601 with a UTC offset (Z or +hh:mm)"})]
FreeText = Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS)]
LanguageTag = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$", max_length=35)
]
# Strict: the contract says number, so "100" is refused (an integer is a number)
NonNegative = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]
Finite = Annotated[float, Strict(), Field(allow_inf_nan=False)]


class _Event(BaseModel):
    # fields the contract does not name are accepted, kept out of state and counted
    # (streams.ingest.unknown_fields): a producer may add fields before cxstream knows them
    model_config = ConfigDict(extra="allow", frozen=True, str_strip_whitespace=False)


class CustomerProfile(_Event):
    """A CRM profile; the latest ``updated_at`` per customer wins."""

    customer_id: Id = Field(description="The customer; also the message key.")
    segment: Name = Field(description="The customer's segment (e.g. enterprise, smb).")
    value: NonNegative = Field(description="What the customer is worth (e.g. yearly "
                                           "revenue); decides the high-value band.")
    owner: Name | None = Field(default=None, description="The account manager who gets "
                                                         "this customer's alerts.")
    region: Name | None = Field(default=None, description="Region or country code; picks "
                                                          "the survey language.")
    updated_at: Timestamp = Field(description="When the CRM changed the profile.")


class Interaction(_Event):
    """Something happened to a customer at a touchpoint."""

    event_id: Id = Field(description="Unique per interaction: a resend is a duplicate.")
    customer_id: Id = Field(description="The customer; also the message key.")
    occurred_at: Timestamp = Field(description="When it happened (event time).")
    channel: Name = Field(description="store, web, app, phone, chat, email, social, ...")
    touchpoint: Name = Field(description="Where in the journey: delivery, support, "
                                         "checkout, billing, ...")
    outcome: Outcome | None = Field(default=None, description="How it ended.")
    wait_seconds: NonNegative | None = Field(default=None,
                                             description="How long the customer waited.")
    sentiment: Annotated[float, Strict(), Field(ge=-1, le=1, allow_inf_nan=False)] | None \
        = Field(default=None, description="-1 (negative) to 1 (positive), if scored.")
    text: FreeText | None = Field(default=None, description="What the customer wrote or "
                                                            "said (a post, a chat).")
    amount: Finite | None = Field(default=None, description="Money involved, if any.")
    handled_by: Id | None = Field(default=None, description="The agent who handled it: "
                                                            "scores per agent.")


class Feedback(_Event):
    """A survey answer: one scored question and an optional comment."""

    model_config = ConfigDict(json_schema_extra=lambda schema: _score_ranges(schema))

    event_id: Id = Field(description="Unique per answer: a resend is a duplicate.")
    customer_id: Id = Field(description="The customer; also the message key.")
    occurred_at: Timestamp = Field(description="When the customer answered (event time).")
    survey: Survey = Field(description="nps (0-10), csat (1-5) or ces (1-7, 7 = very "
                                       "easy).")
    # Strict: the contract says integer, so 9.5, "9" and true are refused.
    score: Annotated[int, Strict()] = Field(description="The answer, in the survey's range.")
    channel: Name = Field(description="Where the survey was answered.")
    touchpoint: Name = Field(description="What the answer is about.")
    comment: FreeText | None = Field(default=None, description="Free text, any language.")
    language: LanguageTag | None = Field(default=None,
                                         description="BCP 47 tag of the comment (en, lt).")
    handled_by: Id | None = Field(default=None, description="The agent who handled what "
                                                            "the answer is about.")

    @model_validator(mode="after")
    def _score_in_survey_range(self) -> Feedback:
        low, high = SCORE_RANGES[self.survey]
        if not low <= self.score <= high:
            raise ValueError(
                f"score {self.score} is outside {self.survey} range {low}-{high}"
            )
        return self


def _score_ranges(schema: dict[str, object]) -> None:
    """The JSON Schema's per-survey score ranges (the model's own check is
    ``_score_in_survey_range``)."""
    schema["allOf"] = [
        {"if": {"properties": {"survey": {"const": survey}}, "required": ["survey"]},
         "then": {"properties": {"score": {"minimum": low, "maximum": high}}}}
        for survey, (low, high) in SCORE_RANGES.items()]


InputEvent = CustomerProfile | Interaction | Feedback
