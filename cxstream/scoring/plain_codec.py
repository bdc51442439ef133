"""A customer's hot part as the table holds it, both ways (scoring.plain_customer holds
the state itself).

Encoding, fixed so that two encodings of one state compare byte for byte: JSON written by
orjson, object keys in the order ``encode`` writes them (empty ones left out), records as
arrays in the order of ``*_FIELDS``, floats in orjson's shortest round-trip form, after
the prefix ``b"<partition>|"``; ``"v"`` is FORMAT. Values written by releases before
0.4.0 (a whole CustomerState as JSON, no ``"v"``) are still read (``decode``, through the
contract's model: scoring.plain_models); their history is written out with the
customer's next change.
"""

from __future__ import annotations

from typing import Any

import orjson

from cxstream.scoring.customer import CustomerState
from cxstream.scoring.groups import Counted
from cxstream.scoring.plain_customer import (
    INTERACTIONS,
    KIND_LETTER,
    KIND_NAME,
    Customer,
    HistoryLoader,
    PlainRules,
    experience_is_low,
    from_us,
    low_experience,
    to_us,
)
from cxstream.scoring.plain_models import from_model

FORMAT = 3


def encode(partition: int, state: Customer) -> bytes:
    """The hot part as the table holds it: b"<partition>|" + the fixed JSON encoding."""
    body: dict[str, Any] = {"v": FORMAT, "c": state.customer_id}
    if state.profile is not None:
        body["p"] = state.profile
    if state.last_scores:
        body["l"] = state.last_scores
    if state.signals:
        body["g"] = state.signals
    if state.applied_up_to:
        body["a"] = {KIND_LETTER[kind]: offset for kind, offset in state.applied_up_to.items()}
    if state.last_event_at is not None:
        body["t"] = state.last_event_at
    if state.order:
        body["o"] = state.order
    if state.remembered:
        body["s"] = state.remembered
    if state.counted:
        body["k"] = {name: {survey: (c.start, c.score, to_us(c.at), c.groups)
                            for survey, c in per.items()}
                     for name, per in state.counted.items()}
    if state.alerts:
        body["x"] = state.alerts
    if state.ledger:
        body["e"] = state.ledger
    if state.prediction is not None:
        body["m"] = state.prediction
    return b"%d|" % partition + orjson.dumps(body)


def value_fields(raw: bytes, rules: PlainRules) -> tuple[str, float, bool | None] | None:
    """(segment, value, experience_is_low) of a table value, for the value index (None:
    no profile), read from its JSON without building the state: a worker rebuilds its
    index from every customer it holds after a recovery."""
    body = orjson.loads(raw[raw.index(b"|") + 1:])
    if body.get("v") != FORMAT:
        state = decode(raw)
        if state.profile is None:
            return None
        return state.profile[0], state.profile[1], experience_is_low(state, rules)
    profile = body.get("p")
    if profile is None:
        return None
    return profile[0], profile[1], low_experience(
        body.get("l", {}), bool(body.get("o", {}).get(INTERACTIONS)), body.get("t"),
        body.get("g", []), rules)


def decode(raw: bytes, history: HistoryLoader | None = None,
           kept_ids: int = 100) -> Customer:
    """A table value with its history (``history``), of this format or a whole
    CustomerState of an earlier release (``kept_ids``: the ring size to lay it out in)."""
    body = orjson.loads(raw[raw.index(b"|") + 1:])
    if body.get("v") != FORMAT:  # an older format, kept as the contract's model
        state = from_model(CustomerState.model_validate(body), kept_ids)
        state.history = history
        return state
    state = Customer(body["c"], history)
    if "p" in body:
        state.profile = tuple(body["p"])
    state.last_scores = {s: tuple(r) for s, r in body.get("l", {}).items()}  # type: ignore[misc]
    state.signals = body.get("g", [])
    state.applied_up_to = {KIND_NAME[k]: offset for k, offset in body.get("a", {}).items()}
    state.last_event_at = body.get("t")
    state.order = body.get("o", {})
    state.remembered = body.get("s", {})
    state.counted = {name: {survey: Counted.model_construct(
        start=c[0], score=c[1], at=from_us(c[2]), groups=tuple(tuple(g) for g in c[3]))
        for survey, c in per.items()} for name, per in body.get("k", {}).items()}
    state.alerts = body.get("x", {})
    state.ledger = body.get("e", [])
    state.prediction = body.get("m")
    return state
