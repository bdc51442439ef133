"""The worker's plain-data core (alerts.core, scoring.plain) against the reference: the
pydantic fold (scoring.fold) and AlertReactions over the contract's models, batch by
batch, for any stream with resends, re-reads after a crash, late and out-of-order
answers, profiles and malformed messages: the same states, tallies, watermark, outcome
counts and outputs (alerts byte for byte), and states that survive their encoding."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxstream.alerts.core import CustomerCore, Stored
from cxstream.alerts.customer_rules import CustomerAlerts
from cxstream.alerts.reactions import AlertOut, AlertReactions, ResolveOut, SignalOut
from cxstream.schemas.parsing import InputKind, Rejection, parse_input
from cxstream.scoring import plain
from cxstream.scoring.conventions import Conventions
from cxstream.scoring.customer import CustomerState, StateRules
from cxstream.scoring.customer_view import customer_flags
from cxstream.scoring.fold import FoldRules, PartialTally, SourcedEvent, fold_batch
from cxstream.scoring.groups import GroupKeys
from cxstream.scoring.value_bands import ValueBands
from cxstream.scoring.windows import Watermark, window_specs
from tests.support import RULES_CONFIG, TAGGER

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
BANDS = ValueBands({}, 0.2, "overall", 1_000.0)  # high-value from 1,000
CUSTOMERS = ("c0", "c1", "c2")
COMMENTS = (None, "the delivery was late again", "billing charged me twice", "great", "",
            "terrible service, never again")


def fold_rules(basis: str, cap: int | None) -> FoldRules:
    return FoldRules(state=StateRules(recent_interactions_kept=3, recent_scores_kept=3,
                                      seen_event_ids_kept=10, negative_signals_kept=2,
                                      at_risk_negative_signals=2),
                     conventions=Conventions(score_basis=basis), windows=window_specs(7),
                     allowed_lateness_seconds=6 * 3600, max_clock_skew_seconds=600,
                     max_group_keys=cap)


def reactions(rules: FoldRules) -> AlertReactions:
    alerts = CustomerAlerts(RULES_CONFIG, TAGGER,
                            lambda state: customer_flags(state, BANDS, rules.state),
                            lambda: NOW)
    return AlertReactions(alerts, RULES_CONFIG, rules.state)


def at(minutes: int) -> str:
    return (NOW + timedelta(minutes=minutes)).isoformat()


@st.composite
def messages(draw: Any) -> tuple[InputKind, bytes, bytes]:
    customer = draw(st.sampled_from(CUSTOMERS))
    event_id = f"e{draw(st.integers(0, 12))}"  # a small pool: resends of the same id
    minutes = draw(st.integers(-60 * 60, 30))  # up to 60 h before now: some late, some old
    kind = draw(st.sampled_from([InputKind.FEEDBACK, InputKind.INTERACTION,
                                 InputKind.CUSTOMER, InputKind.FEEDBACK]))
    if draw(st.integers(0, 19)) == 0:  # malformed: refused by validation in both paths
        return kind, customer.encode(), b'{"customer_id": "' + customer.encode() + b'"'
    if kind is InputKind.CUSTOMER:
        body: dict[str, Any] = {"customer_id": customer,
                                "segment": draw(st.sampled_from(["smb", "enterprise"])),
                                "value": draw(st.sampled_from([10.0, 999.5, 1_000.0, 5e4])),
                                "updated_at": at(minutes)}
    elif kind is InputKind.FEEDBACK:
        survey = draw(st.sampled_from(["nps", "csat", "ces"]))
        low, high = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}[survey]
        body = {"event_id": event_id, "customer_id": customer, "occurred_at": at(minutes),
                "survey": survey, "score": draw(st.integers(low, high)),
                "channel": draw(st.sampled_from(["web", "social", "phone"])),
                "touchpoint": draw(st.sampled_from(["checkout", "delivery", "billing"]))}
        comment = draw(st.sampled_from(COMMENTS))
        if comment is not None:
            body |= {"comment": comment, "language": "en"}
    else:
        body = {"event_id": event_id, "customer_id": customer, "occurred_at": at(minutes),
                "channel": draw(st.sampled_from(["web", "social", "phone"])),
                "touchpoint": draw(st.sampled_from(["checkout", "delivery", "billing"])),
                "outcome": draw(st.sampled_from([None, "success", "failure", "escalated"])),
                "sentiment": draw(st.sampled_from([None, -0.9, -0.3, 0.0, 0.8])),
                "wait_seconds": draw(st.sampled_from([None, 30.0, 900.0]))}
        text = draw(st.sampled_from(COMMENTS))
        if text is not None:
            body["text"] = text
    return kind, customer.encode(), json.dumps(
        {k: v for k, v in body.items() if v is not None}).encode()


@st.composite
def streams(draw: Any) -> list[list[SourcedEvent]]:
    """Batches of validated events with offsets; a re-read repeats earlier offsets."""
    raw = draw(st.lists(messages(), min_size=1, max_size=40))
    events = []
    for offset, (kind, key, value) in enumerate(raw):
        parsed = parse_input(kind, key, value, 65_536)
        if not isinstance(parsed, Rejection):
            record_time = (NOW + timedelta(minutes=draw(st.integers(-600, 10)))).timestamp()
            events.append(SourcedEvent(parsed, offset, record_time))
    if events and draw(st.booleans()):  # a crash: a stretch read again from an offset
        start = draw(st.integers(0, len(events) - 1))
        events += events[start:start + draw(st.integers(1, 10))]
    batches, rest = [], events
    while rest:
        size = draw(st.integers(1, 8))
        batches.append(rest[:size])
        rest = rest[size:]
    return batches


class Reference:
    """The fold and the rules over pydantic models, as a worker ran them before."""

    def __init__(self, rules: FoldRules) -> None:
        self.rules = rules
        self.reactions = reactions(rules)
        self.states: dict[str, CustomerState] = {}
        self.partials: dict[str, PartialTally] = {}
        self.watermark = Watermark()
        self.keys: dict[str, list[str]] = {}

    def batch(self, items: list[SourcedEvent]) -> dict[str, Any]:
        cap = self.rules.max_group_keys
        keys = None if cap is None else GroupKeys(cap, self.keys)
        result = fold_batch(0, items, self.states.get, self.partials.get, self.watermark,
                            self.rules, keys)
        changed, outputs = self.reactions.on_batch(0, result.applied)
        for customer_id, alert_state in changed.items():
            result.states[customer_id] = result.states[customer_id].model_copy(
                update={"alerts": alert_state})
        self.states.update(result.states)
        self.partials.update(result.partials)
        self.watermark = result.watermark
        if keys is not None:
            self.keys = {d: keys.keys_of(d) for d in keys.admitted}
        return {"partials": {k: p.model_dump(mode="json") for k, p in result.partials.items()},
                "watermark": result.watermark.model_dump(), "outputs": described(outputs),
                "outcomes": dict(result.outcomes)}


class Plain:
    """The worker's core, with its states kept as the bytes a table holds."""

    def __init__(self, rules: FoldRules) -> None:
        self.rules = rules
        self.core = CustomerCore(rules, reactions(rules), lambda: BANDS)
        self.customers: dict[str, bytes] = {}
        self.partials: dict[str, dict[str, Any]] = {}
        self.watermark = (0.0, -1)
        self.keys: dict[str, list[str]] = {}

    def batch(self, items: list[SourcedEvent]) -> dict[str, Any]:
        cap = self.rules.max_group_keys
        keys = None if cap is None else GroupKeys(cap, self.keys)

        def customer(customer_id: str) -> plain.Customer | None:
            raw = self.customers.get(customer_id)
            return None if raw is None else plain.decode(raw)

        result = self.core.fold_batch(0, items, Stored(customer, self.partials.get,
                                                       self.watermark, keys))
        for customer_id, state in result.customers.items():
            self.customers[customer_id] = plain.encode(0, state)
        self.partials.update(json.loads(json.dumps(result.partials)))  # as stored
        self.watermark = (result.watermark["at"], result.watermark["offset"])
        if keys is not None:
            self.keys = {d: keys.keys_of(d) for d in keys.admitted}
        return {"partials": result.partials, "watermark": result.watermark,
                "outputs": described(result.outputs), "outcomes": result.outcomes}


