"""Where the fold makes its predictions (alerts.core_predictions): before each answer, for
the rules of an event that may alert, for the priorities of an event with signals (the
rules' one reused), for every interaction only when the survey desk asks predicted
detractors first; none for an event nobody reads. The API finds one when asked."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from cxstream.alerts.customer_alerts import CustomerAlerts
from cxstream.alerts.customer_core import CustomerCore, TablesRead
from cxstream.alerts.reactions import AlertReactions
from cxstream.alerts.survey_config import PredictedFirst
from cxstream.schemas.parsing import InputKind, Rejection, parse_input
from cxstream.scoring.customer import StateRules
from cxstream.scoring.customer_view import customer_flags
from cxstream.scoring.features import Thresholds
from cxstream.scoring.fold import SourcedEvent
from cxstream.scoring.journey import Journey
from cxstream.scoring.plain_customer import Customer, to_us
from cxstream.scoring.prediction import Model, Predictor
from cxstream.scoring.value_bands import ValueBands
from testkit.support import RULES_CONFIG, TAGGER, flat_model_file
from tests.unit.test_plain_core import fold_rules

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


class CountingPredictor(Predictor):
    """A predictor that counts its scorings (each ``predict`` scores once)."""

    __slots__ = ("scored",)

    def __init__(self, model: Model) -> None:
        thresholds = Thresholds.of(StateRules())
        super().__init__(model, Journey(), thresholds)
        self.scored: list[tuple[str, int]] = []

    def probability(self, state: Customer, at_us: int, survey: str) -> float:
        self.scored.append((state.customer_id, at_us))
        return super().probability(state, at_us, survey)


def core(tmp_path: Path, config: Any = RULES_CONFIG) -> tuple[CustomerCore, CountingPredictor]:
    rules = fold_rules("all_answers", None)
    bands = ValueBands({}, 0.2, "overall", 1_000.0)
    alerts = CustomerAlerts(config, TAGGER,
                            lambda state: customer_flags(state, bands, rules.state),
                            lambda: NOW)
    predictor = CountingPredictor(Model.load(flat_model_file(tmp_path / "m.json", 0.3)))
    return CustomerCore(rules, AlertReactions(alerts, config, rules.state),
                        SimpleNamespace(current=bands), predictor), predictor  # type: ignore[arg-type]


def events(*bodies: tuple[InputKind, dict[str, Any]]) -> list[SourcedEvent]:
    found = []
    for offset, (kind, body) in enumerate(bodies):
        raw = {"customer_id": "c1", "event_id": f"e{offset}", **body}
        parsed = parse_input(kind, b"c1", json.dumps(raw).encode(), 65_536)
        assert not isinstance(parsed, Rejection), parsed
        found.append(SourcedEvent(parsed, offset, NOW.timestamp()))
    return found


def at(minutes: int) -> str:
    return (NOW - timedelta(minutes=60 - minutes)).isoformat()


def interaction(minutes: int, outcome: str = "success") -> tuple[InputKind, dict[str, Any]]:
    return InputKind.INTERACTION, {"channel": "web", "touchpoint": "checkout",
                                   "occurred_at": at(minutes), "outcome": outcome}


def answer(minutes: int, score: int) -> tuple[InputKind, dict[str, Any]]:
    return InputKind.FEEDBACK, {"survey": "nps", "score": score, "channel": "web",
                                "touchpoint": "checkout", "occurred_at": at(minutes)}


def fold(found: CustomerCore, items: list[SourcedEvent]) -> Any:
    return found.fold_batch(0, items, TablesRead({"c1": None}, {}, (0.0, -1), None))


def test_the_fold_scores_only_what_is_read(tmp_path: Path) -> None:
    found, predictor = core(tmp_path)
    items = events(interaction(1), interaction(2), interaction(3, "failure"), answer(4, 9),
                   interaction(5), answer(6, 2))
    result = fold(found, items)
    times = {item.offset: to_us(item.event.occurred_at) for item in items}  # type: ignore[union-attr]
    # the two answers before they were folded; the failure for the priorities; the
    # detractor answer for the rules, whose score the priorities read again
    assert predictor.scored == [("c1", times[2]), ("c1", times[3]), ("c1", times[5]),
                                ("c1", times[5])]
    predicted = {fact.item.offset: fact.predicted for fact in result.facts}
    assert predicted == {0: None, 1: None, 2: 0.3, 3: None, 4: None, 5: 0.3}
    assert [at_us for at_us, _, _ in result.predicted] == [times[3], times[5]]
    assert result.customers["c1"].prediction[2] == times[5]  # the rules' one, kept
    assert result.predict_seconds > 0
    assert any(out.alert.rule == "detractor" for out in result.outputs
               if hasattr(out, "alert"))


def test_the_survey_desk_asking_predicted_detractors_first_gets_every_interaction_scored(
        tmp_path: Path) -> None:
    surveys = RULES_CONFIG.surveys.model_copy(update={"predicted_first": PredictedFirst()})
    found, predictor = core(tmp_path, RULES_CONFIG.model_copy(update={"surveys": surveys}))
    items = events(interaction(1), interaction(2), answer(3, 9), interaction(4))
    result = fold(found, items)
    assert {fact.item.offset: fact.predicted for fact in result.facts} == {
        0: 0.3, 1: 0.3, 2: None, 3: 0.3}
    assert len(predictor.scored) == 4  # three interactions and one answer before it


def test_a_kept_prediction_of_the_same_moment_is_not_taken_for_a_new_event(
        tmp_path: Path) -> None:
    """A prediction kept from an earlier event at the very same time described the
    state before this event: the priorities get one made after it."""
    found, predictor = core(tmp_path)
    items = events(interaction(1, "failure"))
    stored = Customer("c1")
    stored.prediction = [0.99, "earlier", to_us(items[0].event.occurred_at)]  # type: ignore[union-attr]
    result = found.fold_batch(0, items, TablesRead({"c1": stored}, {}, (0.0, -1), None))
    assert [fact.predicted for fact in result.facts] == [0.3]
    assert len(predictor.scored) == 1


def test_a_profile_that_raises_an_alert_gives_it_a_prediction_as_of_the_newest_event(
        tmp_path: Path) -> None:
    """The profile rules (high value at risk) read a prediction made with the new value,
    not one kept from before."""
    found, predictor = core(tmp_path)
    first = fold(found, events(answer(1, 2)))  # a detractor: low experience
    state = first.customers["c1"]
    newest = state.last_event_at
    state.prediction = [0.99, "an older model", newest]
    profile = parse_input(InputKind.CUSTOMER, b"c1", json.dumps(
        {"customer_id": "c1", "segment": "smb", "value": 5_000.0,
         "updated_at": at(2)}).encode(), 65_536)
    assert not isinstance(profile, Rejection)
    second = found.fold_batch(0, [SourcedEvent(profile, 1, NOW.timestamp())],
                              TablesRead({"c1": state}, {}, (0.0, -1), None))
    raised = [out.alert for out in second.outputs if hasattr(out, "alert")]
    # the customer's open detractor alert takes the trigger (one alert per customer)
    assert [(out.status, out.alert.rule) for out in second.outputs] == [("folded", "detractor")]
    assert "High-value customer c1 is at risk" in raised[0].summary
    prediction = raised[0].context["prediction"]
    assert prediction["probability"] == 0.3
    assert prediction["model_version"] == predictor.model.version
    assert second.customers["c1"].prediction[:3] == [0.3, predictor.model.version, newest]
