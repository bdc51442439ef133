"""The rules file's ``surveys`` section: the triggers, the fatigue rules and the limits
of what is remembered per customer (alerts.surveys decides with them)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SurveyName = Literal["nps", "csat", "ces"]
OutcomeName = Literal["success", "failure", "abandoned", "escalated"]
DAY_US = 86_400 * 1_000_000
HOUR_US = 3_600 * 1_000_000
MINUTE_US = 60 * 1_000_000
#: at most this many answers and failures remembered per customer (each list is also
#: pruned by time)
KEPT = 16
#: decisions kept per customer for the API (newest last)
DECISIONS_KEPT = 10
#: requests sent remembered per customer, newest kept (they are also forgotten by time;
#: with the shipped windows, at most 33 fit in the horizon)
SENT_KEPT = 64
#: the longest a trigger's name may be
TRIGGER_NAME_CHARS = 64

#: why a request was not sent (the metric's ``reason`` label and the API's)
Reason = Literal["segment_opted_out", "trigger_interval", "recently_surveyed",
                 "recently_surveyed_any", "recently_answered", "open_alert",
                 "recent_failure", "predicted_first", "expired"]


class SurveyTrigger(BaseModel):
    """Interactions that call for a survey: those of ``touchpoints``, ``channels`` and
    ``outcomes`` (an empty list: any; an interaction without an outcome matches only an
    empty ``outcomes``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=TRIGGER_NAME_CHARS, pattern=r"^[a-z0-9_-]+$")
    survey: SurveyName
    touchpoints: list[str] = []
    channels: list[str] = []
    outcomes: list[OutcomeName] = []
    #: the trigger fires at most once per customer in this many days (null: no own limit)
    every_days: float | None = Field(default=None, gt=0)
    #: a request may still be sent this long after its interaction
    valid_hours: float = Field(default=72, gt=0, le=30 * 24)

    def matches(self, touchpoint: str, channel: str, outcome: str | None) -> bool:
        return ((not self.touchpoints or touchpoint in self.touchpoints)
                and (not self.channels or channel in self.channels)
                and (not self.outcomes or outcome in self.outcomes))


class AfterFailure(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: a failed or abandoned interaction this recently before the trigger ...
    minutes: float = Field(default=60, ge=0)
    #: ... defers the request until that long after the failure, or drops it
    action: Literal["later", "skip"] = "later"


class SegmentCaps(BaseModel):
    """A segment's own fatigue windows (unset: the general ones)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    per_survey_days: dict[SurveyName, float] = {}
    any_survey_days: float | None = Field(default=None, ge=0)


class Fatigue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: no request of a survey this near another request or an answer of the same survey
    per_survey_days: dict[SurveyName, float] = {"nps": 90, "csat": 14, "ces": 14}
    #: no request at all this near any other request or answer
    any_survey_days: float = Field(default=3, ge=0)
    #: a customer with an open alert (the owner is in touch): drop, or wait until closed
    open_alert: Literal["skip", "later"] = "skip"
    after_failure: AfterFailure = AfterFailure()
    segments: dict[str, SegmentCaps] = {}

    @model_validator(mode="after")
    def _windows_not_negative(self) -> Fatigue:
        for where, windows in [("per_survey_days", self.per_survey_days)] + [
                (f"segments.{name}.per_survey_days", caps.per_survey_days)
                for name, caps in self.segments.items()]:
            for survey, days in windows.items():
                if days < 0:
                    raise ValueError(f"{where}.{survey}: a window is not negative")
        return self


class PredictedFirst(BaseModel):
    """Ask predicted detractors first: with a prediction model (CXSTREAM_MODEL_FILE), a
    request the fatigue rules allow goes out at once for a customer predicted at least
    ``min_probability`` likely to answer low, and waits ``others_wait_hours`` for everyone
    else (then the fatigue rules decide again; a request past its trigger's valid_hours
    expires). Without a model nobody is predicted: every request waits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_probability: float = Field(default=0.5, gt=0, lt=1)
    others_wait_hours: float = Field(default=24, gt=0, le=30 * 24)


class Surveys(BaseModel):
    """The rules file's ``surveys`` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    triggers: list[SurveyTrigger] = [
        SurveyTrigger(name="delivery-csat", survey="csat", touchpoints=["delivery"],
                      outcomes=["success"], valid_hours=72),
        SurveyTrigger(name="support-ces", survey="ces", touchpoints=["support"],
                      outcomes=["success", "escalated"], valid_hours=48),
        SurveyTrigger(name="relationship-nps", survey="nps", every_days=90,
                      valid_hours=168),
    ]
    fatigue: Fatigue = Fatigue()
    #: ask predicted detractors first (None: everyone alike)
    predicted_first: PredictedFirst | None = None
    #: region -> language of a customer who never answered with one
    region_languages: dict[str, str] = {}
    default_language: str = Field(default="en", min_length=2, max_length=35)
    #: how often deferred requests are looked at again
    check_every_seconds: float = Field(default=30, gt=0, le=3_600)

    @model_validator(mode="after")
    def _unique_names(self) -> Surveys:
        names = [trigger.name for trigger in self.triggers]
        doubles = sorted({name for name in names if names.count(name) > 1})
        if doubles:
            raise ValueError(f"triggers: names used twice: {', '.join(doubles)}")
        return self

    def horizon_us(self) -> int:
        """How long a remembered request, answer or failure can still matter: the
        longest window plus the longest a request may wait to be sent."""
        windows = [*self.fatigue.per_survey_days.values(), self.fatigue.any_survey_days]
        for caps in self.fatigue.segments.values():
            windows += [*caps.per_survey_days.values(), caps.any_survey_days or 0]
        windows += [trigger.every_days or 0 for trigger in self.triggers]
        waits = [trigger.valid_hours for trigger in self.triggers] or [0]
        return int(max(max(windows) * DAY_US, self.fatigue.after_failure.minutes * MINUTE_US)
                   + max(waits) * HOUR_US)
