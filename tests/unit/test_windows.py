"""Window starts, expiry and the watermark."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from cxstream.scoring.windows import Watermark, is_expired, window_specs, window_start

DAY = 86_400


def test_windows_are_hour_day_and_the_configured_long_one() -> None:
    names = [spec.name for spec in window_specs(30)]
    assert names == ["hour", "day", "30d"]
    assert window_specs(7)[2].seconds == 7 * DAY


def test_day_windows_start_at_utc_midnight() -> None:
    at = datetime(2026, 11, 23, 23, 59, 59, tzinfo=UTC).timestamp()
    assert window_start(at, DAY) == datetime(2026, 11, 23, tzinfo=UTC).timestamp()
    assert window_start(at + 1, DAY) == datetime(2026, 11, 24, tzinfo=UTC).timestamp()


@given(at=st.floats(0, 4e9), size=st.sampled_from([3_600, DAY, 7 * DAY]))
def test_every_moment_is_in_exactly_the_window_that_starts_before_it(at: float, size: int) -> None:
    start = window_start(at, size)
    assert start <= at < start + size
    assert start % size == 0


def test_window_expires_after_its_retained_successors_started() -> None:
    spec = window_specs(7)[0]  # hour, 48 kept
    assert not is_expired(0, spec, 48 * 3_600 - 1)
    assert is_expired(0, spec, 48 * 3_600)


def test_watermark_only_moves_forward_and_is_bounded_by_record_time() -> None:
    mark = Watermark().advance(1_000, record_timestamp=2_000, max_skew=300, offset=0)
    assert mark.at == 1_000
    assert mark.advance(500, 2_000, 300, 1).at == 1_000  # older event: no change
    assert mark.advance(10_000, 2_000, 300, 2).at == 2_300  # future clock: capped
    assert mark.advance(1_500, 2_000, 300, 3).offset == 3


def test_lateness_is_strictly_older_than_watermark_minus_allowance() -> None:
    mark = Watermark(at=10_000, offset=5)
    assert not mark.is_late(9_000, allowed_lateness=1_000)
    assert mark.is_late(8_999, allowed_lateness=1_000)