def described(outputs: list[Any]) -> list[Any]:
    shown: list[Any] = []
    for output in outputs:
        if isinstance(output, AlertOut):
            shown.append(("alert", output.status, output.alert.model_dump_json(),
                          output.source_time))
        elif isinstance(output, ResolveOut):
            shown.append(("resolved", output.resolution))
        else:
            assert isinstance(output, SignalOut)
            shown.append(("signal", output.signal.model_dump_json()))
    return shown


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), st.sampled_from(["all_answers", "latest_per_customer"]),
       st.sampled_from([None, 2]))
def test_the_plain_core_gives_what_the_reference_gives(
        batches: list[list[SourcedEvent]], basis: str, cap: int | None) -> None:
    rules = fold_rules(basis, cap)
    reference, worker = Reference(rules), Plain(rules)
    for items in batches:
        expected, got = reference.batch(items), worker.batch(items)
        assert json.dumps(got["partials"]) == json.dumps(expected["partials"])
        assert got["watermark"] == expected["watermark"]
        assert got["outcomes"] == expected["outcomes"]
        assert got["outputs"] == expected["outputs"]
        assert set(worker.customers) == set(reference.states)
        for customer_id, raw in worker.customers.items():
            assert plain.to_model(plain.decode(raw)).model_dump_json() == \
                reference.states[customer_id].model_dump_json()


def test_the_encoding_is_fixed_and_reads_what_earlier_releases_wrote() -> None:
    rules = fold_rules("latest_per_customer", None)
    reference = Reference(rules)
    items = [SourcedEvent(parsed, n, NOW.timestamp()) for n, (kind, body) in enumerate([
        (InputKind.CUSTOMER, {"customer_id": "c0", "segment": "smb", "value": 5e4,
                              "updated_at": at(-5)}),
        (InputKind.FEEDBACK, {"event_id": "e1", "customer_id": "c0", "occurred_at": at(-4),
                              "survey": "nps", "score": 3, "channel": "web",
                              "touchpoint": "checkout", "comment": "late", "language": "en"}),
        (InputKind.INTERACTION, {"event_id": "e2", "customer_id": "c0",
                                 "occurred_at": at(-3), "channel": "social",
                                 "touchpoint": "delivery", "sentiment": -0.9})])
        if not isinstance(parsed := parse_input(kind, b"c0", json.dumps(body).encode(),
                                                65_536), Rejection)]
    reference.batch(items)
    model = reference.states["c0"]
    assert model.alerts  # the detractor's cooldown is part of the state
    old = b"0|" + model.model_dump_json(exclude_none=True).encode()  # before 0.4.0
    state = plain.decode(old)
    encoded = plain.encode(0, state)
    assert plain.to_model(state).model_dump_json() == model.model_dump_json()
    assert plain.encode(0, plain.decode(encoded)) == encoded  # byte for byte
    assert json.loads(encoded[2:])["v"] == plain.FORMAT
    assert len(encoded) < len(old)
