"""The users file (tokens, teams, roles, zones), who sees which alert, and the console's
own small helpers and templates (no Faust)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cxstream.streams.credentials import ACTING_HEADER, Credentials, signing_key
from cxstream.streams.users import MACHINE, Principal, UsersError, hash_token, load_users
from cxstream.streams.web.console.rendering import (
    due_text,
    environment,
    form_token,
    label,
    local_time,
    value_text,
)

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
    doors = Credentials(users, signing_key(API), 12, API)
    assert doors.from_request({"Authorization": f"Bearer {TOKEN_A}"}, {}) == alice
    assert doors.from_request({}, {"cx_token": TOKEN_A}) is None  # a token is no session


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
    from cxstream.streams.web.console.rendering import later

    assert later("2026-11-23T10:00:00.5+00:00", "2026-11-23T10:00:00+00:00")
    assert not later("2026-11-23T10:00:00+00:00", "2026-11-23T10:00:00.5+00:00")
    assert later("2026-11-23T10:00:00+00:00", "") and later("2026-11-23T10:00:00+00:00", None)


# -- sessions and acting users -------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def doors(tmp_path: Path, token: str = TOKEN_A, api: str | None = API,
          clock: Clock | None = None) -> Credentials:
    path = write(tmp_path, f"""
users:
  - {{name: alice, token: {token}, teams: [smb-support]}}
  - {{name: ada, token: ada-token-0123456789abcdef, role: admin}}
""")
    return Credentials(load_users(path, api), signing_key(api), 12, api,
                       clock or Clock())


def test_a_session_holds_no_token_and_ends_with_its_time_or_a_new_token(
        tmp_path: Path) -> None:
    clock = Clock()
    credentials = doors(tmp_path, clock=clock)
    assert credentials.session_for(API) is None  # the shared token is nobody to sign in
    cookie, alice = credentials.session_for(TOKEN_A)  # type: ignore[misc]
    assert TOKEN_A not in cookie and hash_token(TOKEN_A) not in cookie
    assert alice.name == "alice" and credentials.from_session(cookie) == alice
    assert credentials.from_request({}, {"cx_token": cookie}) == alice
    assert credentials.from_session(cookie[:-2] + "xx") is None  # a forged signature
    clock.now += 12 * 3_600 + 1
    assert credentials.from_session(cookie) is None  # expired
    clock.now -= 12 * 3_600
    changed = doors(tmp_path, token="alice-new-token-0123456789", clock=clock)
    assert changed.from_session(cookie) is None  # her token changed in the users file
    other_deployment = Credentials(credentials.users, signing_key("another-token-" * 3), 12,
                                   None, clock)
    assert other_deployment.from_session(cookie) is None


def test_a_forwarded_request_carries_the_workers_credential_and_a_short_lived_name(
        tmp_path: Path) -> None:
    clock = Clock()
    credentials = doors(tmp_path, clock=clock)
    alice = credentials.users.principal(TOKEN_A)
    headers = credentials.forward_headers(alice)  # type: ignore[arg-type]
    assert headers["Authorization"] == f"Bearer {API}" and TOKEN_A not in str(headers)
    assert credentials.from_request(headers, {}) == alice
    assert credentials.forward_headers(MACHINE) == {"Authorization": f"Bearer {API}"}
    # the name alone, or with a user's token instead of the shared one, is refused
    assert credentials.from_request({ACTING_HEADER: headers[ACTING_HEADER]}, {}) is None
    assert credentials.from_request({**headers, "Authorization": f"Bearer {TOKEN_A}"},
                                    {}) is None
    clock.now += 31
    assert credentials.from_request(headers, {}) is None  # short-lived


def test_only_an_admin_or_the_shared_token_may_erase(tmp_path: Path) -> None:
    credentials = doors(tmp_path)
    assert MACHINE.may_erase
    assert credentials.users.principal("ada-token-0123456789abcdef").may_erase  # type: ignore[union-attr]
    alice = credentials.users.principal(TOKEN_A)
    assert alice is not None and not alice.may_erase and not alice.sees_all
