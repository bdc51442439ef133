"""What a worker serves without a token, on the real broker: no table contents, no
routing, and /metrics with no customer or group data unless turned on."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from cxstream.streams.settings import load_settings
from testkit.support import feedback, profile, send, start

pytestmark = pytest.mark.integration
TOKEN = "closed-doors-token-of-32-characters-or-more"


def test_faust_views_are_off_and_metrics_hold_no_customer_or_group_data(
        isolated: dict[str, str], tmp_path: Path) -> None:
    values = {**isolated, "api_token": TOKEN}
    settings = load_settings({}, **values)
    worker = start(values, tmp_path, "worker")
    base = f"http://127.0.0.1:{settings.web_port}"
    try:
        worker.wait_for("cxstream_partitions_assigned", 3, timeout=120)
        send(settings, settings.topic_customers, [profile(customer_id="secret-customer-7",
                                                          segment="secret-segment")])
        send(settings, settings.topic_feedback, [feedback(
            customer_id="secret-customer-7", touchpoint="secret-touchpoint")])
        worker.wait_for("cxstream_events_folded_total", 1, kind="feedback")
        for path in ("/table/customer_to_state/", "/router/", "/graph/"):
            assert httpx.get(base + path).status_code == 404, path
        metrics = httpx.get(base + "/metrics").text
        assert "cxstream_events_folded_total" in metrics  # the check reads real output
        for secret in ("secret-customer-7", "secret-segment", "secret-touchpoint",
                       "cxstream_group_answers"):
            assert secret not in metrics, secret
        assert httpx.get(base + "/api/customers/secret-customer-7").status_code == 401
        answer = httpx.get(base + "/api/customers/secret-customer-7",
                           headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status_code == 200 and answer.json()["profile"]["segment"] == (
            "secret-segment")
    finally:
        assert worker.stop() == 0, worker.log()
