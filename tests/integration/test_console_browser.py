"""The support console in a real headless Chromium (Debian's package, driven by
Playwright): a user signs in with their token, sees an alert raised by the pipeline
appear without reloading, opens it, reads the customer's comment, acknowledges it, and
the API shows the new status; a lead goes from a group's score to the answers and
comments that make it. Screenshots of the inbox and of the alert page are saved
under test-artifacts/."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from testkit.support import (
    ARTIFACTS,
    CHROMIUM,
    TOKEN,
    console_worker,
    feedback,
    interaction,
    profile,
    send,
    signed_in_page,
)

pytestmark = pytest.mark.integration
ALICE = "alice-console-token-0123456789"
LENA = "lena-console-token-0123456789"
COMMENT = "Le colis n'est jamais arrivé et personne ne répond <b>au téléphone</b>"


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                                             "(make test installs it as root)")
def test_a_user_signs_in_sees_an_alert_arrive_live_reads_it_and_acknowledges_it(
        isolated: dict[str, str], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    settings, base, worker = console_worker(
        isolated, tmp_path, users=[{"name": "alice", "token": ALICE, "teams": ["smb-support"]},
                                   {"name": "lena", "token": LENA, "role": "lead"}],
        rules={"routing": {"segment_teams": {"smb": "smb-support"}},
               "high_value_at_risk": {"enabled": False}})
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        worker.wait_for("cxstream_partitions_assigned", 3, timeout=120)
        send(settings, settings.topic_customers, [
            profile(customer_id="chloe", segment="smb", value=2400, region="FR",
                    updated_at=now)])
        send(settings, settings.topic_interactions, [interaction(
            event_id="chloe-call", customer_id="chloe", channel="phone", touchpoint="support",
            outcome="abandoned", occurred_at=now)])
        worker.wait_for("cxstream_events_folded_total", 2)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                                 args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 900},
                                    timezone_id="Europe/Paris", locale="en-GB")
            page.goto(f"{base}/console")
            assert page.url.endswith("/console/login")  # signed out: the login page
            page.fill("#token", ALICE)
            page.click("button[type=submit]")
            page.wait_for_selector("h1:has-text('Inbox')")
            assert "Signed in as alice" in page.inner_text("header")
            page.wait_for_selector("#live:has-text('Live.')", timeout=30_000)
            page.evaluate("window.stillTheSamePage = true")

            # Playwright's sync API runs an event loop here: send from another thread
            with ThreadPoolExecutor(1) as pool:
                pool.submit(send, settings, settings.topic_feedback, [feedback(
                    event_id="chloe-nps", customer_id="chloe", score=2, occurred_at=now,
                    comment=COMMENT, language="fr", touchpoint="delivery")]).result()
            row = page.wait_for_selector("tr[data-alert-id]", timeout=60_000)
            assert page.evaluate("window.stillTheSamePage") is True  # no reload
            alert_id = row.get_attribute("data-alert-id")
            assert alert_id and "chloe" in row.inner_text()
            assert "left" in row.inner_text()  # time left to act_by
            shown_due = page.inner_text(f"#alert-{alert_id} time")
            assert "UTC" not in shown_due  # shown in the browser's zone
            page.screenshot(path=str(ARTIFACTS / "console-inbox.png"), full_page=True)

            page.click(f"#alert-{alert_id} a")
            page.wait_for_selector("blockquote.comment")
            assert page.inner_text("blockquote.comment") == COMMENT  # escaped, not markup
            body = page.inner_text("main")
            assert "Back to the inbox" in body and "{" not in body  # no raw JSON
            assert "Why it fired" in body and "Threshold" in body
            assert "abandoned" in body  # the timeline of recent interactions
            page.screenshot(path=str(ARTIFACTS / "console-alert.png"), full_page=True)

            page.click("#ack")
            page.wait_for_selector("text=Done: Ack")
            assert page.inner_text("#status") == "acknowledged"

            answer = httpx.get(f"{base}/api/alerts/{alert_id}",
                               headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
            assert answer.status_code == 200, answer.text
            data = answer.json()
            assert data["alert"]["status"] == "acknowledged"
            assert data["history"][-1]["action"] == "acknowledged"
            assert data["history"][-1]["actor"] == "alice"

            page.click("text=Scores")
            page.wait_for_selector("h2:has-text('By segment')")
            assert "smb" in page.inner_text("main")  # chloe's answer, with its n
            assert page.query_selector("table.scores a") is None  # answers: for leads

            # chloe's abandoned call (silent) and her answer about the delivery
            page.click("text=Priorities")
            page.wait_for_selector("#priorities")
            support = page.inner_text("tr[data-issue='touchpoint:support']")
            delivery = page.inner_text("tr[data-issue='touchpoint:delivery']")
            assert "few" in support and "2,400" in support and "\t1\t" in support
            assert "few" in delivery and "2,400" in delivery
            page.screenshot(path=str(ARTIFACTS / "console-priorities.png"), full_page=True)

            # a lead goes from a group's score to the answers and comments behind it
            lead = signed_in_page(browser, base, LENA, timezone_id="Europe/Paris")
            lead.click("text=Scores")
            lead.click("table.scores a:text-is('delivery')")
            lead.wait_for_selector("#group-answers")
            assert "Touchpoint" in lead.inner_text("h1") and "delivery" in lead.inner_text("h1")
            shown = lead.inner_text("#group-answers tr[data-event='chloe-nps']")
            assert "chloe" in shown and "\t2\t" in shown
            assert lead.inner_text("#group-answers blockquote") == COMMENT  # escaped
            assert "1 of 1 found" in lead.inner_text("main")
            assert lead.inner_text("#group-scores tr[data-window='day'] td:nth-child(3)") == "1"
            lead.screenshot(path=str(ARTIFACTS / "console-group.png"), full_page=True)
            lead.select_option("#answers-form select[name=metric]", "csat")
            lead.click("#answers-form button[type=submit]")
            lead.wait_for_selector("text=No answers kept for this choice.")
            lead.close()

            # an open live stream does not hold up the worker's stop
            page.goto(f"{base}/console")
            page.wait_for_selector("#live:has-text('Live.')", timeout=30_000)
            assert f"alert-{alert_id}" in page.content()  # acknowledged: still in the inbox
            assert worker.stop() == 0, worker.log()
            browser.close()
    finally:
        assert worker.stop() == 0, worker.log()
