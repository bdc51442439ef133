"""Output records: alerts on ``cx.alerts``.

Dead-letter records carry the original bytes unchanged; their metadata travels in Kafka
headers (see ``streams.deadletter``), so they have no JSON model.
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
    resolution: str | None = Field(default=None, description="How it was resolved.")
    notice_reason: str | None = Field(default=None, description="Why, on a follow-up.")
    notice_at: AwareDatetime | None = Field(default=None, description="When, on a follow-up.")
