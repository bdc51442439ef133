"""The survey desk (streams.customers.survey_desk) on a batch: what the fold shows it, what it
writes,
what it sends, and deferred requests sent by the timer once their condition cleared."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from prometheus_client import CollectorRegistry

from cxstream.alerts.survey_config import AfterFailure, Fatigue, Surveys
from cxstream.alerts.surveys import memory_bytes_bound
from cxstream.schemas.events import Feedback, Interaction
from cxstream.scoring.fold import SourcedEvent
from cxstream.scoring.plain_customer import Customer, to_us
from cxstream.streams.customers.survey_desk import (
    PENDING,
    SurveyDesk,
    decode_memory,
    load_waiting_surveys,
    memory_key,
    memory_report,
    pending_key,
)
from cxstream.streams.metrics import WorkerMetrics

T = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
CSAT_ONLY = [Surveys().triggers[0]]  # delivery-csat


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at.timestamp()


def desk(config: Surveys, clock: Clock) -> tuple[SurveyDesk, dict[bytes, bytes], WorkerMetrics]:
    data: dict[bytes, bytes] = {}
    metrics = WorkerMetrics(CollectorRegistry())
    return SurveyDesk(config, SimpleNamespace(data=data), metrics, clock), data, metrics


def customer(customer_id: str, segment: str = "smb", region: str | None = None,
             alerts: dict[str, Any] | None = None) -> Customer:
    state = Customer(customer_id)
    state.profile = (segment, 100.0, None, region, 0)
    state.alerts = alerts or {}
    return state


def delivery(event_id: str, customer_id: str, minutes: int, outcome: str = "success",
             handled_by: str | None = None) -> SourcedEvent:
    event = Interaction(event_id=event_id, customer_id=customer_id,
                        occurred_at=T + timedelta(minutes=minutes), channel="delivery",
                        touchpoint="delivery", outcome=outcome,  # type: ignore[arg-type]
                        handled_by=handled_by)
    return SourcedEvent(event, 0, 0.0)


def answer(event_id: str, customer_id: str, minutes: int, survey: str = "csat",
           language: str | None = None) -> SourcedEvent:
    event = Feedback(event_id=event_id, customer_id=customer_id,
                     occurred_at=T + timedelta(minutes=minutes), survey=survey,  # type: ignore[arg-type]
                     score=4, channel="web", touchpoint="delivery", language=language)
    return SourcedEvent(event, 0, 0.0)


def counted(metrics: WorkerMetrics) -> dict[tuple[str, str, str], float]:
    return {(s.labels["survey"], s.labels["action"], s.labels["reason"]): s.value
            for family in metrics.registry.collect() if family.name == "cxstream_survey_decisions"
            for s in family.samples if s.name.endswith("_total")}


def apply(desk_: SurveyDesk, data: dict[bytes, bytes], partition: int,
          events: list[tuple[SourcedEvent, Customer]]) -> list[Any]:
    desk_.begin()
    for item, state in events:
        desk_.observe(item, state)
    writes, outputs = desk_.finish(partition)
    for key, value in writes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return [output.request for output in outputs]


def test_a_batch_sends_what_the_rules_allow_and_counts_every_decision() -> None:
    config = Surveys(region_languages={"lt": "lt"})
    clock = Clock(T + timedelta(minutes=5))
    survey_desk, data, metrics = desk(config, clock)
    ana, ben = customer("ana", region="lt"), customer("ben")
    sent = apply(survey_desk, data, 2, [
        (delivery("d1", "ana", 0, handled_by="courier-7"), ana),
        (delivery("d2", "ana", 1), ana),  # csat again: too soon
        (answer("f1", "ben", -60, "nps", "pl"), ben),
        (delivery("d3", "ben", 2), ben),  # ben answered an hour ago
    ])
    # d1 asks for CSAT and NPS: the NPS comes within the any-survey window of the CSAT
    assert [(r.customer_id, r.survey, r.cause_event_id, r.language, r.language_source)
            for r in sent] == [("ana", "csat", "d1", "lt", "region")]
    assert sent[0].requested_at == sent[0].cause_at == T
    assert sent[0].cause_handled_by == "courier-7"  # for the answer to give back
    assert sent[0].valid_until == T + timedelta(hours=72)
    assert counted(metrics) == {
        ("csat", "sent", "none"): 1, ("nps", "suppressed", "recently_surveyed_any"): 2,
        ("csat", "suppressed", "recently_surveyed"): 1,  # d1 and d2 (ana) ...
        ("csat", "suppressed", "recently_answered"): 1,  # ... d3 (ben)
        ("nps", "suppressed", "recently_answered"): 1}
    memory = decode_memory(data[memory_key("ana")])
    assert [(s, g) for _, s, g in memory.sent] == [("csat", "delivery-csat")]
    report = memory_report(data[memory_key("ben")])
    assert [d["reason"] for d in report["decisions"]] == ["recently_answered"] * 2
    assert report["last_answered"] == {"nps": (T - timedelta(minutes=60)).isoformat()}


def test_an_open_alert_suppresses_and_a_failure_defers_until_the_timer_sends_it() -> None:
    config = Surveys(triggers=CSAT_ONLY,
                     fatigue=Fatigue(after_failure=AfterFailure(minutes=30, action="later")))
    clock = Clock(T)
    survey_desk, data, metrics = desk(config, clock)
    cooling = {"open": {"detractor": {"until": (T + timedelta(hours=24)).isoformat()}}}
    cy, dee = customer("cy", alerts=cooling), customer("dee")
    sent = apply(survey_desk, data, 1, [
        (delivery("d1", "cy", 0), cy),
        (delivery("f0", "dee", -10, outcome="failure"), dee),
        (delivery("d2", "dee", 0), dee),
    ])
    assert sent == []
    assert counted(metrics)[("csat", "suppressed", "open_alert")] == 1
    assert counted(metrics)[("csat", "deferred", "recent_failure")] == 1
    assert pending_key("dee") in data and survey_desk.pending[1] == {"dee"}
    states = {"dee": dee}

    clock.at = T + timedelta(minutes=10)  # 20 minutes after the failure: not yet
    writes, outputs = survey_desk.due_requests(1, states.get)
    assert (writes, outputs) == ({}, [])
    clock.at = T + timedelta(minutes=21)
    writes, outputs = survey_desk.due_requests(1, states.get)
    [request] = [output.request for output in outputs]
    assert (request.customer_id, request.survey, request.waited_for) == ("dee", "csat",
                                                                        "recent_failure")
    assert request.requested_at == T + timedelta(minutes=21)
    assert writes[pending_key("dee")] is None and survey_desk.pending[1] == set()
    assert counted(metrics)[("csat", "sent", "none")] == 1


def test_a_deferred_request_expires_and_the_markers_are_read_back_after_a_recovery() -> None:
    config = Surveys(triggers=CSAT_ONLY, fatigue=Fatigue(open_alert="later"))
    clock = Clock(T)
    survey_desk, data, _ = desk(config, clock)
    cooling = {"open": {"detractor": {"until": (T + timedelta(days=30)).isoformat()}}}
    eve = customer("eve", alerts=cooling)
    assert apply(survey_desk, data, 3, [(delivery("d1", "eve", 0), eve)]) == []
    assert data[pending_key("eve")] == b"3"
    assert all(not key.startswith(PENDING) or key == pending_key("eve") for key in data)

    restarted, _, _ = desk(config, clock)
    restarted.table.data = data
    restarted.load = data.get
    assert load_waiting_surveys(restarted.table, restarted, {0, 3}) == 1
    assert restarted.pending == {0: set(), 3: {"eve"}}
    clock.at = T + timedelta(hours=1)  # still open: waits, nothing written
    assert restarted.due_requests(3, {"eve": eve}.get) == ({}, [])
    clock.at = T + timedelta(hours=73)  # past the request's validity
    writes, outputs = restarted.due_requests(3, {"eve": eve}.get)
    assert outputs == [] and writes[pending_key("eve")] is None
    assert decode_memory(writes[memory_key("eve")]).decisions[-1][2:4] == ("suppress",
                                                                          "expired")


def test_a_failed_fold_leaves_nothing_seen_and_erasure_names_both_keys() -> None:
    survey_desk, _, _ = desk(Surveys(), Clock(T))
    survey_desk.observe(delivery("d1", "fay", 0), customer("fay"))
    survey_desk.begin()  # the fold is tried again: what it saw first is dropped
    assert survey_desk.finish(0) == ({}, [])
    assert survey_desk.forget(0, "fay") == [memory_key("fay"), pending_key("fay")]
    assert to_us(T) > 0


def test_a_memory_changed_by_a_failed_fold_is_read_again_from_the_table() -> None:
    survey_desk, data, _ = desk(Surveys(triggers=CSAT_ONLY), Clock(T))
    gus = customer("gus")
    assert len(apply(survey_desk, data, 0, [(delivery("d1", "gus", 0), gus)])) == 1
    stored = data[memory_key("gus")]
    survey_desk.begin()
    survey_desk.observe(answer("f1", "gus", 1), gus)
    survey_desk.finish(0)  # decided, but its writes never reach the table
    assert data[memory_key("gus")] == stored
    survey_desk.drop_decoded(["gus"])  # what the state writer does when a fold fails
    memory = survey_desk._memory("gus")
    assert memory.answers == [] and len(memory.sent) == 1


# -- one noisy customer ------------------------------------------------------------------

def test_ten_thousand_failed_interactions_of_one_customer_keep_their_memory_bounded() -> None:
    # a shared guest account or a producer's retry loop: every failed interaction defers
    # the periodic NPS request; one request waits per trigger, the newest
    config = Surveys()
    desk_, data, _ = desk(config, Clock(T + timedelta(days=1)))
    state = customer("c-noisy")
    bound = memory_bytes_bound(config)
    for start in range(0, 10_000, 500):
        apply(desk_, data, 0, [(delivery(f"i{n}", "c-noisy", n // 60, outcome="failure"),
                                state) for n in range(start, start + 500)])
        assert len(data[memory_key("c-noisy")]) <= bound
    memory = decode_memory(data[memory_key("c-noisy")])
    assert len(memory.pending) == 1  # relationship-nps, for the newest failure
    [(waiting, _)] = memory.pending
    assert waiting.cause == "i9999"


def test_predicted_detractors_are_asked_first_and_the_others_a_day_later() -> None:
    """With predicted_first, the fatigue rules allow both requests: the customer the model
    predicts low is asked at once, the other when their wait is over (by the timer), and
    a customer whom the fatigue rules stop is not asked for being predicted."""
    from cxstream.alerts.survey_config import PredictedFirst

    config = Surveys(triggers=CSAT_ONLY, predicted_first=PredictedFirst(
        min_probability=0.6, others_wait_hours=24))
    clock = Clock(T + timedelta(minutes=5))
    survey_desk, data, metrics = desk(config, clock)
    low, fine, asked = customer("low"), customer("fine"), customer("asked")
    low.prediction = [0.8, "v", to_us(T), []]
    fine.prediction = [0.2, "v", to_us(T), []]
    asked.prediction = [0.9, "v", to_us(T), []]
    sent = apply(survey_desk, data, 1, [
        (answer("a0", "asked", -10), asked),  # answered CSAT 10 minutes ago
        (delivery("d1", "low", 0), low), (delivery("d2", "fine", 0), fine),
        (delivery("d3", "asked", 0), asked)])
    assert [r.customer_id for r in sent] == ["low"]
    assert counted(metrics)[("csat", "deferred", "predicted_first")] == 1
    assert counted(metrics)[("csat", "suppressed", "recently_answered")] == 1
    states = {"low": low, "fine": fine, "asked": asked}
    clock.at = T + timedelta(hours=23)
    _, outputs = survey_desk.due_requests(1, states.get)
    assert outputs == []  # not yet
    clock.at = T + timedelta(hours=24, minutes=1)
    _writes, outputs = survey_desk.due_requests(1, states.get)
    assert [(o.request.customer_id, o.request.cause_event_id) for o in outputs] == [
        ("fine", "d2")]


def test_without_predicted_first_a_prediction_changes_nothing() -> None:
    survey_desk, data, _ = desk(Surveys(triggers=CSAT_ONLY), Clock(T))
    fine = customer("fine")
    fine.prediction = [0.1, "v", to_us(T), []]
    sent = apply(survey_desk, data, 1, [(delivery("d1", "fine", 0), fine)])
    assert [r.customer_id for r in sent] == ["fine"]
