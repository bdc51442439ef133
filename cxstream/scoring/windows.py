"""Event-time windows: tumbling, aligned to the Unix epoch (UTC), with a watermark.

Shape: an answer at event time t falls in window [start, start + size) of every window
size; the partition's watermark is the latest event time seen, and answers older than
watermark - allowed lateness are "late" (kept in customer state, not in group windows).
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field


class WindowSpec(BaseModel):
    """A window size, its name in the API, and how many past windows are kept."""

    model_config = ConfigDict(frozen=True)

    name: str
    seconds: int = Field(gt=0)
    retained: int = Field(ge=2)


def window_specs(long_window_days: int) -> tuple[WindowSpec, ...]:
    """hour (48 kept), day (62 kept) and the configured long window (8 kept)."""
    return (
        WindowSpec(name="hour", seconds=3_600, retained=48),
        WindowSpec(name="day", seconds=86_400, retained=62),
        WindowSpec(name=f"{long_window_days}d", seconds=long_window_days * 86_400, retained=8),
    )


def window_start(at: float, seconds: int) -> int:
    """Start (epoch seconds) of the window of ``seconds`` that contains ``at``."""
    return int(at // seconds * seconds)


def is_expired(start: int, spec: WindowSpec, watermark: float) -> bool:
    """True once ``retained`` newer windows have started before the watermark."""
    return start + spec.seconds * spec.retained <= watermark


def epoch(moment: datetime) -> float:
    return moment.timestamp()


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class Watermark(BaseModel):
    """Latest event time of a partition's answers, and the offset that last moved it."""

    model_config = ConfigDict(frozen=True)

    at: float = 0.0
    offset: int = -1

    def advance(self, occurred_at: float, record_timestamp: float, max_skew: float,
                offset: int) -> Watermark:
        """The watermark after an answer at ``offset``.

        An event time further ahead of the broker's record time than ``max_skew`` only
        moves the watermark up to record time + skew: one producer with a wrong clock must
        not make every other answer late.
        """
        bounded = min(occurred_at, record_timestamp + max_skew)
        return Watermark(at=max(self.at, bounded), offset=max(self.offset, offset))

    def is_late(self, occurred_at: float, allowed_lateness: float) -> bool:
        return occurred_at < self.at - allowed_lateness
