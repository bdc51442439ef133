"""Who may see and do what, on two workers of the real broker (requests for a customer
the other worker holds are forwarded with the worker's credential and the caller's name):
an agent sees their teams' customers only, may not erase, and may not read raw tallies
or the scores of agents; an admin erases and gets a receipt. The console's session cookie
holds no token, is Secure behind an https public URL, and failed sign-ins are limited."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml

from cxstream.cli.scrape import total
from cxstream.streams.settings import load_settings
from testkit.support import configure, feedback, free_port, profile, send, start, wait_until

pytestmark = pytest.mark.integration
ALICE, KIM = "alice-token-0123456789abcdef", "kim-token-0123456789abcdef"
ADA, LEA = "ada-token-0123456789abcdef", "lea-token-0123456789abcdef"


def files(tmp_path: Path) -> tuple[Path, Path]:
    users = tmp_path / "users.yaml"
    users.write_text(yaml.safe_dump({"users": [
        {"name": "alice", "token": ALICE, "teams": ["smb-support"]},
        {"name": "kim", "token": KIM, "teams": ["key-accounts"]},
        {"name": "ada", "token": ADA, "role": "admin"},
        {"name": "lea", "token": LEA, "role": "lead"}]}))
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"routing": {"segment_teams": {
        "smb": "smb-support", "enterprise": "key-accounts"}}}))
    return users, rules


def as_user(port: int, token: str) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                        headers={"Authorization": f"Bearer {token}"})


def test_each_door_checks_who_asks_on_either_worker(isolated: dict[str, str],
                                                    tmp_path: Path) -> None:
    users, rules = files(tmp_path)
    values = configure(isolated, users_file=str(users), rules_file=str(rules),
                       sign_in_attempts_per_minute="3")
    settings = load_settings({}, **values)
    second_values = {**values, "web_port": str(free_port()),
                     "data_dir": str(tmp_path / "second"),
                     "public_url": "https://cx.example.test"}
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    first = start(values, tmp_path, "first")
    second = start(second_values, tmp_path, "second")
    try:
        for worker in (first, second):  # each in the group, then both with partitions
            worker.wait_for("cxstream_ready", 1, timeout=120)
        wait_until(lambda: min(total(w.metrics(), "cxstream_partitions_assigned")
                               for w in (first, second)) >= 1, timeout=120)
        customers = [f"s{n}" for n in range(4)] + [f"e{n}" for n in range(4)]
        send(settings, settings.topic_customers, [
            profile(customer_id=c, segment="smb" if c[0] == "s" else "enterprise",
                    owner=None, updated_at=now) for c in customers])
        send(settings, settings.topic_feedback, [
            feedback(event_id=f"{c}-a", customer_id=c, score=8, occurred_at=now,
                     handled_by="agent-7") for c in customers])
        wait_until(lambda: sum(total(w.metrics(), "cxstream_events_folded_total",
                                     kind="feedback") for w in (first, second)) >= 8)
        ports = (int(values["web_port"]), int(second_values["web_port"]))
        for port, erase in zip(ports, ("e2", "e3"), strict=True):
            alice, kim = as_user(port, ALICE), as_user(port, KIM)
            ada, lea = as_user(port, ADA), as_user(port, LEA)
            for c in customers[:6]:  # half of them held by the other worker: forwarded
                mine, theirs = (alice, kim) if c[0] == "s" else (kim, alice)
                assert mine.get(f"/api/customers/{c}").status_code == 200, c
                assert theirs.get(f"/api/customers/{c}").status_code == 404, c
                assert lea.get(f"/api/customers/{c}").status_code == 200, c
            assert alice.post("/api/customers/s0/erase").status_code == 403
            assert kim.post("/api/customers/e0/erase").status_code == 403
            assert alice.get("/api/tallies/segment").status_code == 403
            assert lea.get("/api/tallies/segment").status_code == 200
            assert alice.get("/api/scores/agent").status_code == 403
            assert lea.get("/api/scores/agent").status_code == 200
            assert alice.get("/api/scores/segment").status_code == 200
            erased = ada.post(f"/api/customers/{erase}/erase")
            assert erased.status_code == 200, erased.text
            assert erased.json()["by"] == "ada"
            assert erased.json()["deleted"]["customer_state"] == 1
            assert lea.get(f"/api/customers/{erase}").status_code == 404
        assert "erased by ada" in first.log(100_000) + second.log(100_000)

        # the console: a session, not the token, in the cookie
        for worker_values, secure in ((values, False), (second_values, True)):
            console = httpx.Client(base_url=f"http://127.0.0.1:{worker_values['web_port']}",
                                   timeout=30, follow_redirects=False)
            signed = console.post("/console/login", data={"token": ALICE})
            assert signed.status_code == 303
            cookie = signed.headers["set-cookie"]
            assert ALICE not in cookie and "HttpOnly" in cookie
            assert ("Secure" in cookie) is secure
            session = signed.cookies["cx_token"]
            console.cookies.clear()
            page = console.get("/console", headers={"Cookie": f"cx_token={session}"})
            assert page.status_code == 200 and "alice" in page.text
            assert console.get("/console", headers={"Cookie": f"cx_token={ALICE}"}
                               ).status_code == 303  # a token is no session
            refused = [console.post("/console/login", data={"token": f"wrong-{n}"}
                                    ).status_code for n in range(5)]
            assert refused == [401, 401, 401, 429, 429]
    finally:
        codes = second.stop(), first.stop()
        assert codes == (0, 0), (codes, second.log(), first.log())
