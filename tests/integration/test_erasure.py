"""Right to erasure on the real broker: `cxstream customer erase` removes a customer's
state and remembered ids through the changelog, the API answers 404 afterwards (after a
restart too), its answers leave the groups' recent answers, and the group tallies keep
their answers, which hold no id."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cxstream.cli.consistency import batch_tallies, differences, stream_tallies
from cxstream.cli.main import app
from cxstream.streams.kafka.plain_clients import read_topic
from cxstream.streams.settings import load_settings
from testkit.support import feedback, interaction, profile, send, start

pytestmark = pytest.mark.integration
TOKEN = "erasure-test-token-of-32-characters-or-more"


def test_an_erased_customer_is_gone_from_state_and_api_and_stays_in_the_tallies(
        isolated: dict[str, str], tmp_path: Path) -> None:
    import httpx

    values = {**isolated, "api_token": TOKEN}
    settings = load_settings({}, **values)
    worker = start(values, tmp_path, "worker")
    base = f"http://127.0.0.1:{settings.web_port}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    env = {f"CXSTREAM_{k.upper()}": v for k, v in values.items()}
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        worker.wait_for("cxstream_partitions_assigned", 3, timeout=120)
        send(settings, settings.topic_customers, [profile(customer_id=c, value=v)
                                                  for c, v in (("e1", 500.0), ("e2", 50.0))])
        worker.wait_for("cxstream_events_folded_total", 2, kind="customer")
        send(settings, settings.topic_feedback, [feedback(
            event_id=f"{c}-{n}", customer_id=c, score=n,
            occurred_at=(now - timedelta(minutes=n)).isoformat(),
            comment=f"Call me back on {c}'s private number 600 00 00{n}")
            for c in ("e1", "e2") for n in range(3)])
        send(settings, settings.topic_interactions, [interaction(
            event_id="e1-call", customer_id="e1", text="Call me at +370 600 00000")])
        worker.wait_for("cxstream_events_folded_total", 6, kind="feedback")
        worker.wait_for("cxstream_events_folded_total", 1, kind="interaction")
        assert httpx.get(f"{base}/api/customers/e1", headers=auth).status_code == 200
        before = stream_tallies(base, TOKEN)

        def alerts_of(customer: str) -> list[dict[str, object]]:
            rows: list[dict[str, object]] = httpx.get(
                f"{base}/api/alerts", params={"customer_id": customer},
                headers=auth).json()["alerts"]
            return rows

        deadline_at = time.monotonic() + 60
        while not (alerts_of("e1") and alerts_of("e2")) and time.monotonic() < deadline_at:
            time.sleep(0.5)
        cases = alerts_of("e1")
        assert cases, "e1's detractor answers raise an alert"
        case = cases[0]
        assert _answering(base, auth) == {"e1", "e2"}  # the group's recent answers
        result = CliRunner().invoke(app, ["customer", "erase", "e1", "--yes", "-o", "json"],
                                    env=env)
        assert result.exit_code == 0, result.output
        deleted = json.loads(result.stdout)["deleted"]
        assert deleted["alert_cases_redacted"] == len(cases)
        assert deleted["group_answers"] == 3 * 4  # segment, channel, touchpoint, stage
        assert _answering(base, auth) == {"e2"}
        assert alerts_of("e1") == [] and len(alerts_of("e2")) == 1
        shown = httpx.get(f"{base}/api/alerts/{case['alert_id']}", headers=auth).json()
        assert "private number" not in json.dumps(shown) and '"e1"' not in json.dumps(shown)
        assert shown["history"][-1]["action"] == "redacted"
        lifecycle = {record.key: record.value for record in asyncio.run(read_topic(
            settings, settings.topic_alert_lifecycle))}  # the latest record per alert
        latest = lifecycle[str(case["alert_id"]).encode()] or b""
        assert b"private number" not in latest and b'"e1"' not in latest
        assert httpx.get(f"{base}/api/customers/e1", headers=auth).status_code == 404
        assert httpx.get(f"{base}/api/customers/e2", headers=auth).status_code == 200
        again = CliRunner().invoke(app, ["customer", "erase", "e1", "--yes"], env=env)
        assert again.exit_code == 1 and "404" in again.output
        assert stream_tallies(base, TOKEN) == before  # answers stay counted, without ids
        assert differences(batch_tallies(settings), before) == []

        latest: dict[bytes, bytes | None] = {}
        for record in asyncio.run(read_topic(
                settings, f"{settings.app_id}-customer_to_state-changelog")):
            latest[record.key or b""] = record.value
        assert latest[b"e1"] is None  # a tombstone: compaction drops every older value
        assert latest[b"e2"] is not None and b"e2-0" in latest[b"e2"]
        # the priorities' record of which issues e1 counts in (their answers were
        # negative): deleted too; the counts themselves hold no ids
        marks: dict[bytes, bytes | None] = {}
        for record in asyncio.run(read_topic(
                settings, f"{settings.app_id}-issue_priorities-changelog")):
            if (record.key or b"").startswith(b"m|"):
                marks[record.key or b""] = record.value
        erased = [key for key in marks if key.endswith(b"|e1")]
        assert erased and all(marks[key] is None for key in erased)
        assert any(key.endswith(b"|e2") and marks[key] is not None for key in marks)
        groups: dict[bytes, bytes | None] = {}  # the groups' recent answers, as stored
        for record in asyncio.run(read_topic(
                settings, f"{settings.app_id}-group_partials-changelog")):
            if b"|~answers|" in (record.key or b""):
                groups[record.key or b""] = record.value
        kept = [value for value in groups.values() if value is not None]  # None: emptied
        assert len(kept) == 4 and all(b"e2-0" in value and b"e1" not in value
                                      for value in kept)

        assert worker.stop() == 0, worker.log()
        worker.start()  # recovery from the changelog: still gone
        worker.wait_for("cxstream_partitions_assigned", 3, timeout=120)
        deadline = asyncio.run(_status_after_recovery(base, auth))
        assert deadline == (404, 200)
        assert _answering(base, auth) == {"e2"}
    finally:
        if worker.running:
            assert worker.stop() == 0, worker.log()


def _answering(base: str, auth: dict[str, str]) -> set[str]:
    """The customers among the recent answers of the answers' touchpoint, and their
    comments checked against them."""
    import httpx

    for _ in range(60):  # 503 until the recovered partitions are read into the index
        found = httpx.get(f"{base}/api/scores/touchpoint/checkout/answers", headers=auth,
                          params={"limit": "100"}, timeout=30)
        if found.status_code != 503:
            break
        time.sleep(1)
    assert found.status_code == 200, found.text
    answers = found.json()["answers"]
    assert all(f"on {a['customer_id']}'s private" in a["comment"] for a in answers)
    return {answer["customer_id"] for answer in answers}


async def _status_after_recovery(base: str, auth: dict[str, str]) -> tuple[int, int]:
    import httpx

    async with httpx.AsyncClient(base_url=base, headers=auth, timeout=10) as client:
        for _ in range(60):
            known = (await client.get("/api/customers/e2")).status_code
            if known == 200:
                return (await client.get("/api/customers/e1")).status_code, known
            await asyncio.sleep(1)
    return -1, -1
