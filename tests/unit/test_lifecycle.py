"""Alert lifecycle: every transition allowed and refused, deadlines and escalation with an
injected clock, and auto-resolve for each customer rule (no Faust)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cxstream.alerts import lifecycle as lc
from cxstream.alerts.config import Lifecycle, RulesConfig, load_rules
from cxstream.alerts.cooldowns import OpenAlert, open_alerts, with_open_alerts
from cxstream.alerts.customer_alerts import settle
from cxstream.schemas.outputs import Alert
from cxstream.scoring.customer import CustomerState
from testkit.support import STATE_RULES, alerts_for, answer, fb, ix, with_profile

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CONFIG = load_rules().model_copy(update={"lifecycle": Lifecycle(
    escalation_targets={"key-accounts": "key-accounts-leads", "key-accounts-leads": "cx-heads"},
    max_escalations=2)})


def alert(**overrides: Any) -> Alert:
    data: dict[str, Any] = {
        "alert_id": "detractor-1", "rule": "detractor", "severity": "warning",
        "customer_id": "c-1", "segment": "enterprise", "owner": "am.a", "team": "key-accounts",
        "summary": "NPS 3 from c-1", "reason": {"score": 3}, "context": {},
        "event_time": T0, "created_at": T0, "act_by": T0 + timedelta(hours=24)}
    data.update(overrides)
    return Alert.model_validate(data)


def new_case(**overrides: Any) -> lc.AlertCase:
    return lc.open_case(alert(**overrides), "key-accounts", T0, CONFIG)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def test_a_raised_alert_opens_a_case_with_its_deadline_and_one_history_entry() -> None:
    case = new_case()
    assert case.status == "open" and case.owner == "am.a" and case.team == "key-accounts"
    assert case.act_by == at(24) and case.deadline() == at(24)
    assert [c.action for c in case.history] == ["raised"]
    assert case.last_change.actor == lc.SYSTEM


def test_the_same_alert_message_read_again_changes_nothing_and_a_fold_updates() -> None:
    case = new_case()
    assert lc.take_alert(case, alert(), "key-accounts", at(1), CONFIG) is None
    updated = lc.take_alert(case, alert(occurrences=2, severity="critical"), "key-accounts",
                            at(1), CONFIG)
    assert updated is not None and updated.severity == "critical"
    assert updated.alert.occurrences == 2 and updated.last_change.action == "updated"


def test_acknowledge_then_resolve_with_who_when_and_why() -> None:
    case = lc.acknowledge(new_case(), "alice", at(1), CONFIG)
    assert case.status == "acknowledged" and case.acknowledged_at == at(1)
    assert case.resolve_by == at(1 + CONFIG.lifecycle.resolve_hours["warning"])
    case = lc.resolve(case, "alice", "contacted", "called back, refund agreed", at(2), CONFIG)
    assert case.status == "resolved" and case.resolution == "contacted"
    last = case.last_change
    assert (last.action, last.actor, last.at, last.reason) == (
        "resolved", "alice", at(2), "called back, refund agreed")
    assert [c.action for c in case.history] == ["raised", "acknowledged", "resolved"]


@pytest.mark.parametrize(("status", "verb"), [
    ("acknowledged", "acknowledge"), ("resolved", "acknowledge"), ("resolved", "assign"),
    ("resolved", "snooze"), ("resolved", "resolve"), ("snoozed", "snooze")])
def test_transitions_the_status_does_not_allow_are_refused(status: str, verb: str) -> None:
    case = new_case()
    if status == "acknowledged":
        case = lc.acknowledge(case, "alice", at(1), CONFIG)
    elif status == "resolved":
        case = lc.resolve(case, "alice", "fixed", None, at(1), CONFIG)
    else:
        case = lc.snooze(case, "alice", at(3), at(1), CONFIG)
    commands = {
        "acknowledge": lambda: lc.acknowledge(case, "bob", at(2), CONFIG),
        "assign": lambda: lc.assign(case, "bob", "carol", at(2)),
        "snooze": lambda: lc.snooze(case, "bob", at(5), at(2), CONFIG),
        "resolve": lambda: lc.resolve(case, "bob", "fixed", None, at(2), CONFIG)}
    with pytest.raises(lc.TransitionRefused, match=f"cannot {verb} an alert that is {status}"):
        commands[verb]()


def test_allowed_transitions_from_open_acknowledged_and_snoozed() -> None:
    for start in ("open", "acknowledged", "snoozed"):
        case = new_case()
        if start == "acknowledged":
            case = lc.acknowledge(case, "a", at(0.5), CONFIG)
        if start == "snoozed":
            case = lc.snooze(case, "a", at(4), at(0.5), CONFIG)
        assert lc.assign(case, "a", "carol", at(1)).owner == "carol"
        assert lc.note(case, "a", "tried to call", at(1)).last_change.reason == "tried to call"
        assert lc.resolve(case, "a", "fixed", None, at(1), CONFIG).status == "resolved"
        if start != "acknowledged":
            assert lc.acknowledge(case, "a", at(1), CONFIG).status == "acknowledged"
    resolved = lc.resolve(new_case(), "a", "fixed", None, at(1), CONFIG)
    assert lc.note(resolved, "a", "customer thanked us", at(2)).status == "resolved"


def test_bad_commands_are_invalid_not_refused() -> None:
    case = new_case()
    with pytest.raises(lc.InvalidCommand, match="category: one of"):
        lc.resolve(case, "a", "shrugged", None, at(1), CONFIG)
    with pytest.raises(lc.InvalidCommand, match="not in the future"):
        lc.snooze(case, "a", at(1), at(1), CONFIG)
    with pytest.raises(lc.InvalidCommand, match="at most 168 hours"):
        lc.snooze(case, "a", at(200), at(1), CONFIG)
    with pytest.raises(lc.InvalidCommand, match="empty"):
        lc.note(case, "a", "   ", at(1))
    with pytest.raises(lc.InvalidCommand, match="whom"):
        lc.assign(case, "a", "", at(1))


def test_an_unacknowledged_alert_escalates_at_act_by_one_step_up_to_its_target() -> None:
    case = new_case()
    assert lc.tick(case, at(24) - timedelta(seconds=1), CONFIG) is None
    escalated = lc.tick(case, at(24), CONFIG)
    assert escalated is not None
    assert escalated.severity == "critical" and escalated.owner == "key-accounts-leads"
    assert escalated.escalations == 1 and escalated.status == "open"
    assert escalated.act_by == at(24 + CONFIG.response_hours["critical"])
    assert lc.missed_deadline(escalated.last_change) == "acknowledged"
    again = lc.tick(escalated, escalated.act_by, CONFIG)  # type: ignore[arg-type]
    assert again is not None and again.owner == "cx-heads" and again.severity == "critical"
    assert lc.tick(again, again.act_by, CONFIG) is None  # max_escalations reached


def test_an_acknowledged_alert_not_resolved_in_time_escalates_the_same_way() -> None:
    case = lc.acknowledge(new_case(), "alice", at(1), CONFIG)
    assert lc.tick(case, at(24), CONFIG) is None  # act_by no longer applies
    due = case.resolve_by
    assert due is not None
    escalated = lc.tick(case, due, CONFIG)
    assert escalated is not None and escalated.status == "acknowledged"
    assert lc.missed_deadline(escalated.last_change) == "resolved"
    assert escalated.severity == "critical" and escalated.owner == "key-accounts-leads"


def test_a_team_without_target_keeps_the_alert_one_step_up() -> None:
    case = lc.open_case(alert(severity="info"), "smb-support", T0, CONFIG)
    escalated = lc.escalate(case, at(72), CONFIG)
    assert escalated.owner == "smb-support" and escalated.severity == "warning"


def test_a_snooze_holds_escalation_and_wakes_with_a_grace_period() -> None:
    case = lc.snooze(new_case(), "alice", at(30), at(1), CONFIG)
    assert lc.tick(case, at(25), CONFIG) is None  # act_by passed, but snoozed
    woke = lc.tick(case, at(30), CONFIG)
    assert woke is not None and woke.status == "open" and woke.last_change.action == "woke"
    assert woke.act_by == at(30) + timedelta(minutes=CONFIG.lifecycle.snooze_grace_minutes)


def test_a_new_trigger_reopens_a_resolved_alert() -> None:
    case = lc.resolve(new_case(), "alice", "fixed", None, at(1), CONFIG)
    reopened = lc.take_alert(case, alert(occurrences=2), "key-accounts", at(2), CONFIG)
    assert reopened is not None and reopened.status == "open"
    assert reopened.last_change.action == "reopened" and reopened.resolution is None


def test_auto_resolve_resolves_once_with_the_reason() -> None:
    case = lc.auto_resolve(new_case(), "later NPS answer of 10", at(3))
    assert case is not None and case.status == "resolved" and case.resolution == "auto"
    assert case.last_change.reason == "later NPS answer of 10"
    assert lc.auto_resolve(case, "again", at(4)) is None


def test_the_follow_up_notice_carries_the_new_severity_owner_and_reason() -> None:
    escalated = lc.escalate(new_case(), at(24), CONFIG)
    notice = lc.as_notice(escalated)
    assert notice.notice == "escalated" and notice.severity == "critical"
    assert notice.owner == "key-accounts-leads" and notice.escalations == 1
    assert notice.alert_id == "detractor-1" and "not acknowledged" in notice.notice_reason  # type: ignore[operator]
    resolved = lc.as_notice(lc.resolve(new_case(), "a", "fixed", "done", at(1), CONFIG))
    assert resolved.notice == "resolved" and resolved.status == "resolved"


def test_age_bands() -> None:
    case = new_case()
    assert [lc.age_band(case, at(h)) for h in (0.5, 2, 5, 30)] == list(lc.AGE_BANDS)


@given(st.lists(st.sampled_from(["ack", "assign", "note", "snooze", "resolve", "tick",
                                 "raise"]), max_size=25))
def test_any_sequence_keeps_the_history_ordered_and_the_status_consistent(
        steps: list[str]) -> None:
    case = new_case()
    now = T0
    occurrences = 1
    for step in steps:
        now += timedelta(hours=7)
        try:
            if step == "ack":
                case = lc.acknowledge(case, "a", now, CONFIG)
            elif step == "assign":
                case = lc.assign(case, "a", "b", now)
            elif step == "note":
                case = lc.note(case, "a", "n", now)
            elif step == "snooze":
                case = lc.snooze(case, "a", now + timedelta(hours=3), now, CONFIG)
            elif step == "resolve":
                case = lc.resolve(case, "a", "fixed", None, now, CONFIG)
            elif step == "tick":
                case = lc.tick(case, now, CONFIG) or case
            else:
                occurrences += 1
                case = lc.take_alert(case, alert(occurrences=occurrences), "key-accounts", now,
                                     CONFIG) or case
        except (lc.TransitionRefused, lc.InvalidCommand):
            pass
        times = [change.at for change in case.history]
        assert times == sorted(times)
        assert (case.status == "resolved") == (case.resolved_at is not None)
        assert (case.status == "snoozed") == (case.snoozed_until is not None)
        assert case.escalations <= CONFIG.lifecycle.max_escalations


# -- auto-resolve of customer rules -------------------------------------------------------

def test_a_later_promoter_answer_resolves_a_detractor_alert_and_ends_its_cooldown() -> None:
    engine = alerts_for(high=set())
    state, [(_, raised)] = answer(engine, with_profile(), fb(0, score=3))
    state, alerts = answer(engine, state, fb(30, event_id="f-2", score=10))
    assert alerts == []
    state, [resolution] = engine.settle(fb(30, event_id="f-2", score=10), state)
    assert resolution.alert_id == raised.alert_id and resolution.rule == "detractor"
    assert "later NPS answer of 10" in resolution.reason
    assert open_alerts(state) == {}
    state, [(status, _)] = answer(engine, state, fb(40, event_id="f-3", score=2))
    assert status == "new"  # a new alert, not folded into the resolved one


def test_a_passive_answer_or_an_older_promoter_answer_resolves_nothing() -> None:
    engine = alerts_for(high=set())
    state, _ = answer(engine, with_profile(), fb(0, score=3))
    assert engine.settle(fb(5, event_id="f-2", score=8), state)[1] == []
    assert engine.settle(fb(-5, event_id="f-0", score=10), state)[1] == []


def test_a_high_value_customer_leaving_at_risk_resolves_their_alert() -> None:
    engine = alerts_for(high={"c-1"})
    state, [(_, raised)] = answer(engine, with_profile(), fb(0, score=2))
    assert raised.rule == "high_value_at_risk"
    for n in range(1, 4):  # good answers lift the experience out of "low"
        state, _ = answer(engine, state, fb(n * 10, event_id=f"g{n}", score=10))
    state, resolved = engine.settle(fb(40, event_id="g9", score=10), state)
    assert [r.alert_id for r in resolved] == [raised.alert_id]
    assert "no longer at risk" in resolved[0].reason


def test_a_positive_social_post_resolves_a_negative_social_alert() -> None:
    from cxstream.scoring.customer import apply_interaction

    engine = alerts_for(high=set())
    state = with_profile()
    post = ix(0, event_id="s1", channel="social", touchpoint="delivery", sentiment=-0.9)
    after = apply_interaction(state, post, STATE_RULES)
    state, [(_, raised)] = engine.react(post, state, after, [])
    happy = ix(20, event_id="s2", channel="social", touchpoint="delivery", sentiment=0.8)
    after = apply_interaction(state, happy, STATE_RULES)
    state, [resolution] = engine.settle(happy, after)
    assert resolution.alert_id == raised.alert_id and "sentiment 0.8" in resolution.reason


def test_auto_resolve_can_be_switched_off_per_rule() -> None:
    config: RulesConfig = load_rules()
    off = config.model_copy(update={"detractor": config.detractor.model_copy(
        update={"auto_resolve": False})})
    state = with_open_alerts(CustomerState(customer_id="c-1"), {"detractor": OpenAlert(
        alert_id="d-1", rule="detractor", severity="warning", until=at(24),
        first_event_time=T0, created_at=T0)})
    promoter = fb(60, event_id="f-9", score=10)
    assert settle(state, promoter, {}, config)[1] != []
    assert settle(state, promoter, {}, off)[1] == []


def test_a_redacted_case_keeps_the_work_and_loses_the_customer() -> None:
    from cxstream.alerts.lifecycle import erased_id

    item = alert(customer_id="c-9", summary="NPS 2 from c-9 about delivery",
                 reason={"score": 2, "text": "call me on 600", "event_id": "f-1"},
                 context={"comment": "call me on 600", "customer_value": 900.0})
    case = lc.open_case(item, "smb-support", at(0), CONFIG)
    case = lc.note(case, "alice", "Promised c-9 a refund, number 600", at(1))
    case = lc.resolve(case, "alice", "contacted", "called c-9", at(2), CONFIG)
    hidden = lc.redact(case, "ada", at(3))
    text = hidden.model_dump_json()
    assert "c-9" not in text and "600" not in text and "refund" not in text
    assert hidden.alert.customer_id == erased_id("c-9") and hidden.alert.context == {}
    assert hidden.alert.reason == {"score": 2}
    assert [c.action for c in hidden.history] == ["raised", "noted", "resolved", "redacted"]
    assert [c.actor for c in hidden.history] == ["cxstream", "alice", "alice", "ada"]
    assert (hidden.status, hidden.resolution, hidden.severity) == (
        case.status, case.resolution, case.severity)
