"""The views for orchestrators and Prometheus: /healthz, /readyz (no token, no data) and
/metrics (open to the scraper, like every Prometheus endpoint)."""

from __future__ import annotations

from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from cxstream.streams.health.readiness import readiness
from cxstream.streams.health.watchdog import StallWatchdog
from cxstream.streams.metrics import WorkerMetrics


def register_health_views(app: faust.App, metrics: WorkerMetrics,
                          watchdog: StallWatchdog) -> None:
    @app.page("/healthz")
    async def alive(web: Any, request: Any) -> Any:
        return web.json({"alive": True})

    @app.page("/readyz")
    async def ready(web: Any, request: Any) -> Any:
        found = readiness(app, watchdog)
        return web.json({"ready": found.ready, "reason": found.reason},
                        status=200 if found.ready else 503)

    @app.page("/metrics")
    async def serve_metrics(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(metrics.registry),
                         content_type=CONTENT_TYPE_LATEST.split(";")[0])
