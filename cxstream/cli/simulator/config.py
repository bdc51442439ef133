"""What to simulate (``SimConfig``), checked field by field, and the demo's company
(``DEMO_HISTORY``); cli.simulator.generator makes the records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class SimConfig(BaseModel):
    """What to simulate; invalid values are refused with the field's name."""

    model_config = ConfigDict(frozen=True)

    customers: int = Field(default=2000, ge=50, le=5_000_000)
    rate: float = Field(default=40.0, gt=0, le=1_000_000, description="live events/s")
    duration: float = Field(default=180.0, gt=0, le=30 * 86_400, description="seconds")
    seed: int = 7
    start: AwareDatetime | None = None
    history_days: int = Field(default=7, ge=0, le=366)
    history_per_day: int = Field(default=400, ge=0, le=10_000_000)
    malformed_share: float = Field(default=0.02, ge=0, le=0.5)
    incidents: bool = True
    propensity: bool = Field(
        default=False, description="give each customer a hidden trait that makes their "
                                   "interactions fail and their answers low "
                                   "(simulator.propensity: the prediction model's truth)")
    daily_rhythm: bool = Field(
        default=True, description="shape the traffic by the hour of day (off: a flat rate, "
                                  "the same records whatever the hour the run starts)")
    history_until: Literal["start", "midnight"] = Field(
        default="start", description="where the history ends: at the live start, or at "
                                     "the midnight (UTC) before it, so that the day "
                                     "windows hold a whole day of history and the live "
                                     "run alone, whatever the hour the run starts")

    def history_gap(self, start: datetime) -> timedelta:
        """From the history's end to the live start."""
        if self.history_until == "start":
            return timedelta(0)
        return start - start.astimezone(UTC).replace(hour=0, minute=0, second=0,
                                                     microsecond=0)


#: the demo's company (cxstream demo and its tests): a flat rate, and a history whose
#: yesterday gives every segment's touchpoints enough answers for the drivers of a drop
#: to be named (drivers.min_answers), ending at midnight: the same story at any hour
DEMO_HISTORY: dict[str, Any] = {"daily_rhythm": False, "history_until": "midnight",
                                "history_days": 2, "history_per_day": 6_000}
