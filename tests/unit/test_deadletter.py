"""build_deadletter keeps the original bytes and records where and why."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from schemas.parsing import ErrorClass, Rejection
from streams.deadletter import SourcePosition, build_deadletter, read_headers

FAILED_AT = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def test_record_keeps_original_key_and_value_and_describes_the_failure() -> None:
    record = build_deadletter(b"c-1", b"\xff\x00raw", SourcePosition("cx.feedback", 2, 41),
                              Rejection(ErrorClass.ENCODING, "not valid UTF-8 at byte 0"),
                              FAILED_AT)
    assert record.key == b"c-1"
    assert record.value == b"\xff\x00raw"
    assert read_headers(record.headers) == {
        "source.topic": "cx.feedback", "source.partition": "2", "source.offset": "41",
        "error.class": "encoding", "error.reason": "not valid UTF-8 at byte 0",
        "failed_at": "2026-11-23T10:00:00+00:00",
    }


def test_missing_value_becomes_empty_bytes() -> None:
    record = build_deadletter(None, None, SourcePosition("t", 0, 0),
                              Rejection(ErrorClass.EMPTY, "no value"), FAILED_AT)
    assert record.value == b"" and record.key is None


def test_read_headers_ignores_other_headers() -> None:
    assert read_headers([("trace-id", b"1"), ("cx.error.class", b"json")]) == {
        "error.class": "json"}
    assert read_headers(None) == {}


@given(reason=st.text(min_size=1), raw=st.binary())
def test_any_reason_and_value_round_trip(reason: str, raw: bytes) -> None:
    record = build_deadletter(b"k", raw, SourcePosition("t", 1, 2),
                              Rejection(ErrorClass.SCHEMA, reason), FAILED_AT)
    assert record.value == raw
    assert read_headers(record.headers)["error.reason"] == reason
