"""Survey triggers and fatigue rules (alerts.surveys): each rule, their order, and the
property that no two requests sent to a customer are ever nearer than a window."""

from __future__ import annotations

import itertools
from typing import get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxstream.alerts.survey_config import (
    DAY_US,
    DECISIONS_KEPT,
    HOUR_US,
    KEPT,
    MINUTE_US,
    SENT_KEPT,
    TRIGGER_NAME_CHARS,
    AfterFailure,
    Fatigue,
    Reason,
    SegmentCaps,
    Surveys,
    SurveyTrigger,
)
from cxstream.alerts.surveys import (
    Candidate,
    Decision,
    SurveyMemory,
    candidates,
    decide,
    language_of,
    memory_bytes_bound,
    note_answer,
    note_failure,
    record,
    request_id,
)
from cxstream.scoring.bounds import ID_CHARS, LANGUAGE_CHARS
from cxstream.streams.customers.survey_desk import encode_memory

T0 = 1_780_000_000 * 1_000_000  # a fixed event time


def csat(at: int = T0, cause: str = "i1", valid_hours: float = 72) -> Candidate:
    return Candidate("delivery-csat", "csat", "c1",
                     cause, at, "delivery", "delivery", at + int(valid_hours * HOUR_US))


def shipped() -> Surveys:
    return Surveys()


def test_triggers_match_touchpoint_channel_and_outcome_and_an_empty_list_matches_all() -> None:
    config = shipped()
    found = candidates(config, "c1", "i1", T0, "delivery", "delivery", "success")
    assert [(c.trigger, c.survey) for c in found] == [("delivery-csat", "csat"),
                                                      ("relationship-nps", "nps")]
    assert [c.trigger for c in candidates(config, "c1", "i2", T0, "delivery", "web",
                                          "failure")] == ["relationship-nps"]
    assert [c.trigger for c in candidates(config, "c1", "i3", T0, "support", "phone",
                                          "escalated")] == ["support-ces", "relationship-nps"]
    assert [c.trigger for c in candidates(config, "c1", "i4", T0, "support", "phone",
                                          None)] == ["relationship-nps"]  # no outcome
    only_web = SurveyTrigger(name="web", survey="csat", channels=["web"])
    assert only_web.matches("checkout", "web", None)
    assert not only_web.matches("checkout", "app", "success")
    off = Surveys(enabled=False)
    assert candidates(off, "c1", "i1", T0, "delivery", "delivery", "success") == []


def test_a_request_id_is_the_same_for_the_same_cause_and_differs_otherwise() -> None:
    first = candidates(shipped(), "c1", "i1", T0, "delivery", "delivery", "success")[0]
    again = candidates(shipped(), "c1", "i1", T0 + 5, "delivery", "delivery", "success")[0]
    assert first.request_id == again.request_id
    assert first.valid_until == T0 + 72 * HOUR_US
    assert len({request_id("c1", "t", "i1"), request_id("c2", "t", "i1"),
                request_id("c1", "u", "i1"), request_id("c1", "t", "i2")}) == 4


