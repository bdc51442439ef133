"""parse_input: every input becomes an event or a rejection with the right class."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cxstream.schemas.events import Feedback, Interaction
from cxstream.schemas.parsing import ErrorClass, InputKind, Rejection, parse_input
from testkit.support import feedback, interaction, to_bytes

LIMIT = 65_536


def rejection(kind: InputKind, key: bytes | None, raw: bytes | None) -> Rejection:
    result = parse_input(kind, key, raw, LIMIT)
    assert isinstance(result, Rejection), result
    return result


def test_valid_feedback_with_matching_key_is_accepted() -> None:
    result = parse_input(InputKind.FEEDBACK, b"c-1", to_bytes(feedback()), LIMIT)
    assert isinstance(result, Feedback) and result.customer_id == "c-1"


def test_valid_interaction_is_parsed_into_its_model() -> None:
    result = parse_input(InputKind.INTERACTION, b"c-1", to_bytes(interaction()), LIMIT)
    assert isinstance(result, Interaction)


def test_missing_value_is_empty() -> None:
    assert rejection(InputKind.FEEDBACK, b"c-1", None).error_class is ErrorClass.EMPTY
    assert rejection(InputKind.FEEDBACK, b"c-1", b"").error_class is ErrorClass.EMPTY


def test_more_bytes_than_the_limit_is_oversized_and_the_limit_itself_is_not() -> None:
    base = to_bytes(feedback(comment=""))
    at_limit = to_bytes(feedback(comment="x" * (LIMIT - len(base))))
    assert len(at_limit) == LIMIT
    assert isinstance(parse_input(InputKind.FEEDBACK, b"c-1", at_limit, LIMIT), Rejection)
    over = at_limit[:-1] + b' ' + at_limit[-1:]
    result = rejection(InputKind.FEEDBACK, b"c-1", over)
    assert result.error_class is ErrorClass.OVERSIZED
    assert str(LIMIT) in result.reason


def test_comment_of_ten_thousand_characters_fits_the_default_limit() -> None:
    raw = to_bytes(feedback(comment="ž" * 10_000))
    assert isinstance(parse_input(InputKind.FEEDBACK, b"c-1", raw, LIMIT), Feedback)


def test_invalid_utf8_is_an_encoding_error() -> None:
    result = rejection(InputKind.FEEDBACK, b"c-1", b'{"comment": "\xff"}')
    assert result.error_class is ErrorClass.ENCODING
    assert "UTF-8" in result.reason


def test_text_that_is_not_json_is_a_json_error() -> None:
    result = rejection(InputKind.FEEDBACK, b"c-1", b"hello")
    assert result.error_class is ErrorClass.JSON


def test_truncated_json_is_a_json_error() -> None:
    assert rejection(InputKind.FEEDBACK, b"c-1", to_bytes(feedback())[:-3]).error_class is \
        ErrorClass.JSON


def test_json_that_is_not_an_object_is_a_schema_error() -> None:
    assert rejection(InputKind.FEEDBACK, b"c-1", b"[1, 2]").error_class is ErrorClass.SCHEMA


def test_out_of_range_score_is_a_schema_error_that_says_why() -> None:
    result = rejection(InputKind.FEEDBACK, b"c-1", to_bytes(feedback(score=11)))
    assert result.error_class is ErrorClass.SCHEMA
    assert "score 11 is outside nps range 0-10" in result.reason


def test_schema_reason_names_every_bad_field() -> None:
    raw = to_bytes(feedback(occurred_at="2026-01-01T00:00:00", channel=""))
    result = rejection(InputKind.FEEDBACK, b"c-1", raw)
    assert "occurred_at" in result.reason and "channel" in result.reason


def test_key_other_than_customer_id_is_a_key_error() -> None:
    result = rejection(InputKind.FEEDBACK, b"c-2", to_bytes(feedback()))
    assert result.error_class is ErrorClass.KEY
    assert "'c-2'" in result.reason and "'c-1'" in result.reason


def test_missing_key_is_a_key_error() -> None:
    result = rejection(InputKind.FEEDBACK, None, to_bytes(feedback()))
    assert result.error_class is ErrorClass.KEY and "missing" in result.reason


def test_deeply_nested_json_does_not_break_the_parser() -> None:
    raw = b'{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    result = parse_input(InputKind.FEEDBACK, b"c-1", raw, 10**7)
    assert isinstance(result, Rejection)


def test_reasons_are_clipped() -> None:
    raw = to_bytes({f"f{i}": i for i in range(2000)} | {"score": "x" * 5000})
    assert len(rejection(InputKind.FEEDBACK, b"c-1", raw).reason) <= 1000


@settings(max_examples=300)
@given(key=st.one_of(st.none(), st.binary(max_size=20)), raw=st.one_of(st.none(), st.binary()))
def test_arbitrary_bytes_never_raise(key: bytes | None, raw: bytes | None) -> None:
    result = parse_input(InputKind.FEEDBACK, key, raw, LIMIT)
    assert isinstance(result, Rejection | Feedback)
    if isinstance(result, Rejection):
        assert result.reason and result.error_class is not ErrorClass.INTERNAL


def test_dates_out_of_range_in_utc_are_schema_errors_not_internal() -> None:
    for moment in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
        result = rejection(InputKind.FEEDBACK, b"c-1", to_bytes(feedback(occurred_at=moment)))
        assert result.error_class is ErrorClass.SCHEMA, result
        assert "out of range" in result.reason


def test_event_times_ahead_of_either_clock_are_schema_errors() -> None:
    from datetime import datetime

    from cxstream.schemas.parsing import Clocks
    from testkit.support import NOW, profile

    now = datetime.fromisoformat(NOW).timestamp()
    ahead = to_bytes(feedback(occurred_at="2026-11-23T10:10:01+00:00"))  # 601 s
    within = to_bytes(feedback(occurred_at="2026-11-23T10:10:00+00:00"))  # 600 s
    for clocks in (Clocks(now, None, 600), Clocks(now + 3_600, now, 600),
                   Clocks(now, now + 3_600, 600)):
        result = parse_input(InputKind.FEEDBACK, b"c-1", ahead, LIMIT, clocks)
        assert isinstance(result, Rejection) and result.error_class is ErrorClass.SCHEMA
        assert isinstance(parse_input(InputKind.FEEDBACK, b"c-1", within, LIMIT, clocks),
                          Feedback)
    future_profile = to_bytes(profile(updated_at="9999-01-01T00:00:00+00:00"))
    result = parse_input(InputKind.CUSTOMER, b"c-1", future_profile, LIMIT,
                         Clocks(now, now, 600))
    assert isinstance(result, Rejection) and result.reason.startswith("updated_at")
