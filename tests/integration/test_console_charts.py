"""Why scores move, in a real Chromium: a segment whose deliveries went bad raises one
group-drop alert naming delivery as its top driver; the scores page draws every group's
last 30 days and what moved it today; the group's page draws its line with the margin
band and the drivers as bars; the alert's page marks the alert's window on the same
chart. Screenshots under test-artifacts/."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from testkit import support
from testkit.support import ARTIFACTS, CHROMIUM, feedback, profile

pytestmark = pytest.mark.integration
LENA = "lena-charts-token-0123456789"
RULES = {"segment_drop": {"metrics": ["nps"], "dimensions": ["segment"], "min_sample": 20,
                          "baseline_windows": 3, "evaluate_every_seconds": 1},
         "detractor": {"enabled": False}, "high_value_at_risk": {"enabled": False},
         "recurring_issue": {"enabled": False}}


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                                             "(make test installs it as root)")
def test_a_drop_is_explained_and_charted_from_the_alert_to_the_group(
        isolated: dict[str, str], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    settings, base, worker = support.console_worker(
        isolated, tmp_path, users=[{"name": "lena", "token": LENA, "role": "lead"}],
        rules=RULES)
    now = datetime.now(UTC).replace(microsecond=0)
    now = max(now - timedelta(seconds=1), now.replace(hour=0, minute=0, second=0))
    customers = [f"m{n}" for n in range(30)]
    where = {c: "delivery" if n % 2 else "billing" for n, c in enumerate(customers)}
    baseline = [feedback(event_id=f"b{day}-{c}", customer_id=c, score=9 if n % 5 else 7,
                         touchpoint=where[c], occurred_at=(now - timedelta(days=day)).isoformat())
                for day in (3, 2, 1) for n, c in enumerate(customers)]
    today = [feedback(event_id=f"t-{c}", customer_id=c, touchpoint=where[c],
                      score=2 if where[c] == "delivery" else 10, occurred_at=now.isoformat(),
                      comment="Where is my parcel?" if where[c] == "delivery" else None)
             for c in customers]
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        worker.wait_for("cxstream_partitions_assigned", 3, timeout=120)
        support.send(settings, settings.topic_customers, [
            profile(customer_id=c, segment="smb", value=100, updated_at=(
                now - timedelta(days=4)).isoformat()) for c in customers])
        worker.wait_for("cxstream_events_folded_total", len(customers), kind="customer")
        support.send(settings, settings.topic_feedback, baseline + today)

        def drops() -> list[dict[str, object]]:
            return [a for a in support.alerts_on_topic(settings) if a["rule"] == "segment_drop"]
        assert support.wait_until(lambda: len(drops()) == 1, timeout=60)
        [alert] = drops()
        drivers = alert["context"]["drivers"]  # type: ignore[index]
        assert drivers["drivers"][0]["part"] == "delivery", drivers
        assert ": delivery -" in str(alert["summary"])

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                                 args=["--no-sandbox"])
            page = support.signed_in_page(browser, base, LENA)

            page.click("text=Scores")
            page.wait_for_selector("h2:has-text('By segment')")
            spark = page.locator("table.scores tr:has(a:text-is('smb')) svg.trend.compact")
            assert spark.count() == 1
            assert "NPS per day over 30 days" in (spark.get_attribute("aria-label") or "")
            # what moved smb from yesterday to today: delivery, as bars beside its line
            moved = page.locator("table.scores tr:has(a:text-is('smb')) td.moved svg.drivers")
            assert moved.count() == 1
            assert (moved.get_attribute("aria-label") or "").startswith("delivery -")
            assert moved.locator("rect.down").count() >= 1
            assert (moved.locator("text").first.text_content() or "").startswith("delivery -")
            page.screenshot(path=str(ARTIFACTS / "console-scores.png"), full_page=True)

            page.click("table.scores a:text-is('smb')")
            page.wait_for_selector("#trend svg.trend")
            chart = page.locator("#trend svg.trend")
            assert chart.locator("circle").count() == 4  # three days of baseline and today
            assert chart.locator("polygon.band").count() == 1
            first = page.locator("#drivers tr[data-part]").first
            assert first.get_attribute("data-part") == "delivery"
            assert first.locator("td").nth(1).inner_text().startswith("-")
            assert page.locator("#drivers svg.bar rect.down").count() >= 1
            page.screenshot(path=str(ARTIFACTS / "console-group-trend.png"), full_page=True)

            page.goto(f"{base}/console/alerts/{alert['alert_id']}")
            page.wait_for_selector("#trend svg.trend")
            assert page.locator("#trend svg.trend rect.marked").count() == 1
            assert page.locator("#trend tr[data-part]").first.get_attribute(
                "data-part") == "delivery"
            assert "Why it fired" in page.inner_text("main")
            page.screenshot(path=str(ARTIFACTS / "console-drop-alert.png"), full_page=True)
            browser.close()
    finally:
        assert worker.stop() == 0, worker.log()
