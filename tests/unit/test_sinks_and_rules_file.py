"""Webhook signing, bodies and failure classes; the rules file's validation."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from cxstream.alerts.config import RulesError, load_rules
from cxstream.alerts.receivers import (
    PermanentDeliveryError,
    TransientDeliveryError,
    WebhookSender,
    log_line,
    retry_after_seconds,
    signed_headers,
    verify,
    webhook_body,
)
from cxstream.schemas.outputs import Alert

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
ALERT = Alert(alert_id="detractor-1", rule="detractor", severity="warning", customer_id="c-1",
              segment="smb", owner="am.a", summary="NPS 2 from c-1", reason={"score": 2},
              context={"customer_value": 10, "quadrant": "dangling"}, event_time=T0,
              created_at=T0)


def test_standard_webhooks_signature_covers_id_timestamp_and_body() -> None:
    body = webhook_body(ALERT, "json")
    now = datetime.now(UTC)
    headers = signed_headers("detractor-1", body, ["s3cret"], now)
    assert headers["webhook-id"] == "detractor-1"
    assert headers["webhook-signature"].startswith("v1,")
    assert verify(body, "s3cret", headers)
    assert not verify(body + b" ", "s3cret", headers)
    assert not verify(body, "other", headers)
    assert not verify(body, "s3cret", {**headers, "webhook-id": "detractor-2"})


def test_a_captured_request_cannot_be_replayed_later() -> None:
    from datetime import timedelta

    body = webhook_body(ALERT, "json")
    old = signed_headers("detractor-1", body, ["s3cret"],
                         datetime.now(UTC) - timedelta(minutes=6))
    assert not verify(body, "s3cret", old)  # past the 5 minutes a receiver allows


def test_during_a_rotation_receivers_with_either_secret_accept_the_request() -> None:
    body = webhook_body(ALERT, "json")
    headers = signed_headers("detractor-1", body, ["new-secret", "old-secret"],
                             datetime.now(UTC))
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert verify(body, "new-secret", headers) and verify(body, "old-secret", headers)
    assert not verify(body, "third", headers)
    import base64

    whsec = "whsec_" + base64.b64encode(b"k" * 24).decode()
    assert verify(body, whsec, signed_headers("x", body, [whsec], datetime.now(UTC)))


def test_retry_after_in_seconds_or_as_a_date() -> None:
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC).timestamp()
    assert retry_after_seconds("120", now) == 120
    assert retry_after_seconds("Mon, 23 Nov 2026 10:01:30 GMT", now) == 90
    assert retry_after_seconds("soon", now) is None and retry_after_seconds(None, now) is None


def test_json_body_is_the_alert_and_slack_body_carries_it() -> None:
    assert json.loads(webhook_body(ALERT, "json"))["alert_id"] == "detractor-1"
    slack = json.loads(webhook_body(ALERT, "slack"))
    assert slack["text"] == "[warning] NPS 2 from c-1"
    assert slack["blocks"][0]["type"] == "header"
    assert slack["cxstream_alert"]["owner"] == "am.a"


def test_log_line_names_severity_rule_subject_owner() -> None:
    line = log_line(ALERT)
    assert "WARNING" in line and "detractor" in line and "c-1 → am.a" in line


async def post_with(status: int | None, headers: dict[str, str] | None = None) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        if status is None:
            raise httpx.ConnectError("refused", request=request)
        assert verify(request.content, "k", dict(request.headers))
        assert request.headers["webhook-id"] == "detractor-1"
        return httpx.Response(status, headers=headers)

    sender = WebhookSender("http://receiver.test/hook", ["k"], "json", 5)
    sender.client = httpx.AsyncClient(transport=httpx.MockTransport(respond))
    await sender.send(ALERT)


async def test_2xx_is_delivered() -> None:
    await post_with(200)
    await post_with(204)


@pytest.mark.parametrize("status", [None, 500, 503, 408, 429])
async def test_down_slow_or_busy_receivers_are_transient(status: int | None) -> None:
    with pytest.raises(TransientDeliveryError):
        await post_with(status)


@pytest.mark.parametrize("status", [301, 302, 307, 400, 401, 404, 422])
async def test_refusals_and_redirects_are_permanent(status: int) -> None:
    with pytest.raises(PermanentDeliveryError):
        await post_with(status, {"Location": "http://elsewhere.test/"})


async def test_a_busy_receivers_retry_after_is_passed_on() -> None:
    with pytest.raises(TransientDeliveryError) as caught:
        await post_with(503, {"Retry-After": "42"})
    assert caught.value.retry_after == 42


def test_default_rules_load_and_a_toml_file_works(tmp_path: Path) -> None:
    assert load_rules().recurring_issue.min_customers == 5
    path = tmp_path / "rules.toml"
    path.write_text("[detractor]\nnps_max = 4\n[routing]\ncx_team = 'cx'\n")
    rules = load_rules(path)
    assert rules.detractor.nps_max == 4 and rules.routing.cx_team == "cx"


def test_rule_mistakes_name_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("detractor:\n  nps_max: 11\nsegment_drop:\n  metrics: [nps]\n"
                    "  margins: {}\nrecurring_isue: {}\n")
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    message = str(caught.value)
    assert "detractor.nps_max" in message and "segment_drop" in message
    assert "recurring_isue" in message and str(path) in message
    with pytest.raises(RulesError, match="file not found"):
        load_rules(tmp_path / "missing.yaml")


def test_retry_waits_honour_retry_after_and_jitter_within_the_cap() -> None:
    import random

    from cxstream.streams.alerting.webhooks import retry_wait

    rng = random.Random(3)
    assert retry_wait(0, 42.0, 1.0, rng) == 42.0  # the receiver's word, not the cap
    assert retry_wait(0, 99_999.0, 1.0, rng) == 3_600.0
    waits = [retry_wait(attempt, None, 8.0, rng) for attempt in range(50)]
    assert all(0 <= w <= 8.0 for w in waits) and len(set(waits)) > 40  # jittered
