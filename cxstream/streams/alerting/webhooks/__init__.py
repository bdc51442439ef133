"""Alerts to webhooks: the sink (sink.py), one lane per destination (lanes.py) and what
each partition of cx.alerts may commit (offsets.py); run by ``WebhookRun``."""

from __future__ import annotations

import asyncio
import logging

from cxstream.alerts.config import RulesConfig
from cxstream.alerts.receivers import WebhookSender
from cxstream.streams.alerting.webhooks.lanes import Delivery, Lane, retry_wait
from cxstream.streams.alerting.webhooks.offsets import OffsetTracker
from cxstream.streams.alerting.webhooks.sink import HeldForDigest, WebhookSink
from cxstream.streams.metrics import WorkerMetrics
from cxstream.streams.settings import Settings

log = logging.getLogger(__name__)
__all__ = [
    "Delivery",
    "HeldForDigest",
    "Lane",
    "OffsetTracker",
    "WebhookRun",
    "WebhookSink",
    "retry_wait",
    "webhook_run",
]


class WebhookRun:
    """The sink as a background task of the worker: run again 5 s after a failure; the
    HTTP clients serve every run and are closed once, at the end."""

    def __init__(self, sink: WebhookSink, senders: list[WebhookSender]) -> None:
        self.sink = sink
        self.senders = senders

    async def run_forever(self) -> None:
        try:
            while True:
                try:
                    await self.sink.run()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("webhook sink failed; restarting in 5 s")
                    await asyncio.sleep(5)
        finally:
            for each in self.senders:
                await each.close()


def webhook_run(settings: Settings, config: RulesConfig, metrics: WorkerMetrics
                ) -> WebhookRun | None:
    """The sink of this deployment (None without a destination: CXSTREAM_WEBHOOK_URL or
    the rules file's notifications.destinations)."""
    notifications = config.notifications
    urls = {secret.get_secret_value() for secret in notifications.destinations.values()}
    if notifications.default_destination is not None:
        urls.add(notifications.default_destination.get_secret_value())
    if not settings.webhook_url and not urls:
        return None
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
    return WebhookRun(sink, [*senders.values(), *([default] if default else [])])
