"""Pydantic v2 models of the event contract (docs/contract.md, version 1)."""

from cxstream.schemas.events import (
    CustomerProfile,
    Feedback,
    InputEvent,
    Interaction,
    Outcome,
    Survey,
)
from cxstream.schemas.outputs import Alert, Severity

__all__ = [
    "Alert",
    "CustomerProfile",
    "Feedback",
    "InputEvent",
    "Interaction",
    "Outcome",
    "Severity",
    "Survey",
]
