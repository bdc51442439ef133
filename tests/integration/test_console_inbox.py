"""The inbox as a team works it, in a real headless Chromium: 1,000 alerts, paged with
their total, filtered, a page acknowledged in one bulk action, some assigned to a user
of the users file, the counts checked against the API, rows that look like their
status, and the page on a phone. Screenshots go to test-artifacts/."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from testkit.support import (
    ARTIFACTS,
    CHROMIUM,
    TOKEN,
    console_worker,
    feedback,
    profile,
    send,
    signed_in_page,
    wait_until,
)

pytestmark = pytest.mark.integration
LENA = "lena-lead-console-token-0123456789"
ALERTS = 1_000


def api_total(base: str, **filters: str) -> int:
    answer = httpx.get(f"{base}/api/alerts", params={**filters, "limit": "1"},
                       headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert answer.status_code == 200, answer.text
    total: int = answer.json()["total"]
    return total


def counts_shown(page: Any) -> tuple[int, int, int]:
    """(first row, last row, total) as the page says them."""
    return tuple(int(page.inner_text(f"#{name}"))  # type: ignore[return-value]
                 for name in ("first", "last", "total"))


@pytest.mark.timeout(900)
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                                             "(make test installs it as root)")
def test_a_lead_pages_filters_and_bulk_acknowledges_1000_alerts(
        isolated: dict[str, str], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    settings, base, worker = console_worker(isolated, tmp_path, users=[
        {"name": "lena", "token": LENA, "role": "lead"},
        {"name": "bob", "token": "bob-console-token-0123456789", "teams": ["smb-support"]}],
        rules={"routing": {"segment_teams": {"smb": "smb-support", "consumer": "care"}},
               "high_value_at_risk": {"enabled": False}})
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        worker.wait_for("cxstream_partitions_assigned", 3, timeout=120)
        segment = {n: "smb" if n % 4 else "consumer" for n in range(ALERTS)}
        send(settings, settings.topic_customers, [
            profile(customer_id=f"k{n}", segment=segment[n], value=100 + n, updated_at=now)
            for n in range(ALERTS)])
        # the profiles first: each alert is routed by its customer's segment
        worker.wait_for("cxstream_events_folded_total", ALERTS, timeout=120, kind="customer")
        send(settings, settings.topic_feedback, [
            feedback(event_id=f"k{n}-nps", customer_id=f"k{n}", score=n % 7,
                     occurred_at=now) for n in range(ALERTS)])
        wait_until(lambda: api_total(base, rule="detractor") == ALERTS, timeout=180)
        time.sleep(3)  # the group rules' alerts (a recurring issue) may follow
        everything = api_total(base)
        assert everything >= ALERTS
        smb = api_total(base, team="smb-support")
        assert 0 < smb < ALERTS
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                                 args=["--no-sandbox"])
            page = signed_in_page(browser, base, LENA)

            # paged, with the total: never a silent cut
            assert counts_shown(page) == (1, 50, everything)
            assert page.locator("#inbox tbody tr").count() == 50
            page.click("a[rel=next]")
            page.wait_for_selector("#first:has-text('51')")
            assert counts_shown(page) == (51, 100, everything)

            # filtered by team: the count is the API's
            page.goto(f"{base}/console")
            page.fill("input[name=team]", "smb-support")
            page.select_option("select[name=limit]", "100")
            page.click("#filters button[type=submit]")
            page.wait_for_selector(f"#total:has-text('{smb}')")
            assert counts_shown(page) == (1, 100, smb)
            page.wait_for_selector("#live:has-text('Live.')", timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / "console-inbox-1000.png"), full_page=False)

            # the page's 100 acknowledged in one action, then 10 assigned to bob
            page.check("#tick-all")
            ticked = {box.get_attribute("value") for box in
                      page.locator("#inbox tbody input[name=alert_id]:checked").all()}
            assert len(ticked) == 100
            page.select_option("#bulk select[name=action]", "ack")
            page.click("#bulk button[type=submit]")
            page.wait_for_selector("text=Done: ack: 100 of 100")
            assert api_total(base, status="acknowledged") == 100
            assert api_total(base, status="acknowledged", team="smb-support") == 100
            assert counts_shown(page)[2] == smb  # the same view, after the action
            # acknowledged rows look acknowledged, open ones open
            def row_looks(status: str) -> set[str]:
                page.goto(f"{base}/console?status={status}&team=smb-support&limit=100")
                looks: set[str] = set(page.evaluate(
                    """() => [...document.querySelectorAll('#inbox tbody tr')].map(row =>
                        row.dataset.status + ' ' + getComputedStyle(row.cells[1])
                        .backgroundColor)"""))
                return looks

            acknowledged, still_open = row_looks("acknowledged"), row_looks("open")
            assert len(acknowledged) == len(still_open) == 1, (acknowledged, still_open)
            assert acknowledged.pop().split(" ", 1)[1] != still_open.pop().split(" ", 1)[1]
            page.goto(f"{base}/console?status=acknowledged&team=smb-support&limit=100")
            shown = {box.get_attribute("value") for box in
                     page.locator("#inbox tbody input[name=alert_id]").all()}
            assert shown == ticked
            for box in page.locator("#inbox tbody input[name=alert_id]").all()[:10]:
                box.check()
            page.select_option("#bulk select[name=action]", "assign")
            page.fill("#bulk input[name=to]", "bob")
            assert page.locator("datalist#users option[value=bob]").count() == 1
            page.click("#bulk button[type=submit]")
            page.wait_for_selector("text=Done: assign: 10 of 10")
            assert api_total(base, owner="bob") == 10

            # the status filter and the owner filter agree with the API
            page.goto(f"{base}/console?status=acknowledged&owner=bob")
            assert counts_shown(page) == (1, 10, 10)
            page.goto(f"{base}/console?status=open&limit=25")
            assert counts_shown(page) == (1, 25, api_total(base, status="open"))

            # a search by words of the alert: a customer, and words of its summary
            assert api_total(base, q="k123") == 1
            page.goto(f"{base}/console")
            page.fill("input[name=q]", "K123")
            page.click("#filters button[type=submit]")
            page.wait_for_selector("#total:has-text('1')")
            assert counts_shown(page) == (1, 1, 1) and "k123" in page.inner_text("#inbox")
            page.goto(f"{base}/console?q=NPS+0+checkout&limit=200")
            assert counts_shown(page)[2] == api_total(base, q="NPS 0 checkout") > 0
            refused = httpx.get(f"{base}/api/alerts", params={"q": "!!!"}, timeout=30,
                                headers={"Authorization": f"Bearer {TOKEN}"})
            assert refused.status_code == 400 and "q:" in refused.json()["error"]

            # on a phone: nothing wider than the screen
            phone = browser.new_page(viewport={"width": 390, "height": 844},
                                     is_mobile=True, locale="en-GB")
            phone.goto(f"{base}/console/login")
            phone.fill("#token", LENA)
            phone.click("button[type=submit]")
            phone.wait_for_selector("h1:has-text('Inbox')")
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, width
            phone.screenshot(path=str(ARTIFACTS / "console-inbox-phone.png"), full_page=False)
            browser.close()
    finally:
        worker.stop()
