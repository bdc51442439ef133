"""Alert delivery: a signed webhook (JSON or Slack-compatible body) and a log line.

The webhook signs the exact body it sends: header ``X-CX-Signature: sha256=<hex>`` with
HMAC-SHA256 and the secret CXSTREAM_WEBHOOK_SECRET; ``X-CX-Alert-Id`` lets the receiver
drop a repeated delivery of the same alert.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Literal

import httpx

from schemas.outputs import Alert

SIGNATURE_HEADER = "X-CX-Signature"
ALERT_ID_HEADER = "X-CX-Alert-Id"
SEVERITY_ICON = {"critical": ":red_circle:", "warning": ":large_orange_circle:",
                 "info": ":large_blue_circle:"}


class PermanentDeliveryError(RuntimeError):
    """The receiver refused the alert for good (a 4xx other than 408 and 429)."""


class TransientDeliveryError(RuntimeError):
    """The receiver is down, slow or overloaded; try again later."""


def sign(body: bytes, secret: str) -> str:
    """The signature header value of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, header: str) -> bool:
    """What a receiver does: recompute the signature and compare in constant time."""
    return hmac.compare_digest(sign(body, secret), header)


def webhook_body(alert: Alert, body_format: Literal["json", "slack"]) -> bytes:
    """The request body: the alert itself, or a Slack message that carries it."""
    data = alert.model_dump(mode="json")
    if body_format == "slack":
        who = alert.customer_id or alert.segment or "group"
        data = {
            "text": f"[{alert.severity}] {alert.summary}",
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text":
                    f"{SEVERITY_ICON[alert.severity]} *{alert.rule}* for *{who}* "
                    f"→ {alert.owner}\n{alert.summary}"}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text":
                    f"alert `{alert.alert_id}` · act by {alert.act_by} · "
                    f"value {alert.context.get('customer_value')} · "
                    f"quadrant {alert.context.get('quadrant')}"}]},
            ],
            "cxstream_alert": data,
        }
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def log_line(alert: Alert) -> str:
    """One line per alert: time, severity, rule, subject, owner, summary."""
    who = alert.customer_id or (f"segment {alert.segment}" if alert.segment else "group")
    return (f"{alert.event_time.isoformat()} {alert.severity.upper():8} {alert.rule:19} "
            f"{who} → {alert.owner}: {alert.summary} [{alert.alert_id}]")


class WebhookSender:
    """POSTs alerts; raises Transient- or PermanentDeliveryError on failure."""

    def __init__(self, url: str, secret: str, body_format: Literal["json", "slack"],
                 timeout_seconds: float) -> None:
        self.url = url
        self.secret = secret
        self.body_format = body_format
        self.client = httpx.AsyncClient(timeout=timeout_seconds)

    async def send(self, alert: Alert) -> None:
        body = webhook_body(alert, self.body_format)
        headers: dict[str, Any] = {"Content-Type": "application/json",
                                   SIGNATURE_HEADER: sign(body, self.secret),
                                   ALERT_ID_HEADER: alert.alert_id}
        try:
            response = await self.client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise TransientDeliveryError(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code < 300:
            return
        message = f"HTTP {response.status_code}: {response.text[:200]}"
        if 400 <= response.status_code < 500 and response.status_code not in {408, 429}:
            raise PermanentDeliveryError(message)
        raise TransientDeliveryError(message)

    async def close(self) -> None:
        await self.client.aclose()