def test_each_fatigue_rule_suppresses_with_its_reason() -> None:
    config = Surveys(fatigue=Fatigue(per_survey_days={"csat": 14, "nps": 90},
                                     any_survey_days=3,
                                     segments={"vip": SegmentCaps(enabled=False),
                                               "smb": SegmentCaps(any_survey_days=10)}))
    fresh = SurveyMemory()
    assert decide(fresh, csat(), config, T0, T0, "consumer", False) == Decision("send")
    # the same survey 13 days before, and 13 days after (an event read late)
    for offset in (-13, 13):
        memory = SurveyMemory(sent=[(T0 + offset * DAY_US, "csat", "delivery-csat")])
        assert decide(memory, csat(), config, T0, T0, None, False).reason == "recently_surveyed"
    memory = SurveyMemory(sent=[(T0 - 15 * DAY_US, "csat", "delivery-csat")])
    assert decide(memory, csat(), config, T0, T0, None, False).action == "send"
    # another survey 2 days before: within any_survey_days; 4 days: not, but smb's 10 are
    memory = SurveyMemory(sent=[(T0 - 2 * DAY_US, "nps", "relationship-nps")])
    assert decide(memory, csat(), config, T0, T0, None, False).reason == "recently_surveyed_any"
    memory = SurveyMemory(sent=[(T0 - 4 * DAY_US, "nps", "relationship-nps")])
    assert decide(memory, csat(), config, T0, T0, None, False).action == "send"
    assert decide(memory, csat(), config, T0, T0, "smb", False).reason == "recently_surveyed_any"
    # an answer: of the same survey within its window, of another within the any window
    memory = SurveyMemory(answers=[(T0 - 10 * DAY_US, "csat")])
    assert decide(memory, csat(), config, T0, T0, None, False).reason == "recently_answered"
    memory = SurveyMemory(answers=[(T0 - 10 * DAY_US, "nps")])
    assert decide(memory, csat(), config, T0, T0, None, False).action == "send"
    memory = SurveyMemory(answers=[(T0 - 1 * DAY_US, "nps")])
    assert decide(memory, csat(), config, T0, T0, None, False).reason == "recently_answered"
    assert decide(fresh, csat(), config, T0, T0, "vip", False).reason == "segment_opted_out"
    assert decide(fresh, csat(), config, T0, T0, None, True) == Decision("suppress",
                                                                         "open_alert")
    late = T0 + 73 * HOUR_US
    assert decide(fresh, csat(), config, late, late, None, False).reason == "expired"


def test_an_open_alert_may_defer_and_a_recent_failure_defers_or_drops() -> None:
    later = Surveys(fatigue=Fatigue(open_alert="later"))
    assert decide(SurveyMemory(), csat(), later, T0, T0, None, True) == Decision(
        "later", "open_alert", None)
    memory = SurveyMemory()
    note_failure(memory, T0 - 20 * MINUTE_US)
    note_failure(memory, T0 - 50 * MINUTE_US)
    assert decide(memory, csat(), shipped(), T0, T0, None, False) == Decision(
        "later", "recent_failure", T0 + 40 * MINUTE_US)  # 60 min after the latest
    skip = Surveys(fatigue=Fatigue(after_failure=AfterFailure(minutes=60, action="skip")))
    assert decide(memory, csat(), skip, T0, T0, None, False).reason == "recent_failure"
    # a failure after the trigger, or longer ago than the rule's minutes, does not count
    memory = SurveyMemory(failures=[T0 + MINUTE_US, T0 - 61 * MINUTE_US])
    assert decide(memory, csat(), shipped(), T0, T0, None, False).action == "send"


def test_the_first_reason_that_holds_is_given_in_a_fixed_order() -> None:
    memory = SurveyMemory(sent=[(T0 - DAY_US, "csat", "delivery-csat")],
                          answers=[(T0 - DAY_US, "csat")], failures=[T0 - MINUTE_US])
    assert decide(memory, csat(), shipped(), T0, T0, None, True).reason == "recently_surveyed"
    memory.sent.clear()
    assert decide(memory, csat(), shipped(), T0, T0, None, True).reason == "recently_answered"
    memory.answers.clear()
    assert decide(memory, csat(), shipped(), T0, T0, None, True).reason == "open_alert"
    assert decide(memory, csat(), shipped(), T0, T0, None, False).reason == "recent_failure"


def test_a_periodic_trigger_fires_once_per_interval() -> None:
    config = shipped()
    memory = SurveyMemory()
    first = candidates(config, "c1", "i1", T0, "checkout", "web", "success")[0]
    assert first.trigger == "relationship-nps"
    record(memory, first, decide(memory, first, config, T0, T0, None, False), T0, T0,
           config.horizon_us())
    at = T0 + 89 * DAY_US
    second = candidates(config, "c1", "i2", at, "checkout", "web", "success")[0]
    assert decide(memory, second, config, at, at, None, False).reason == "trigger_interval"
    at = T0 + 91 * DAY_US
    third = candidates(config, "c1", "i3", at, "checkout", "web", "success")[0]
    assert decide(memory, third, config, at, at, None, False) == Decision("send")


