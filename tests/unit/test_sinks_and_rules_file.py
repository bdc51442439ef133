"""Webhook signing, bodies and failure classes; the rules file's validation."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from alerts.config import RulesError, load_rules
from alerts.sinks import (
    PermanentDeliveryError,
    TransientDeliveryError,
    WebhookSender,
    log_line,
    sign,
    verify,
    webhook_body,
)
from schemas.outputs import Alert

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
ALERT = Alert(alert_id="detractor-1", rule="detractor", severity="warning", customer_id="c-1",
              segment="smb", owner="am.a", summary="NPS 2 from c-1", reason={"score": 2},
              context={"customer_value": 10, "quadrant": "dangling"}, event_time=T0,
              created_at=T0)


def test_signature_is_hmac_sha256_of_the_exact_body() -> None:
    body = webhook_body(ALERT, "json")
    header = sign(body, "s3cret")
    assert header.startswith("sha256=") and verify(body, "s3cret", header)
    assert not verify(body + b" ", "s3cret", header)
    assert not verify(body, "other", header)


def test_json_body_is_the_alert_and_slack_body_carries_it() -> None:
    assert json.loads(webhook_body(ALERT, "json"))["alert_id"] == "detractor-1"
    slack = json.loads(webhook_body(ALERT, "slack"))
    assert slack["text"] == "[warning] NPS 2 from c-1"
    assert slack["blocks"][0]["type"] == "section"
    assert slack["cxstream_alert"]["owner"] == "am.a"


def test_log_line_names_severity_rule_subject_owner() -> None:
    line = log_line(ALERT)
    assert "WARNING" in line and "detractor" in line and "c-1 → am.a" in line


async def post_with(status: int | None) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        if status is None:
            raise httpx.ConnectError("refused", request=request)
        assert verify(request.content, "k", request.headers["X-CX-Signature"])
        assert request.headers["X-CX-Alert-Id"] == "detractor-1"
        return httpx.Response(status)

    sender = WebhookSender("http://receiver.test/hook", "k", "json", 5)
    sender.client = httpx.AsyncClient(transport=httpx.MockTransport(respond))
    await sender.send(ALERT)


async def test_2xx_is_delivered() -> None:
    await post_with(200)
    await post_with(204)


@pytest.mark.parametrize("status", [None, 500, 503, 408, 429])
async def test_down_slow_or_busy_receivers_are_transient(status: int | None) -> None:
    with pytest.raises(TransientDeliveryError):
        await post_with(status)


@pytest.mark.parametrize("status", [400, 401, 404, 422])
async def test_refusals_are_permanent(status: int) -> None:
    with pytest.raises(PermanentDeliveryError):
        await post_with(status)


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
