"""The worker's plain-data core (alerts.customer_core, scoring.plain_customer) against the reference
(testkit/reference: the pydantic fold and the customer rules over the contract's models),
batch by batch, for any stream with resends, re-reads after a crash, late and
out-of-order answers, profiles and malformed messages: the same states, tallies,
watermark, outcome counts and outputs (alerts byte for byte), the same survey requests
and priority counts from the folds over each side's result, and states that survive
their encoding."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxstream.alerts.customer_alerts import CustomerAlerts
from cxstream.alerts.customer_core import CustomerCore, TablesRead
from cxstream.alerts.reactions import AlertOut, AlertReactions, ResolveOut, SignalOut
from cxstream.schemas.events import CustomerProfile
from cxstream.schemas.parsing import InputKind, Rejection, parse_input
from cxstream.scoring import plain_codec as codec
from cxstream.scoring import plain_customer as plain
from cxstream.scoring import plain_models
from cxstream.scoring.conventions import Conventions
from cxstream.scoring.customer import CustomerState, StateRules
from cxstream.scoring.customer_view import customer_flags
from cxstream.scoring.fold import FoldRules, PartialTally, SourcedEvent
from cxstream.scoring.groups import GroupKeys
from cxstream.scoring.value_bands import ValueBands
from cxstream.scoring.windows import Watermark, window_specs
from cxstream.streams.customers.survey_desk import SurveyDesk
from cxstream.streams.issues.priorities import PriorityBoard
from testkit.reference.fold import fold_batch
from testkit.reference.reactions import on_batch
from testkit.support import RULES_CONFIG, TAGGER

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



class SideFolds:
    """The survey desk and the priorities of one side, on their own tables: fed the
    core's facts (StateWriter._write) or, for the reference, the same reads of its
    states after the rules."""

    def __init__(self) -> None:
        clock = NOW.timestamp
        self.surveys = SurveyDesk(RULES_CONFIG.surveys, SimpleNamespace(data={}), None, clock)
        self.priorities = PriorityBoard(RULES_CONFIG.priorities, SimpleNamespace(data={}),
                                        None, clock)
        self.priorities.top_of = lambda segment, value: BANDS.flags(segment, value)[
            "high_value"]

    def begin(self) -> None:
        self.surveys.begin()
        self.priorities.begin()

    def finish(self) -> dict[str, Any]:
        issue_writes = self.priorities.finish(0)
        survey_writes, requests = self.surveys.finish(0)
        for table, writes in ((self.priorities.table, issue_writes),
                              (self.surveys.table, survey_writes)):
            for key, value in writes.items():
                table.data.pop(key, None) if value is None else table.data.__setitem__(
                    key, value)
        return {"issue_writes": issue_writes, "survey_writes": survey_writes,
                "survey_requests": [out.request.model_dump_json() for out in requests]}


class Reference:
    """The fold and the rules over pydantic models, as a worker ran them before."""

    def __init__(self, rules: FoldRules) -> None:
        self.rules = rules
        self.reactions = reactions(rules)
        self.folds = SideFolds()
        self.states: dict[str, CustomerState] = {}
        self.partials: dict[str, PartialTally] = {}
        self.watermark = Watermark()
        self.keys: dict[str, list[str]] = {}

    def batch(self, items: list[SourcedEvent]) -> dict[str, Any]:
        cap = self.rules.max_group_keys
        keys = None if cap is None else GroupKeys(cap, self.keys)
        result = fold_batch(0, items, self.states.get, self.partials.get, self.watermark,
                            self.rules, keys)
        trace: list[tuple[Any, CustomerState, list[Any]]] = []
        changed, outputs = on_batch(self.reactions, 0, result.applied, trace)
        self.folds.begin()
        kept = self.rules.state.seen_event_ids_kept
        for change, reacted, produced in trace:
            view = plain_models.from_model(reacted, kept)  # its profile tuple and alert state
            if isinstance(change.item.event, CustomerProfile):
                if view.profile != plain_models.from_model(change.before, kept).profile:
                    self.folds.priorities.observe(change.item, view, [], None)
                continue
            self.folds.surveys.observe(change.item, view)
            signals = [output.signal for output in produced if isinstance(output, SignalOut)]
            if signals:
                top = None if view.profile is None else BANDS.flags(
                    view.profile[0], view.profile[1])["high_value"]
                self.folds.priorities.observe(change.item, view, signals, top)
        sides = self.folds.finish()
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
                "outcomes": dict(result.outcomes), "sides": sides}


class Plain:
    """The worker's core, with its states kept as the bytes a table holds (the hot part
    under the customer's id, the history beside it)."""

    def __init__(self, rules: FoldRules) -> None:
        self.rules = rules
        self.folds = SideFolds()
        self.core = CustomerCore(rules, reactions(rules), SimpleNamespace(current=BANDS))  # type: ignore[arg-type]
        self.table: dict[bytes, bytes] = {}
        self.partials: dict[str, dict[str, Any]] = {}
        self.watermark = (0.0, -1)
        self.keys: dict[str, list[str]] = {}

    def customer(self, customer_id: str) -> plain.Customer | None:
        raw = self.table.get(customer_id.encode())
        return None if raw is None else codec.decode(raw, self.table.get)

    def customer_ids(self) -> set[str]:
        return {key.decode() for key in self.table if not plain.is_history_key(key)}

    def batch(self, items: list[SourcedEvent]) -> dict[str, Any]:
        cap = self.rules.max_group_keys
        keys = None if cap is None else GroupKeys(cap, self.keys)
        customers = {item.event.customer_id: self.customer(item.event.customer_id)
                     for item in items}  # read before the batch, as the state writer does
        partials = {key.encode(): value for key, value in self.partials.items()}
        result = self.core.fold_batch(0, items, TablesRead(customers, partials, self.watermark,
                                                       keys, self.table.get))
        self.folds.begin()  # as StateWriter._write feeds them
        for fact in result.facts:
            if fact.profile_changed or fact.signals:
                self.folds.priorities.observe(fact.item, fact, fact.signals, fact.top)
            if not fact.profile_changed:
                self.folds.surveys.observe(fact.item, fact)
        sides = self.folds.finish()
        for customer_id, state in result.customers.items():
            self.table[customer_id.encode()] = codec.encode(0, state)
            for tag, value in state.take_writes().items():
                key = plain.history_key(customer_id, tag)
                if value is None:
                    self.table.pop(key, None)
                else:
                    self.table[key] = value
        self.partials.update(json.loads(json.dumps(result.partials)))  # as stored
        self.watermark = (result.watermark["at"], result.watermark["offset"])
        if keys is not None:
            self.keys = {d: keys.keys_of(d) for d in keys.admitted}
        return {"partials": result.partials, "watermark": result.watermark,
                "outputs": described(result.outputs), "outcomes": result.outcomes,
                "sides": sides}


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
        assert got["sides"] == expected["sides"]  # survey requests, priorities
        assert worker.customer_ids() == set(reference.states)
        for customer_id in worker.customer_ids():
            state = worker.customer(customer_id)
            assert state is not None
            assert plain_models.to_model(state, with_seen=True).model_dump_json() == \
                reference.states[customer_id].model_dump_json()
        history = {key for key in worker.table if plain.is_history_key(key)}
        assert history == {plain.history_key(customer_id, tag)  # nothing left behind
                           for customer_id in worker.customer_ids()
                           for tag in worker.customer(customer_id).history_tags()}


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
    state = codec.decode(old, kept_ids=rules.state.seen_event_ids_kept)
    assert plain_models.to_model(state, with_seen=True).model_dump_json() == model.model_dump_json()
    table = {b"c0": codec.encode(0, state)}
    table |= {plain.history_key("c0", tag): value
              for tag, value in state.take_writes().items() if value is not None}
    again = codec.decode(table[b"c0"], table.get)
    assert plain_models.to_model(again, with_seen=True).model_dump_json() == model.model_dump_json()
    assert codec.encode(0, again) == table[b"c0"]  # byte for byte
    assert json.loads(table[b"c0"][2:])["v"] == codec.FORMAT
    assert len(table[b"c0"]) < len(old)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(1, 5)), max_size=40))
