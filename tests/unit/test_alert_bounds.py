"""Alerts, alert cases, issue windows, priority marks and dead-letter marks at their caps,
built by the real code with the costliest characters, stay under the bounds computed from
the rules and settings (alerts.bounds), and a worker refuses caps that could outgrow the
producer's request limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from cxstream.alerts.bounds import (
    alert_bytes_bound,
    case_bytes_bound,
    deadletter_mark_bytes,
    issue_window_bytes_bound,
    priority_mark_bytes_bound,
)
from cxstream.alerts.building import build_alert, customer_context
from cxstream.alerts.comment_tags import load_tagger
from cxstream.alerts.config import RulesConfig, load_rules
from cxstream.alerts.group_rules import (
    CUSTOMERS_KEPT,
    EXAMPLES_KEPT,
    IssueWindow,
    Signal,
    fold_signal,
)
from cxstream.alerts.lifecycle import HISTORY_BYTES, NOTE_MAX, note, open_case, resolve
from cxstream.alerts.priorities import count_signal, empty_count
from cxstream.schemas.events import MAX_TEXT_CHARS
from cxstream.scoring.customer import (
    TEXT_KEPT,
    CustomerState,
    InteractionRecord,
    Profile,
    ScoreRecord,
)
from cxstream.scoring.plain_customer import to_us
from cxstream.scoring.prediction import prediction_json
from cxstream.streams.ingest.deadletter_once import DeadLetterMark
from tests.worst import LATE, WORST, worst

NOW = datetime(2026, 12, 6, tzinfo=UTC)
#: as long as LATE in JSON, with room for a deadline after it
SOON = LATE.replace(year=9000)
PREFIX = b"2147483647|"  # the partition before a stored value


def worst_state(keep: int) -> CustomerState:
    answer = ScoreRecord(event_id=worst(), survey="csat", score=1, at=LATE, channel=worst(1),
                         touchpoint=worst(2), comment=WORST * TEXT_KEPT, language="x" * 35)
    interaction = InteractionRecord(event_id=worst(), at=LATE, channel=worst(1),
                                    touchpoint=worst(2), outcome="abandoned",
                                    wait_seconds=-1.7976931348623157e308,
                                    sentiment=-0.12345678901234568, text=WORST * TEXT_KEPT,
                                    negative=True)
    return CustomerState(
        customer_id=worst(), profile=Profile(segment=worst(3), value=-1.7976931348623157e308,
                                             owner=worst(4), region=worst(5), updated_at=LATE),
        last_scores={survey: answer.model_copy(update={"survey": survey})
                     for survey in ("nps", "csat", "ces")},
        recent_scores=(answer,) * keep, recent_interactions=(interaction,) * keep,
        prediction=prediction_json([0.12345678901234568, "f" * 12, to_us(LATE), [
            [f"channel_share:{worst(0)}", 0.12345678901234568],
            ["log_value", 709.782712893384],
            [f"channel_share:{worst(1)}", 1.0]]]))


def worst_customer_alert(rules: RulesConfig, topics: list[str]):  # type: ignore[no-untyped-def]
    state = worst_state(rules.context_interactions)
    report = {"high_value": True, "quadrant": "at-risk", "negative_signals_in_window": 2**62,
              "low_experience_reasons": ["latest NPS 0 ≤ 6", "latest CSAT 1 ≤ 2",
                                         "latest CES 1 ≤ 3",
                                         "9223372036854775807 negative interactions in 72 h"]}
    context = customer_context(state, report, rules, WORST * MAX_TEXT_CHARS, topics,
                               "x" * 35)
    summary = (f"NPS 0 from {worst()} about {worst(1)} ({worst(2)}) "
               f"({2**62} triggers folded into this alert)")
    reason = {"survey": "nps", "score": 0, "threshold": 6, "touchpoint": worst(1),
              "channel": worst(2), "high_value": True, "event_id": worst(3),
              "text": WORST * 500, "topics": topics, "sentiment": -0.12345678901234568,
              "rules_fired": ["detractor", "high_value_at_risk", "social_negative"],
              "occurrences": 2**62, "low_experience_reasons": report["low_experience_reasons"]}
    alert = build_alert(rule="high_value_at_risk", severity="critical",
                        alert_key=worst(9), customer_id=worst(), segment=worst(3),
                        owner=worst(4), summary=summary, reason=reason, context=context,
                        event_time=LATE, created_at=SOON, occurrences=2**62, config=rules,
                        team=worst(5))
    return alert.model_copy(update={"resolution": WORST * NOTE_MAX,
                                    "notice_reason": WORST * NOTE_MAX, "notice_at": LATE,
                                    "notice": "resolved", "escalations": 2**62,
                                    "resolutions": 2**62})


@pytest.mark.parametrize("keep", [0, 5, 50])
def test_the_worst_alert_stays_under_its_bound(keep: int) -> None:
    rules = load_rules().model_copy(update={"context_interactions": keep})
    topics = load_tagger().topics
    raw = worst_customer_alert(rules, topics).model_dump_json().encode()
    bound = alert_bytes_bound(rules, topics)
    assert len(raw) <= bound < 2 * len(raw)


def test_a_case_with_a_hundred_longest_notes_stays_under_its_bound() -> None:
    rules = load_rules().model_copy(update={"context_interactions": 50})
    topics = load_tagger().topics
    case = open_case(worst_customer_alert(rules, topics), worst(5), NOW, rules)
    for n in range(150):
        case = note(case, worst(n), WORST * NOTE_MAX, NOW + timedelta(minutes=n))
    history = b"[" + b",".join(c.model_dump_json().encode() for c in case.history) + b"]"
    # without the byte budget, 100 such notes take about 1.2 MB: over the request limit
    assert len(history) <= HISTORY_BYTES and case.history[-1].actor == worst(149)
    case = resolve(case, worst(7), "fixed", WORST * NOTE_MAX, NOW + timedelta(days=1),
                   rules)
    raw = PREFIX + case.model_dump_json().encode()
    bound = case_bytes_bound(rules, topics)
    assert len(raw) <= bound < 2 * len(raw)


def worst_signal(n: int, rules: RulesConfig) -> Signal:
    return Signal(kind="touchpoint", key=worst(1), customer_id=worst(n), event_id=worst(2),
                  at=LATE - timedelta(seconds=1), segment=worst(3), detail="abandoned",
                  comment=(WORST * MAX_TEXT_CHARS)[:280])


def test_the_worst_issue_window_stays_under_its_bound() -> None:
    rules = load_rules()
    window = IssueWindow()
    for n in range(CUSTOMERS_KEPT + 50):  # every signal a new customer, every string long
        window, _ = fold_signal(window, worst_signal(n, rules), n, rules, NOW)
    assert len(window.customers) == CUSTOMERS_KEPT and len(window.examples) == EXAMPLES_KEPT
    assert window.alert is not None
    raw = PREFIX + window.model_dump_json().encode()
    bound = issue_window_bytes_bound(rules)
    assert len(raw) <= bound < 3 * len(raw)


@pytest.mark.parametrize("max_keys", [1, 1_000])
def test_a_customer_marked_in_every_issue_stays_under_its_bound(max_keys: int) -> None:
    count, marks = empty_count(), {}
    groups = [f"touchpoint:{worst(n)}" for n in range(max_keys)] + [
        "touchpoint:(other)", "topic:(other)"]
    for offset, group in enumerate(groups):
        count_signal(count, marks, group, True, -1.7976931348623157e308, True, "i", offset,
                     predicted=True)  # four figures: the most a mark holds
    raw = PREFIX + orjson.dumps(marks)
    bound = priority_mark_bytes_bound(max_keys)
    assert len(raw) <= bound < 2 * len(raw)


def test_a_deadletter_mark_stays_under_its_bound() -> None:
    raw = DeadLetterMark(offset=-(2**63), next=-(2**63)).encode()
    assert len(raw) <= deadletter_mark_bytes() < 2 * len(raw)


def test_group_keys_that_outgrow_a_priority_mark_stop_the_start() -> None:
    from cxstream.streams.settings import load_settings
    from cxstream.streams.table_limits import bound_problems, request_limit, value_bounds

    settings = load_settings({"CXSTREAM_MAX_GROUP_KEYS": "5000"})
    problems = bound_problems(value_bounds(settings, load_rules()), request_limit(settings))
    # a priority mark, and the list of a dimension's group keys (whatever the rules)
    assert len(problems) == 2 and all("CXSTREAM_MAX_GROUP_KEYS" in p for p in problems)
    assert [p.split(":")[0] for p in problems] == ["group_partials", "issue_priorities"]
    shipped = load_settings({})
    assert bound_problems(value_bounds(shipped, load_rules()), request_limit(shipped)) == []
