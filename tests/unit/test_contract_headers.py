"""Headers of output records: the contract version everywhere, CloudEvents in binary
mode on cx.alerts."""

from __future__ import annotations

from datetime import UTC, datetime

from cxstream.schemas.outputs import Alert
from cxstream.schemas.parsing import ErrorClass, Rejection
from cxstream.streams.alerting.publishing import alert_headers
from cxstream.streams.ingest.deadletter_record import SourcePosition, build_deadletter, read_headers

T = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def alert(**fields: object) -> Alert:
    base = dict(alert_id="customer-0a1b2c", rule="detractor", severity="warning",
                customer_id="c-1", segment="smb", owner="smb-support",
                summary="NPS 2 from c-1", reason={}, context={}, event_time=T,
                created_at=T)
    base.update(fields)
    return Alert.model_validate(base)


def test_an_alert_record_is_a_binary_mode_cloudevent() -> None:
    headers = alert_headers(alert(), "/cxstream/prod")
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_id"] == b"customer-0a1b2c"
    assert headers["ce_source"] == b"/cxstream/prod"
    assert headers["ce_type"] == b"cxstream.alert.raised.v1"
    assert datetime.fromisoformat(headers["ce_time"].decode()) == T
    assert headers["ce_subject"] == b"c-1"
    assert headers["content-type"] == b"application/json"
    assert headers["cx.contract.version"] == b"1" and headers["cx.rule"] == b"detractor"


def test_a_follow_up_is_another_event_of_the_same_alert() -> None:
    later = datetime(2026, 12, 2, 13, 0, tzinfo=UTC)
    first = alert_headers(alert(notice="escalated", escalations=1, notice_at=later))
    second = alert_headers(alert(notice="escalated", escalations=2, notice_at=later))
    resolved = alert_headers(alert(notice="resolved", escalations=2, notice_at=later))
    ids = {first["ce_id"], second["ce_id"], resolved["ce_id"], b"customer-0a1b2c"}
    assert len(ids) == 4
    assert first["ce_type"] == b"cxstream.alert.escalated.v1"
    assert resolved["ce_type"] == b"cxstream.alert.resolved.v1"
    assert datetime.fromisoformat(first["ce_time"].decode()) == later
    update = alert_headers(alert(occurrences=3))
    assert update["ce_id"] == b"customer-0a1b2c:3"
    assert update["ce_type"] == b"cxstream.alert.updated.v1"
    group = alert_headers(alert(customer_id=None, segment="smb", rule="segment_drop"))
    assert group["ce_subject"] == b"smb"


def test_a_dead_letter_names_its_contract_version() -> None:
    record = build_deadletter(b"c-1", b"{", SourcePosition("cx.feedback", 0, 7),
                              Rejection(ErrorClass.JSON, "not JSON"), T)
    assert read_headers(record.headers)["contract.version"] == "1"
