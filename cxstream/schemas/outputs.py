"""Output records: alerts on ``cx.alerts``, alert cases on ``cx.alert-lifecycle``, survey
requests on ``cx.survey-requests``.

Dead-letter records carry the original bytes unchanged; their metadata travels in Kafka
headers (see ``streams.ingest.deadletter_record``), so they have no JSON model.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Severity = Literal["info", "warning", "critical"]
AlertStatus = Literal["open", "acknowledged", "resolved"]


class Alert(BaseModel):
    """One alert: who, why, what to do it with, and where it is routed."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    alert_id: str = Field(min_length=1, max_length=128,
                          description="Deterministic for the same cause (rule, subject, cause).")
    rule: str = Field(min_length=1, max_length=64)
    severity: Severity
    customer_id: str | None = Field(default=None, description="null for group alerts")
    segment: str | None = None
    owner: str = Field(min_length=1, description="Who receives the alert.")
    summary: str = Field(min_length=1, description="One human sentence.")
    reason: dict[str, Any] = Field(description="The figures that made the rule fire.")
    context: dict[str, Any] = Field(
        description="Customer value, quadrant, recent interactions and scores, the comment."
    )
    status: AlertStatus = "open"
    occurrences: int = Field(default=1, ge=1,
                             description="Triggers folded into this alert by the cooldown.")
    event_time: AwareDatetime
    created_at: AwareDatetime
    act_by: datetime | None = Field(default=None,
                                    description="When someone should have acted.")
    team: str | None = Field(default=None, description="The team the alert is routed to.")
    notice: Literal["escalated", "resolved"] | None = Field(
        default=None, description="Set on a follow-up message: the alert escalated (a "
        "deadline passed) or was resolved; null on the messages that raise it.")
    escalations: int = Field(default=0, ge=0, description="Times a deadline passed.")
    resolutions: int = Field(default=0, ge=0, description="Times the alert was resolved, "
                             "this resolution included (a reopened alert resolves again).")
    resolution: str | None = Field(default=None, description="How it was resolved.")
    notice_reason: str | None = Field(default=None, description="Why, on a follow-up.")
    notice_at: AwareDatetime | None = Field(default=None, description="When, on a follow-up.")


CaseStatus = Literal["open", "acknowledged", "snoozed", "resolved"]
Action = Literal["raised", "updated", "reopened", "acknowledged", "assigned", "noted",
                 "snoozed", "woke", "resolved", "escalated", "auto_resolved", "redacted"]


class Change(BaseModel):
    """One entry of a case's history: what was done, by whom, when and why."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    action: Action
    actor: str
    at: AwareDatetime
    reason: str | None = None
    details: dict[str, Any] = {}


class AlertCase(BaseModel):
    """An alert as the support team works it (the value of the lifecycle topic)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    alert: Alert = Field(description="The latest alert message the pipeline raised.")
    status: CaseStatus = "open"
    severity: Severity = Field(description="The alert's severity after escalations.")
    team: str = Field(description="The team the alert is routed to (escalations move it).")
    owner: str = Field(description="Who has it: the routed owner, an assignee, or the "
                                   "escalation target.")
    escalations: int = 0
    act_by: AwareDatetime | None = None
    resolve_by: AwareDatetime | None = None
    snoozed_until: AwareDatetime | None = None
    snoozed_from: CaseStatus | None = None
    acknowledged_at: AwareDatetime | None = None
    resolved_at: AwareDatetime | None = None
    resolution: str | None = None
    updated_at: AwareDatetime
    history: tuple[Change, ...] = ()

    @property
    def alert_id(self) -> str:
        return self.alert.alert_id

    @property
    def last_change(self) -> Change:
        return self.history[-1]

    @property
    def is_open(self) -> bool:
        return self.status != "resolved"

    def deadline(self) -> datetime | None:
        """The deadline that applies now (None while snoozed or resolved)."""
        if self.status == "open":
            return self.act_by
        if self.status == "acknowledged":
            return self.resolve_by
        return None


SurveyKind = Literal["nps", "csat", "ces"]


class SurveyRequest(BaseModel):
    """A survey to send, on ``cx.survey-requests`` keyed by customer id: for the survey
    tool, which sends one per ``request_id``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    request_id: str = Field(min_length=1, max_length=128, description=(
        "Deterministic for the same customer, trigger and interaction: a repeat is the "
        "same request."))
    customer_id: str = Field(min_length=1, max_length=128)
    survey: SurveyKind
    trigger: str = Field(min_length=1, max_length=64,
                         description="The rules file's trigger that asked for it.")
    cause_event_id: str = Field(min_length=1, max_length=128,
                                description="The interaction that caused it.")
    cause_touchpoint: str
    cause_channel: str
    cause_at: AwareDatetime = Field(description="The interaction's event time.")
    cause_handled_by: str | None = Field(
        default=None, description="The agent who handled the interaction, if it says: an "
        "answer that gives it back as handled_by counts for that agent.")
    language: str = Field(min_length=2, max_length=35)
    language_source: Literal["last_answer", "region", "default"] = Field(
        description="Where the language comes from: the customer's latest answer, their "
        "region (the rules file's region_languages) or the default.")
    segment: str | None = None
    requested_at: AwareDatetime = Field(
        description="When it was decided (the interaction's time, or the clock's for a "
        "request that waited).")
    valid_until: AwareDatetime = Field(description="Not worth sending after this.")
    waited_for: Literal["open_alert", "recent_failure", "predicted_first"] | None = Field(
        default=None, description="Why it waited before being sent, if it did "
                                  "(predicted_first: predicted detractors were asked first).")
