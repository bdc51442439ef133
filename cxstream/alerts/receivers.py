"""Alert delivery: a signed webhook (JSON or Slack-compatible body) and a log line.

Requests are signed by the Standard Webhooks scheme (the ``standardwebhooks`` package):
``webhook-id`` (the alert id: the same on every retry, so a receiver drops repeats),
``webhook-timestamp`` (when this attempt was signed: a receiver refuses one more than
5 minutes off, so a captured request cannot be replayed later) and ``webhook-signature``
(HMAC-SHA256 of id, timestamp and body; during a secret rotation one signature per
secret, separated by a space, and a receiver with either secret accepts the request).

A secret is ``whsec_`` followed by base64 (as Standard Webhooks tools generate them), or
any other string, whose UTF-8 bytes are then the key.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import httpx
from standardwebhooks.webhooks import Webhook

from cxstream.alerts.slack import alert_message, digest_message, follow_up_message
from cxstream.schemas.outputs import Alert

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"


class PermanentDeliveryError(RuntimeError):
    """The receiver refused the alert for good (a 3xx, or a 4xx other than 408 and 429)."""


class TransientDeliveryError(RuntimeError):
    """The receiver is down, slow or overloaded; try again later (``retry_after``: the
    seconds the receiver asked for, if it did)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def signer(secret: str) -> Webhook:
    """The Standard Webhooks signer of a secret (``whsec_<base64>`` or plain text)."""
    return Webhook(secret if secret.startswith("whsec_") else secret.encode())


def signed_headers(alert_id: str, body: bytes, secrets: Sequence[str],
                   now: datetime) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt, signed with every secret."""
    text = body.decode("utf-8")
    signatures = " ".join(signer(secret).sign(alert_id, now, text) for secret in secrets)
    return {ID_HEADER: alert_id, TIMESTAMP_HEADER: str(int(now.timestamp())),
            SIGNATURE_HEADER: signatures}


def verify(body: bytes, secret: str, headers: dict[str, str]) -> bool:
    """What a receiver does: check the signature and that the timestamp is recent."""
    try:
        signer(secret).verify(body, headers, json_parse=False)
    except Exception:  # WebhookVerificationError, or headers that do not parse
        return False
    return True


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """An HTTP Retry-After value (seconds, or an HTTP date) as seconds from ``now``."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(moment.timestamp() - now, 0.0)


def classify(status: int, retry_after: str | None, text: str, now: float) -> None:
    """Raise for a response that is not a success: 3xx and 4xx (but 408 and 429) are
    permanent; 408, 429 and 5xx transient, with the receiver's Retry-After if any."""
    if 200 <= status < 300:
        return
    message = f"HTTP {status}: {text[:200]}"
    if status < 400 or (status < 500 and status not in {408, 429}):
        raise PermanentDeliveryError(message)
    raise TransientDeliveryError(message, retry_after_seconds(retry_after, now))


def delivery_id(alert: Alert) -> str:
    """The webhook id of an alert message: the alert id for the message that raises it,
    with the follow-up for an escalation (numbered) or a resolution (the second
    resolution of a reopened alert numbered too): each notice posted once, and no two
    notices share an id (receivers drop a repeated id)."""
    if alert.notice == "escalated":
        return f"{alert.alert_id}.escalated.{alert.escalations}"
    if alert.notice == "resolved":
        again = f".{alert.resolutions}" if alert.resolutions > 1 else ""
        return f"{alert.alert_id}.resolved{again}"
    return alert.alert_id


def is_notification(alert: Alert) -> bool:
    """Messages that notify: the first of an alert, and its follow-ups (not the updates
    a cooldown folds in)."""
    return alert.notice is not None or alert.occurrences == 1


def _encode(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def webhook_body(alert: Alert, body_format: Literal["json", "slack"],
                 console_url: str | None = None, users: dict[str, str] | None = None,
                 comment_max: int = 300, signals_shown: int = 3) -> bytes:
    """The request body: the alert itself, or a Slack message (Block Kit) that carries it."""
    data = alert.model_dump(mode="json")
    if body_format == "slack":
        message = (follow_up_message(alert, console_url, users or {}) if alert.notice
                   else alert_message(alert, console_url, users or {}, comment_max,
                                      signals_shown))
        data = {**message.model_dump(mode="json", exclude_none=True), "cxstream_alert": data}
    return _encode(data)


def digest_body(alerts: list[Alert], recipient: str, body_format: Literal["json", "slack"],
                console_url: str | None = None) -> bytes:
    """One message for the alerts a recipient's budget held."""
    if body_format == "slack":
        return _encode(digest_message(alerts, console_url, recipient).model_dump(
            mode="json", exclude_none=True))
    return _encode({"digest": recipient, "alerts": [a.model_dump(mode="json")
                                                    for a in alerts]})


def log_line(alert: Alert) -> str:
    """One line per alert: time, severity, rule, subject, owner, summary."""
    who = alert.customer_id or (f"segment {alert.segment}" if alert.segment else "group")
    return (f"{alert.event_time.isoformat()} {alert.severity.upper():8} {alert.rule:19} "
            f"{who} → {alert.owner}: {alert.summary} [{alert.alert_id}]")


def masked_url(url: str) -> str:
    """A webhook URL as logs and reasons may show it: scheme and host, the rest masked (a
    Slack webhook's path is its credential)."""
    parts = httpx.URL(url)
    return f"{parts.scheme}://{parts.host}/***"


class WebhookSender:
    """POSTs alerts; raises Transient- or PermanentDeliveryError on failure. Redirects
    are not followed: a 3xx is a wrong URL, refused for good."""

    def __init__(self, url: str, secrets: Sequence[str], body_format: Literal["json", "slack"],
                 timeout_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.secrets = list(secrets)
        self.body_format = body_format
        self.clock = clock
        self.client = httpx.AsyncClient(timeout=timeout_seconds, follow_redirects=False)

    async def send(self, alert: Alert, body: bytes | None = None) -> None:
        await self.post(delivery_id(alert), body or webhook_body(alert, self.body_format))

    async def post(self, webhook_id: str, body: bytes) -> None:
        now = self.clock()
        headers: dict[str, Any] = {"Content-Type": "application/json"}
        if self.secrets:
            headers.update(signed_headers(webhook_id, body, self.secrets,
                                          datetime.fromtimestamp(now, UTC)))
        try:
            response = await self.client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:  # the URL is a secret: never in a reason or log
            reason = str(exc).replace(self.url, masked_url(self.url))
            raise TransientDeliveryError(f"{type(exc).__name__}: {reason}") from exc
        classify(response.status_code, response.headers.get("Retry-After"), response.text,
                 self.clock())

    async def close(self) -> None:
        await self.client.aclose()
