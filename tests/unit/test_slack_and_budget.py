"""Slack Block Kit bodies (checked against strict models of the blocks), escaping of
producer text, and the per-recipient alert budget with its digest (no Faust)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from cxstream.alerts.budget import AlertBudget
from cxstream.alerts.slack import (
    ButtonElement,
    HeaderBlock,
    Message,
    PlainText,
    alert_message,
    digest_message,
    escape,
    follow_up_message,
    slack_time,
)
from cxstream.schemas.outputs import Alert

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CONSOLE = "https://cx.example.com"


def alert(**overrides: Any) -> Alert:
    data: dict[str, Any] = {
        "alert_id": "detractor-abc", "rule": "detractor", "severity": "warning",
        "customer_id": "c-1", "segment": "enterprise", "owner": "am.a", "team": "key-accounts",
        "summary": "NPS 3 from c-1 about <!channel>", "reason": {"score": 3},
        "context": {"customer_value": 12_500.0, "high_value": True, "quadrant": "at-risk",
                    "comment": "Parcel <@U999> never came & nobody answered", "topics":
                    ["delivery"], "comment_language": "en",
                    "recent_interactions": [{"channel": "phone", "touchpoint": "<!here>",
                                             "outcome": "escalated"}]},
        "event_time": T0, "created_at": T0, "act_by": T0 + timedelta(hours=24)}
    data.update(overrides)
    return Alert.model_validate(data)


def texts(message: Message) -> list[str]:
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str) and node.get("type") == "mrkdwn":
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(message.model_dump())
    return found


def test_escape_neutralises_mentions_links_and_entities() -> None:
    assert escape("<!channel> & <https://evil|click>") == (
        "&lt;!channel&gt; &amp; &lt;https://evil|click&gt;")


def test_an_alert_message_has_header_fields_quoted_comment_signals_and_a_button() -> None:
    message = alert_message(alert(), CONSOLE, {"am.a": "U123"})
    body = message.model_dump(exclude_none=True)
    types = [block["type"] for block in body["blocks"]]
    assert types[0] == "header" and "actions" in types
    fields = next(b["fields"] for b in body["blocks"] if b.get("fields"))
    labels = [f["text"].split("\n")[0] for f in fields]
    assert labels == ["*Customer*", "*Segment*", "*Value band*", "*Owner*", "*Due*",
                      "*Quadrant*"]
    assert "<@U123>" in fields[3]["text"]  # the owner is mentioned
    assert "<!date^" in fields[4]["text"] and "2026-11-24 10:00 UTC" in fields[4]["text"]
    joined = "\n".join(texts(message))
    assert "> Parcel &lt;@U999&gt; never came &amp; nobody answered" in joined
    assert "topics delivery" in joined and "&lt;!here&gt;" in joined
    button = next(b for b in body["blocks"] if b["type"] == "actions")["elements"][0]
    assert button["url"] == f"{CONSOLE}/console/alerts/detractor-abc"


def test_no_producer_text_reaches_slack_unescaped() -> None:
    message = alert_message(alert(), CONSOLE, {})
    for text in texts(message):
        for fragment in ("<!channel>", "<!here>", "<@U999>"):
            assert fragment not in text
        # the only control sequences left are the ones we made: dates and mentions
        for start in [i for i, ch in enumerate(text) if ch == "<"]:
            assert text[start:].startswith(("<!date^", "<@", "<!subteam^", "<http"))


@given(st.text(max_size=5_000))
def test_any_comment_gives_a_valid_message_with_no_raw_angle_brackets(comment: str) -> None:
    data = alert(context={"comment": comment, "topics": [comment[:30]]})
    message = alert_message(data, CONSOLE, {}, comment_max=300)
    quoted = [t for t in texts(message) if t.startswith(">")]
    for text in quoted:
        assert "<" not in text.replace("&lt;", "")
    Message.model_validate(message.model_dump())  # still valid after a round trip


def test_the_block_models_refuse_what_slack_refuses() -> None:
    with pytest.raises(ValidationError):
        HeaderBlock(text=PlainText(text="x" * 151))
    with pytest.raises(ValidationError):
        ButtonElement(text=PlainText(text="open"), url="javascript:alert(1)", action_id="a")
    with pytest.raises(ValidationError):
        Message(text="t", blocks=[])
    with pytest.raises(ValidationError):
        Message.model_validate({"text": "t", "blocks": [{"type": "section",
                                                         "unknown": 1}]})


def test_follow_ups_name_the_alert_they_follow() -> None:
    escalated = alert(notice="escalated", severity="critical", owner="leads", escalations=1,
                      notice_reason="not acknowledged by 2026-11-24T10:00:00+00:00")
    body = json.dumps(follow_up_message(escalated, CONSOLE, {}).model_dump())
    assert "Escalated" in body and "detractor-abc" in body and "not acknowledged" in body
    resolved = alert(notice="resolved", status="resolved", resolution="auto",
                     notice_reason="later NPS answer of 10")
    body = json.dumps(follow_up_message(resolved, CONSOLE, {}).model_dump())
    assert "resolved by itself" in body and "later NPS answer of 10" in body


def test_a_digest_lists_every_held_alert_with_a_link_within_slack_limits() -> None:
    held = [alert(alert_id=f"a-{n}", summary=f"summary <{n}>") for n in range(120)]
    message = digest_message(held, CONSOLE, "key-accounts")
    joined = "\n".join(texts(message))
    assert message.blocks[0].text.text == "120 more alerts for key-accounts"  # type: ignore[union-attr]
    assert len(message.blocks) <= 50
    assert joined.count("/console/alerts/a-") >= 100 and "summary &lt;7&gt;" in joined


def test_slack_time_without_a_time() -> None:
    assert slack_time(None) == "—"


def test_the_budget_posts_n_per_rolling_hour_holds_the_rest_and_never_holds_critical() -> None:
    budget: AlertBudget[str] = AlertBudget(per_hour=3, digest_minutes=15)
    admitted = [budget.admit("team-a", "warning", f"w{n}", n * 60.0) for n in range(5)]
    assert admitted == [True, True, True, False, False]
    assert budget.admit("team-a", "critical", "c1", 300.0) is True
    assert budget.admit("team-b", "warning", "b1", 300.0) is True  # per recipient
    assert budget.held() == 2
    assert budget.due(180.0 + 15 * 60 - 1) == []
    [(recipient, items)] = budget.due(180.0 + 15 * 60)
    assert recipient == "team-a" and items == ["w3", "w4"]
    assert budget.held() == 2  # still held until the digest is posted
    budget.posted("team-a", items)
    assert budget.held() == 0 and budget.due(10_000.0) == []
    # an hour after the first posts, single posts are allowed again
    assert budget.admit("team-a", "warning", "w9", 3_600.0) is True


@given(st.lists(st.tuples(st.sampled_from(["info", "warning", "critical"]),
                          st.floats(min_value=0, max_value=30.0)), max_size=60))
def test_never_more_than_n_non_critical_single_posts_in_any_hour(
        arrivals: list[tuple[str, float]]) -> None:
    budget: AlertBudget[int] = AlertBudget(per_hour=4, digest_minutes=5)
    now = 0.0
    posted: list[float] = []
    for n, (severity, gap) in enumerate(arrivals):
        now += gap * 60
        if budget.admit("r", severity, n, now) and severity != "critical":
            posted.append(now)
    for start in posted:
        assert sum(1 for t in posted if start <= t < start + 3_600) <= 4