def test_recording_keeps_a_deferred_request_once_and_the_latest_decisions() -> None:
    config = Surveys(fatigue=Fatigue(open_alert="later"))
    memory = SurveyMemory()
    waiting = decide(memory, csat(), config, T0, T0, None, True)
    for minutes in range(3):  # looked at again at each check: one pending, one decision
        record(memory, csat(), waiting, T0 + minutes * MINUTE_US, T0, config.horizon_us())
    assert [c.request_id for c, _ in memory.pending] == [csat().request_id]
    assert [d[2] for d in memory.decisions] == ["later"]
    record(memory, csat(), Decision("send"), T0 + 5 * MINUTE_US, T0, config.horizon_us())
    assert memory.pending == []
    assert [d[2:4] for d in memory.decisions] == [("later", "open_alert"), ("send", None)]
    assert memory.sent == [(T0 + 5 * MINUTE_US, "csat", "delivery-csat")]
    assert SurveyMemory.from_json(memory.to_json()) == memory


def test_the_language_is_the_latest_answers_else_the_regions_else_the_default() -> None:
    config = Surveys(region_languages={"lt": "lt"}, default_language="en")
    memory = SurveyMemory()
    assert language_of(memory, None, config) == ("en", "default")
    assert language_of(memory, "lt", config) == ("lt", "region")
    note_answer(memory, T0, "nps", "pl")
    note_answer(memory, T0 - DAY_US, "nps", "et")  # older, read later: not the latest
    note_answer(memory, T0 + DAY_US, "csat", None)
    assert language_of(memory, "lt", config) == ("pl", "last_answer")


def test_the_rules_file_names_a_trigger_used_twice_or_a_negative_window() -> None:
    trigger = SurveyTrigger(name="same", survey="csat")
    with pytest.raises(ValueError, match="names used twice: same"):
        Surveys(triggers=[trigger, trigger])
    with pytest.raises(ValueError, match=r"segments\.smb\.per_survey_days\.csat"):
        Fatigue(segments={"smb": SegmentCaps(per_survey_days={"csat": -1})})


# -- the property ------------------------------------------------------------------------

TOUCHES = [("delivery", "delivery", "success"), ("support", "phone", "escalated"),
           ("support", "phone", "success"), ("checkout", "web", "failure"),
           ("checkout", "web", None)]

events = st.lists(st.tuples(
    st.sampled_from(["interaction", "answer"]),
    st.integers(0, 200 * 24),  # event time in hours
    st.sampled_from(range(len(TOUCHES))),
    st.integers(0, 30)),  # the event id (repeats are duplicates)
    min_size=1, max_size=60)


def run(config: Surveys, stream: list[tuple[str, int, int, int]], horizon: int
        ) -> tuple[SurveyMemory, list[tuple[int, Candidate]], list[Decision]]:
    """Feed ``stream`` in its order; the clock is the latest event time seen (a request
    whose validity passed is expired). Returns what was sent, with its time."""
    memory = SurveyMemory()
    sent: list[tuple[int, Candidate]] = []
    decisions: list[Decision] = []
    now = 0
    seen: set[tuple[str, int]] = set()
    for kind, hours, touch, event_id in stream:
        at = T0 + hours * HOUR_US
        now = max(now, at)
        if kind == "answer":  # at most KEPT answers: all remembered
            event_id %= KEPT
        if (kind, event_id) in seen:  # the fold applies an event once
            continue
        seen.add((kind, event_id))
        if kind == "answer":
            note_answer(memory, at, ("nps", "csat", "ces")[event_id % 3], None)
            continue
        touchpoint, channel, outcome = TOUCHES[touch]
        if outcome == "failure":
            note_failure(memory, at)
        for candidate in candidates(config, "c1", f"i{event_id}", at, touchpoint, channel,
                                    outcome):
            decision = decide(memory, candidate, config, at, now, None, False)
            decisions.append(decision)
            record(memory, candidate, decision, at, now, horizon)
            if decision.action == "send":
                sent.append((at, candidate))
    return memory, sent, decisions


