"""The users file (tokens, teams, roles, zones), who sees which alert, and the console's
own small helpers and templates (no Faust)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cxstream.streams.console import (
    due_text,
    environment,
    form_token,
    label,
    local_time,
    value_text,
)
from cxstream.streams.users import MACHINE, Principal, UsersError, hash_token, load_users

TOKEN_A = "alice-token-0123456789abcdef"
API = "the-shared-api-token-of-32-characters-x"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "users.yaml"
    path.write_text(text)
    return path


def test_a_token_or_its_sha256_maps_to_the_user_and_the_api_token_to_the_machine(
        tmp_path: Path) -> None:
    path = write(tmp_path, f"""
users:
  - {{name: alice, token: {TOKEN_A}, teams: [smb-support], timezone: Europe/Paris}}
  - {{name: lea, token_sha256: {hash_token("lea-token-0123456789abcdef")}, role: lead}}
""")
    users = load_users(path, API)
    alice = users.principal(TOKEN_A)
    assert alice == Principal("alice", ("smb-support",), "agent", "Europe/Paris")
    assert users.principal("lea-token-0123456789abcdef").sees_all  # type: ignore[union-attr]
    assert users.principal(API) is MACHINE
    assert users.principal("wrong-token-0123456789") is None and users.principal("") is None
    assert users.from_request({"Authorization": f"Bearer {TOKEN_A}"}, {}) == alice
    assert users.from_request({}, {"cx_token": TOKEN_A}) == alice


@pytest.mark.parametrize(("text", "message"), [
    ("users: [{name: a}]", "give exactly one of token and token_sha256"),
    ("users: [{name: a, token: short}]", "at least 16 characters"),
    ("users: [{name: a, token_sha256: abc}]", "token_sha256"),
    (f"users: [{{name: a, token: {TOKEN_A}, timezone: Mars/Olympus}}]", "unknown time zone"),
    (f"users: [{{name: a, token: {TOKEN_A}}}, {{name: a, token: {TOKEN_A}x}}]",
     "user names must be unique"),
    (f"users: [{{name: a, token: {TOKEN_A}}}, {{name: b, token: {TOKEN_A}}}]",
     "two users have the same token"),
    ("users: [{name: a, token: 0123456789abcdefgh, role: boss}]", "users.0.role"),
    ("users: [", "cannot read"),
])
def test_a_bad_users_file_stops_start_up_naming_the_entry(tmp_path: Path, text: str,
                                                          message: str) -> None:
    with pytest.raises(UsersError, match=message):
        load_users(write(tmp_path, text), None)


def test_who_sees_which_alert() -> None:
    agent = Principal("alice", ("smb-support",))
    assert agent.can_see("alice", "key-accounts")  # her own
    assert agent.can_see("smb-support", "smb-support")  # her team's
    assert agent.can_see("bob", "smb-support")  # assigned to a teammate
    assert not agent.can_see("bob", "key-accounts")
    assert Principal("lea", role="lead").can_see("bob", "key-accounts")
    assert MACHINE.can_see("anyone", None)


def test_due_text_reads_like_a_person_would_say_it() -> None:
    assert due_text(None) == "no deadline"
    assert due_text(30) == "1 min left"
    assert due_text(2 * 3600 + 5 * 60) == "2 h 5 min left"
    assert due_text(-12 * 60) == "overdue by 12 min"
    assert due_text(3 * 86_400 + 3600) == "3 d 1 h left"


def test_labels_and_figures_are_text_never_json() -> None:
    assert label("low_experience_reasons") == "Low experience reasons"
    assert value_text({"nps": 10, "csat": 12.5}) == "Nps 10; Csat 12.5"
    assert value_text(["a", "b"]) == "a, b" and value_text(None) == "—"
    assert value_text(True) == "yes" and value_text(0.25) == "0.25"


def test_times_are_shown_in_the_users_zone() -> None:
    assert local_time("2026-11-23T10:00:00+00:00", "Europe/Paris") == (
        "2026-11-23 11:00 Europe/Paris")
    assert local_time("2026-11-23T10:00:00+00:00", None) == "2026-11-23 10:00 UTC"
    assert local_time(None, None) == "—"


def test_form_tokens_differ_per_user_token() -> None:
    assert form_token("a" * 20) != form_token("b" * 20)
    assert form_token("a" * 20) == form_token("a" * 20)


def test_the_templates_escape_producer_text() -> None:
    row = {"alert_id": "x-1", "severity": "warning", "escalations": 0, "rule": "detractor",
           "customer_id": "<script>alert(1)</script>", "segment": None,
           "summary": "NPS 2 <b>bold</b>", "high_value": None, "customer_value": 10.0,
           "owner": "alice", "status": "open", "due_in_seconds": 60,
           "due": "2026-11-23T10:00:00+00:00"}
    html = environment().get_template("row.html").render(
        row=row, when=lambda iso: local_time(iso, None))
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html


def test_later_compares_times_not_strings() -> None:
    from cxstream.streams.console import later

    assert later("2026-11-23T10:00:00.5+00:00", "2026-11-23T10:00:00+00:00")
    assert not later("2026-11-23T10:00:00+00:00", "2026-11-23T10:00:00.5+00:00")
    assert later("2026-11-23T10:00:00+00:00", "") and later("2026-11-23T10:00:00+00:00", None)
