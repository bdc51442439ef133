"""Turn one raw Kafka message into a validated event or a rejection with its reason.

Pure: no Faust, no I/O. Every possible input ends as exactly one of the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ValidationError

from cxstream.schemas.events import CustomerProfile, Feedback, InputEvent, Interaction

MAX_REASON_CHARS = 1_000


class InputKind(StrEnum):
    INTERACTION = "interaction"
    FEEDBACK = "feedback"
    CUSTOMER = "customer"


MODEL_OF_KIND: dict[InputKind, type[BaseModel]] = {
    InputKind.INTERACTION: Interaction,
    InputKind.FEEDBACK: Feedback,
    InputKind.CUSTOMER: CustomerProfile,
}


class ErrorClass(StrEnum):
    """Why an input was refused; a bounded set (also a metric label)."""

    EMPTY = "empty"          # no value (tombstone) or zero bytes
    OVERSIZED = "oversized"  # more bytes than max_event_bytes
    ENCODING = "encoding"    # not UTF-8
    JSON = "json"            # not a JSON document
    SCHEMA = "schema"        # JSON, but breaks the contract (types, ranges, missing fields)
    KEY = "key"              # message key is not the event's customer_id
    INTERNAL = "internal"    # a bug in this project; the input is kept for a replay


@dataclass(frozen=True)
class Rejection:
    error_class: ErrorClass
    reason: str


@dataclass(frozen=True)
class Clocks:
    """What an event time is checked against: the worker's clock and the Kafka record's
    timestamp (epoch seconds; None: unknown), and how far ahead of either it may be."""

    now: float
    record_time: float | None
    max_ahead_seconds: float


def parse_input(
    kind: InputKind, key: bytes | None, raw: bytes | None, max_bytes: int,
    clocks: Clocks | None = None, unknown: list[str] | None = None,
) -> InputEvent | Rejection:
    """Validate one message of ``kind``; never raises. With ``clocks``, an event time
    (``occurred_at``, or a profile's ``updated_at``) too far ahead is a schema error.
    Fields the contract does not name are dropped from the event (an added
    ``occurred_at`` on a profile must not read as one), their names appended to
    ``unknown`` when given."""
    try:
        event = _parse(kind, key, raw, max_bytes)
        if not isinstance(event, Rejection) and event.model_extra:
            if unknown is not None:
                unknown.extend(event.model_extra)
            event.model_extra.clear()
        if clocks is not None and not isinstance(event, Rejection):
            return _check_event_time(event, clocks) or event
        return event
    except Exception as exc:  # a defect must not stop the stream; the input is kept
        return Rejection(ErrorClass.INTERNAL, _clip(f"{type(exc).__name__}: {exc}"))


def event_time_field(event: InputEvent) -> str:
    return "updated_at" if isinstance(event, CustomerProfile) else "occurred_at"


def _check_event_time(event: InputEvent, clocks: Clocks) -> Rejection | None:
    name = event_time_field(event)
    at: datetime = getattr(event, name)
    seconds = at.timestamp()
    limits = [(clocks.now, "the worker's clock")]
    if clocks.record_time is not None and clocks.record_time > 0:
        limits.append((clocks.record_time, "the Kafka record's timestamp"))
    for reference, what in limits:
        if seconds > reference + clocks.max_ahead_seconds:
            shown = datetime.fromtimestamp(reference, UTC).isoformat()
            return Rejection(ErrorClass.SCHEMA, _clip(
                f"{name}: {at.isoformat()} is more than {clocks.max_ahead_seconds:g} s ahead "
                f"of {what} ({shown})"))
    return None


#: Confluent's Schema Registry serializers frame a value: a zero byte, the schema's id
#: (4 bytes, big-endian), then the payload (JSON for the JSON Schema serializer)
CONFLUENT_MAGIC = 0
CONFLUENT_HEADER_BYTES = 5


def unframe(raw: bytes) -> tuple[bytes, int | None]:
    """The JSON of a value and the Schema Registry id it was framed with (None: a plain
    JSON value). No JSON text starts with a zero byte, so the two cannot be confused."""
    if len(raw) > CONFLUENT_HEADER_BYTES and raw[0] == CONFLUENT_MAGIC:
        return raw[CONFLUENT_HEADER_BYTES:], int.from_bytes(raw[1:CONFLUENT_HEADER_BYTES], "big")
    return raw, None


def _parse(kind: InputKind, key: bytes | None, raw: bytes | None,
           max_bytes: int) -> InputEvent | Rejection:
    if not raw:
        return Rejection(ErrorClass.EMPTY, "the message has no value")
    if len(raw) > max_bytes:
        return Rejection(ErrorClass.OVERSIZED,
                         f"{len(raw)} bytes is more than the limit of {max_bytes} bytes")
    raw, _ = unframe(raw)
    try:
        event = MODEL_OF_KIND[kind].model_validate_json(raw)
    except ValidationError as exc:
        return _classify(raw, exc)
    customer_id: str = event.customer_id  # type: ignore[attr-defined]
    if key is None or key != customer_id.encode("utf-8"):
        shown = "missing" if key is None else repr(key[:140].decode("utf-8", "replace"))
        return Rejection(ErrorClass.KEY,
                         f"message key is {shown}, expected the customer_id {customer_id!r}")
    return event  # type: ignore[return-value]


def _classify(raw: bytes, exc: ValidationError) -> Rejection:
    errors = exc.errors(include_url=False, include_input=False)
    if any(error["type"] == "json_invalid" for error in errors):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as decode_error:
            return Rejection(ErrorClass.ENCODING,
                             f"not valid UTF-8 at byte {decode_error.start}: {decode_error.reason}")
        return Rejection(ErrorClass.JSON, _clip(f"not valid JSON: {errors[0]['msg']}"))
    return Rejection(ErrorClass.SCHEMA, _clip("; ".join(_describe(e) for e in errors)))


def _describe(error: object) -> str:
    assert isinstance(error, dict)
    location = ".".join(str(part) for part in error["loc"]) or "message"
    return f"{location}: {str(error['msg']).removeprefix('Value error, ')}"


def _clip(text: str) -> str:
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"