CONFIGS = [Surveys(), Surveys(fatigue=Fatigue(per_survey_days={"nps": 9, "csat": 2, "ces": 1},
                                              any_survey_days=0.5)),
           Surveys(fatigue=Fatigue(any_survey_days=0, per_survey_days={"csat": 3}))]


@settings(max_examples=300, deadline=None)
@given(events, st.sampled_from(range(len(CONFIGS))), st.randoms(use_true_random=False))
def test_no_customer_is_asked_twice_within_a_window_whatever_the_order_and_repeats(
        stream: list[tuple[str, int, int, int]], which: int, rng: object) -> None:
    config = CONFIGS[which]
    shuffled = list(stream)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    for order in (stream, shuffled, stream + stream):
        _, sent, _ = run(config, order, config.horizon_us())
        assert len({c.request_id for _, c in sent}) == len(sent)  # never the same twice
        for (a, first), (b, second) in itertools.combinations(sent, 2):
            gap = abs(a - b)
            assert gap >= config.fatigue.any_survey_days * DAY_US
            if first.survey == second.survey:
                assert gap >= config.fatigue.per_survey_days.get(first.survey, 0) * DAY_US
            if first.trigger == second.trigger == "relationship-nps":
                assert gap >= 90 * DAY_US


@settings(max_examples=200, deadline=None)
@given(events, st.sampled_from(range(len(CONFIGS))))
def test_forgetting_past_the_horizon_changes_no_decision(
        stream: list[tuple[str, int, int, int]], which: int) -> None:
    config = CONFIGS[which]
    _, _, kept_all = run(config, stream, 10**18)
    _, _, pruned = run(config, stream, config.horizon_us())
    assert pruned == kept_all


# -- the bound ---------------------------------------------------------------------------

def worst_memory(config: Surveys) -> SurveyMemory:
    """Every list at its cap, every string at its longest and of the character that takes
    most bytes in JSON (a control character, written \\u00XX)."""
    long_id, big = "\x00" * ID_CHARS, -(2**63)
    name = "x" * TRIGGER_NAME_CHARS  # trigger names are [a-z0-9_-]
    reason = max(get_args(Reason), key=len)
    candidate = Candidate(name, "csat", long_id, long_id, big, long_id, long_id, big, long_id)
    return SurveyMemory(
        sent=[(big, "csat", name)] * SENT_KEPT, answers=[(big, "csat")] * KEPT,
        failures=[big] * KEPT, language=(big, "x" * LANGUAGE_CHARS),
        pending=[(candidate, Decision("suppress", reason, big))] * len(config.triggers),
        decisions=[("survey-" + "f" * 24, "csat", "suppress", reason, big)] * DECISIONS_KEPT)


@pytest.mark.parametrize("config", [Surveys(), Surveys(triggers=[
    SurveyTrigger(name=f"t{n}", survey="nps") for n in range(12)])])
def test_the_worst_memory_stays_under_its_computed_bound(config: Surveys) -> None:
    raw = encode_memory(2**31, worst_memory(config))
    assert len(raw) <= memory_bytes_bound(config)
    assert memory_bytes_bound(config) < 2 * len(raw)  # and the bound is not a guess


def test_requests_sent_are_kept_up_to_their_cap_and_one_waits_per_trigger() -> None:
    config = Surveys(fatigue=Fatigue(per_survey_days={}, any_survey_days=0))
    memory = SurveyMemory()
    for n in range(SENT_KEPT * 3):
        record(memory, csat(T0 + n, f"i{n}"), Decision("send"), T0 + n, T0, config.horizon_us())
    assert len(memory.sent) == SENT_KEPT and memory.sent[-1][0] == T0 + SENT_KEPT * 3 - 1
    later = Decision("later", "recent_failure", T0 + HOUR_US)
    for n in (5, 9, 7):  # out of order: the newest interaction's request waits
        record(memory, csat(T0 + n * MINUTE_US, f"w{n}"), later, T0, T0, config.horizon_us())
    assert [c.cause for c, _ in memory.pending] == ["w9"]
