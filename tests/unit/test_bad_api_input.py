"""Inputs that once answered 500: each is now a 4xx naming the field."""

from __future__ import annotations

import pytest

from cxstream.alerts.lifecycle import InvalidCommand
from cxstream.streams.alerting.cases import parse_time
from cxstream.streams.web.console.rendering import snooze_until
from cxstream.streams.web.errors import BadRequest
from cxstream.streams.web.queries import check_text_fields


@pytest.mark.parametrize("until", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_a_snooze_time_out_of_range_in_utc_is_refused_naming_until(until: str) -> None:
    with pytest.raises(InvalidCommand, match=r"^until: out of range"):
        parse_time(until)


def test_a_lone_surrogate_in_a_note_is_refused_naming_the_field() -> None:
    with pytest.raises(BadRequest, match=r"^text: not valid text .* character 3"):
        check_text_fields({"text": "abc\ud800"})
    with pytest.raises(BadRequest, match=r"^\\ud801: not valid text"):
        check_text_fields({"\ud801": "\udc00"})  # the field's own name is shown escaped
    check_text_fields({"text": "ok 👍", "to": 3})  # real text and non-strings pass


@pytest.mark.parametrize("hours", ["inf", "nan", "1e12", "-1", "soon"])
def test_console_snooze_hours_that_are_not_a_number_of_hours_are_refused(hours: str) -> None:
    with pytest.raises(ValueError, match=r"^hours: "):
        snooze_until({"hours": hours})


def test_console_snooze_hours_give_a_time_that_far_ahead() -> None:
    from datetime import UTC, datetime, timedelta

    moment = datetime.fromisoformat(snooze_until({"hours": "2.5"}))
    assert abs(moment - (datetime.now(UTC) + timedelta(hours=2.5))) < timedelta(seconds=5)
    assert snooze_until({"until": "2026-12-07T10:00:00+00:00", "hours": "inf"}) == \
        "2026-12-07T10:00:00+00:00"


def test_a_huge_min_n_and_an_at_out_of_range_are_refused_naming_them() -> None:
    from datetime import UTC, datetime

    from cxstream.streams.web.queries import parse_at, parse_count

    with pytest.raises(BadRequest, match=r"^min_n: from 1 to 1000000000"):
        parse_count("32589158477190044730")  # once a 500: its JSON answer could not be made
    with pytest.raises(BadRequest, match=r"^at: out of range"):
        parse_at("0001-01-01T00:00:00+14:00", lambda: datetime.now(UTC))
    assert parse_count("7") == 7
