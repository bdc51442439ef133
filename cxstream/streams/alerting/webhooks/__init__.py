"""Alerts to webhooks: the sink (sink.py), one lane per destination (lanes.py) and what
each partition of cx.alerts may commit (offsets.py); started by ``start_webhook_sink``."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from cxstream.alerts.config import RulesConfig
from cxstream.alerts.receivers import WebhookSender
from cxstream.streams.alerting.webhooks.lanes import Delivery, Lane, retry_wait
from cxstream.streams.alerting.webhooks.offsets import OffsetTracker
from cxstream.streams.alerting.webhooks.sink import HeldForDigest, WebhookSink
from cxstream.streams.metrics import WorkerMetrics
from cxstream.streams.settings import Settings

log = logging.getLogger(__name__)
__all__ = ["Delivery", "HeldForDigest", "Lane", "OffsetTracker", "WebhookSink", "retry_wait",
           "start_webhook_sink"]


def start_webhook_sink(app: Any, settings: Settings, config: RulesConfig,
                       metrics: WorkerMetrics) -> None:
    """Run the sink as a background task of the worker (no-op without a destination:
    CXSTREAM_WEBHOOK_URL or the rules file's notifications.destinations)."""
    notifications = config.notifications
    urls = {secret.get_secret_value() for secret in notifications.destinations.values()}
    if notifications.default_destination is not None:
        urls.add(notifications.default_destination.get_secret_value())
    if not settings.webhook_url and not urls:
        return
    secrets = []
    if settings.webhook_secret is not None:
        secrets.append(settings.webhook_secret.get_secret_value())
        if settings.webhook_previous_secret is not None:
            secrets.append(settings.webhook_previous_secret.get_secret_value())

    def sender_to(url: str) -> WebhookSender:
        return WebhookSender(url, secrets, settings.webhook_format,
                             settings.webhook_timeout_seconds)
    senders = {url: sender_to(url) for url in urls}
    default = (sender_to(settings.webhook_url.get_secret_value()) if settings.webhook_url
               else None)
    sink = WebhookSink(settings, default, metrics, config=config, senders=senders)

    @app.task
    async def deliver_alerts_to_webhook() -> None:
        try:
            while True:
                try:
                    await sink.run()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("webhook sink failed; restarting in 5 s")
                    await asyncio.sleep(5)
        finally:  # the HTTP clients serve every run of the sink: closed once, at the end
            for each in {*senders.values(), *([default] if default else [])}:
                await each.close()
