"""The alert rules' state of one customer: the alerts whose cooldown has not ended.

It is kept in the customer's record (``CustomerState.alerts``, plain JSON data) so that a
single changelog write holds a customer's events and the cooldowns they set: no crash can
separate them. Only this module reads or writes it.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from cxstream.scoring.customer import CustomerState


class OpenAlert(BaseModel):
    """An alert raised for the customer whose cooldown has not ended (event time)."""

    model_config = ConfigDict(frozen=True)

    alert_id: str
    rule: str
    severity: str
    until: datetime
    occurrences: int = 1
    first_event_time: datetime
    created_at: datetime


def open_alerts(state: CustomerState) -> dict[str, OpenAlert]:
    """Rule -> the customer's open alert of that rule."""
    return {rule: OpenAlert.model_validate(alert)
            for rule, alert in state.alerts.get("open", {}).items()}


def with_open_alerts(state: CustomerState, alerts: dict[str, OpenAlert]) -> CustomerState:
    return state.model_copy(update={"alerts": {
        **state.alerts, "open": {rule: alert.model_dump(mode="json")
                                 for rule, alert in alerts.items()}}})
