"""build_deadletter keeps the original bytes and records where and why."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from cxstream.schemas.parsing import ErrorClass, Rejection
from cxstream.streams.ingest.deadletter_record import (
    KEY_COPY_LIMIT,
    RECORD_HEADROOM,
    SourcePosition,
    build_deadletter,
    copy_limit,
    message_limit_problem,
    read_headers,
)

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
        "failed_at": "2026-11-23T10:00:00+00:00", "contract.version": "1",
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


def test_a_value_over_the_copy_limit_is_kept_as_a_prefix_with_size_and_digest() -> None:
    import hashlib

    raw = bytes(range(256)) * 4_000
    record = build_deadletter(b"k" * 2_000, raw, SourcePosition("t", 1, 2),
                              Rejection(ErrorClass.OVERSIZED, "too big"), FAILED_AT,
                              copy_limit=1_000)
    headers = read_headers(record.headers)
    assert record.value == raw[:1_000]
    assert headers["original.size"] == str(len(raw))
    assert headers["original.sha256"] == hashlib.sha256(raw).hexdigest()
    assert headers["truncated"] == "true"
    assert len(record.key or b"") == KEY_COPY_LIMIT and headers["original.key_size"] == "2000"


def test_a_value_within_the_copy_limit_is_kept_whole() -> None:
    record = build_deadletter(b"k", b"{", SourcePosition("t", 1, 2),
                              Rejection(ErrorClass.JSON, "bad"), FAILED_AT, copy_limit=1_000)
    assert record.value == b"{" and "truncated" not in read_headers(record.headers)


def test_max_event_bytes_must_fit_a_dead_letter_copy() -> None:
    assert message_limit_problem(65_536, 1_048_576, "cx.deadletter", 1_048_588) is None
    problem = message_limit_problem(1_048_576, 1_048_576, "cx.deadletter", 1_048_588)
    assert problem is not None
    assert "CXSTREAM_MAX_EVENT_BYTES" in problem
    assert "CXSTREAM_PRODUCER_MAX_REQUEST_BYTES" in problem
    assert "max.message.bytes=1048588 of topic cx.deadletter" in problem
    assert copy_limit(2_000_000, 500_000) == 500_000 - RECORD_HEADROOM
