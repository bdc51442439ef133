"""Key accounts on the real broker, with the other workers' shares refreshed only hourly:
a new key account's first bad signals, and a customer who becomes high-value while at
risk, alert `critical` within seconds (the worker knows its own customers' values at once).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from cxstream.cli.processes import WorkerProcess
from cxstream.streams.kafka.plain_clients import read_topic
from cxstream.streams.settings import Settings, load_settings
from testkit.support import feedback, interaction, profile, send, start

pytestmark = pytest.mark.integration


def critical_alerts(settings: Settings) -> dict[str, dict[str, Any]]:
    records = asyncio.run(read_topic(settings, settings.topic_alerts))
    alerts = [orjson.loads(r.value) for r in records if r.value]
    return {a["customer_id"]: a for a in alerts if a["severity"] == "critical"}


def wait_for_alerts(settings: Settings, customers: set[str], timeout: float = 30
                    ) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    found = critical_alerts(settings)
    while not customers <= set(found) and time.monotonic() < deadline:
        time.sleep(0.5)
        found = critical_alerts(settings)
    return found


def calls(customer: str, at: datetime) -> list[dict[str, Any]]:
    return [interaction(event_id=f"{customer}-call-{n}", customer_id=customer,
                        outcome=("failure", "escalated", "escalated")[n], touchpoint="support",
                        occurred_at=(at + timedelta(seconds=n)).isoformat()) for n in range(3)]


def test_key_accounts_and_customers_who_become_high_value_at_risk_alert_critical_at_once(
        isolated: dict[str, str], tmp_path: Path) -> None:
    values = {**isolated, "value_band_refresh_seconds": "3600"}
    settings = load_settings({}, **values)
    worker: WorkerProcess = start(values, tmp_path, "worker")
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        worker.wait_for("cxstream_partitions_assigned", 3, timeout=120)
        base = [profile(customer_id=f"base{n}", segment="enterprise", value=1_000.0 * (n + 1),
                        updated_at=(now - timedelta(days=30)).isoformat()) for n in range(20)]
        base.append(profile(customer_id="up1", segment="enterprise", value=150.0,
                            updated_at=(now - timedelta(days=30)).isoformat()))
        send(settings, settings.topic_customers, base)
        worker.wait_for("cxstream_events_folded_total", len(base), kind="customer")
        send(settings, settings.topic_interactions, calls("up1", now - timedelta(minutes=5)))
        worker.wait_for("cxstream_events_folded_total", 3, kind="interaction")
        assert "up1" not in critical_alerts(settings)  # at risk, but not high-value yet

        began = time.monotonic()
        send(settings, settings.topic_customers, [
            profile(customer_id="key1", segment="enterprise", value=2_000_000.0,
                    updated_at=now.isoformat()),
            profile(customer_id="key2", segment="enterprise", value=1_500_000.0,
                    updated_at=now.isoformat()),
            profile(customer_id="up1", segment="enterprise", value=900_000.0,
                    updated_at=now.isoformat())])  # an upsell: now in the top 20 %
        send(settings, settings.topic_interactions, calls("key2", now))  # right after
        time.sleep(1)
        send(settings, settings.topic_feedback, [feedback(
            event_id="key1-nps", customer_id="key1", score=2, comment="Very disappointed.",
            occurred_at=now.isoformat())])
        found = wait_for_alerts(settings, {"key1", "key2", "up1"})
        took = time.monotonic() - began
        assert {"key1", "key2", "up1"} <= set(found), found
        assert "detractor" in found["key1"]["reason"]["rules_fired"]
        assert found["key2"]["rule"] == "high_value_at_risk"
        assert found["up1"]["rule"] == "high_value_at_risk"
        for customer in ("key1", "key2", "up1"):
            assert found[customer]["context"]["high_value"] is True
        print(f"\nthree critical alerts {took:.1f} s after the profiles were sent")
    finally:
        assert worker.stop() == 0, worker.log()