def test_recent_records_keep_the_latest_in_time_order_whatever_the_cap(
        steps: list[tuple[int, int]]) -> None:
    """add_record against the model's rule (insert after equal times, keep the latest),
    including a cap that shrinks or grows between records; read back from the table."""
    from typing import NamedTuple

    from cxstream.scoring.customer import _with_newest

    class Record(NamedTuple):  # what _with_newest reads of a record: its time
        event_id: str
        at: int

    table: dict[bytes, bytes] = {}
    state = plain.Customer("c0", table.get)
    expected: tuple[Any, ...] = ()
    for n, (minute, kept) in enumerate(steps):
        record = Record(f"e{n}", minute * 60_000_000)
        expected = tuple(_with_newest(tuple(expected), record, kept))
        state.add_record(plain.INTERACTIONS, (f"e{n}", minute * 60_000_000), kept)
        for tag, value in state.take_writes().items():
            key = plain.history_key("c0", tag)
            table.pop(key, None) if value is None else table.__setitem__(key, value)
        state.cache.clear()  # read back what the table holds
        assert [tuple(r) for r in state.records(plain.INTERACTIONS)] == list(expected)
    assert len(table) == len(expected)  # dropped records are deleted


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.sampled_from([10, 12, 20])), max_size=60))
def test_remembered_ids_are_the_latest_whatever_the_cap(
        steps: list[tuple[int, int]]) -> None:
    """remember against the model's, the cap changing between events, each state read
    back from its encoding."""
    from cxstream.scoring.customer import CustomerState, remember

    state = plain.Customer("c0")
    model = CustomerState(customer_id="c0")
    for offset, (event, kept) in enumerate(steps):
        delivery = state.delivery_of("feedback", f"e{event}", offset)
        assert delivery == model.delivery_of("feedback", f"e{event}", offset)
        if delivery != "new":
            continue
        model = remember(model, "feedback", f"e{event}", offset,
                         StateRules(seen_event_ids_kept=kept))
        state.remember("feedback", f"e{event}", offset, kept)
        state = codec.decode(codec.encode(0, state))
        assert state.seen() == model.seen
        assert state.applied_up_to == model.applied_up_to


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), st.sampled_from(["all_answers", "latest_per_customer"]))
def test_the_value_index_reads_from_the_bytes_what_the_decoded_state_says(
        batches: list[list[SourcedEvent]], basis: str) -> None:
    rules = fold_rules(basis, None)
    worker = Plain(rules)
    plain_rules = plain.PlainRules(rules.state)
    for items in batches:
        worker.batch(items)
    for customer_id in worker.customer_ids():
        raw = worker.table[customer_id.encode()]
        state = worker.customer(customer_id)
        assert state is not None
        expected = None if state.profile is None else (
            state.profile[0], state.profile[1], plain.experience_is_low(state, plain_rules))
        assert codec.value_fields(raw, plain_rules) == expected
        whole = plain_models.to_model(state, with_seen=True).model_dump_json().encode()
        assert codec.value_fields(b"0|" + whole, plain_rules) == expected  # 0.3.0's bytes
