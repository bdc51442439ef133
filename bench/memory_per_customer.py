"""Measure the memory one customer's state takes in a worker's table.

The worker's memory store keeps, per customer, the bytes written by streams.customers.state_writer
(b"<partition>|" + compact JSON of the state) under the customer id. This script builds
such values with the real fold functions and measures key + value with tracemalloc, for a
typical customer and for one at every cap (recent lists full, de-duplication memory full),
and, for comparison, the same state held as Python dicts.

    .venv/bin/python -m bench.memory_per_customer --customers 20000
"""

from __future__ import annotations

import argparse
import gc
import json
import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any

from cxstream.schemas.events import CustomerProfile, Feedback, Interaction
from cxstream.scoring.customer import (
    CustomerState,
    StateRules,
    apply_feedback,
    apply_interaction,
    apply_profile,
    remember,
)
from cxstream.streams.customers.state_codec import encode_customer
from cxstream.streams.settings import load_settings

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def customer_state(n: int, interactions: int, answers: int, rules: StateRules) -> CustomerState:
    """Customer n after the given numbers of events."""
    customer_id = f"customer-{n:09d}"
    state = apply_profile(CustomerState(customer_id=customer_id), CustomerProfile(
        customer_id=customer_id, segment="enterprise", value=1234.5, owner="am.jonaitis",
        region="LT", updated_at=T0))
    for i in range(interactions):
        event = Interaction(event_id=f"{customer_id}-i-{i:06d}", customer_id=customer_id,
                            occurred_at=T0 + timedelta(minutes=i), channel="phone",
                            touchpoint="support", outcome="escalated", wait_seconds=700,
                            text="Customer called about a late delivery again.")
        state = remember(apply_interaction(state, event, rules), "interaction", event.event_id,
                         i, rules)
    for i in range(answers):
        answer = Feedback(event_id=f"{customer_id}-f-{i:06d}", customer_id=customer_id,
                          occurred_at=T0 + timedelta(minutes=i), survey="nps", score=i % 11,
                          channel="email", touchpoint="support",
                          comment="Labai ilgai laukiau atsakymo iš palaikymo komandos.")
        state = remember(apply_feedback(state, answer, rules), "feedback", answer.event_id, i,
                         rules)
    return state


def worst_state(n: int, rules: StateRules) -> CustomerState:
    """Every list at its cap with the longest ids and texts the contract allows, an open
    alert of each customer rule."""
    from cxstream.alerts.comment_tags import load_tagger
    from cxstream.alerts.config import load_rules
    from cxstream.alerts.customer_alerts import CustomerAlerts
    from cxstream.scoring.customer_view import customer_flags
    from cxstream.scoring.value_bands import ValueBands

    customer_id = f"{n:09d}".rjust(128, "c")
    text = "Kurjeris vėl vėlavo, paskambinkite man. " * 250  # 10,000 characters
    state = apply_profile(CustomerState(customer_id=customer_id), CustomerProfile(
        customer_id=customer_id, segment="s" * 128, value=1e9, owner="o" * 128,
        region="r" * 128, updated_at=T0))
    bands = ValueBands({}, 0.2, fixed_threshold=1.0)
    clock = [T0]
    alerts = CustomerAlerts(load_rules(), load_tagger(),
                            lambda s: customer_flags(s, bands, rules), lambda: clock[0])
    events = max(rules.seen_event_ids_kept, rules.negative_signals_kept,
                 rules.recent_interactions_kept)
    for i in range(events):
        at = T0 + timedelta(hours=i * 25)  # past every cooldown: each alert a new one
        clock[0] = at
        event = Interaction(event_id=f"{i:06d}".rjust(128, "i"), customer_id=customer_id,
                            occurred_at=at, channel="social", touchpoint="t" * 128,
                            outcome="escalated", sentiment=-0.9, text=text)
        after = remember(apply_interaction(state, event, rules), "interaction",
                         event.event_id, i, rules)
        state, _ = alerts.react(event, state, after, ["delivery"])
        answer = Feedback(event_id=f"{i:06d}".rjust(128, "f"), customer_id=customer_id,
                          occurred_at=at, survey=("nps", "csat", "ces")[i % 3], score=1,
                          channel="c" * 128, touchpoint="t" * 128, comment=text,
                          language="lt")
        after = remember(apply_feedback(state, answer, rules), "feedback", answer.event_id,
                         i, rules)
        state, _ = alerts.react(answer, state, after, ["delivery"])
    return state


def bytes_per_customer(count: int, interactions: int, answers: int, rules: StateRules,
                       as_dicts: bool = False) -> float:
    if interactions < 0:  # the worst case
        states = [worst_state(n, rules) for n in range(50)]
    else:
        states = [customer_state(n, interactions, answers, rules) for n in range(50)]
    encoded = [list(encode_customer(n % 8, state, rules.seen_event_ids_kept).values())
               for n, state in enumerate(states)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    table: dict[bytes, Any] = {}
    width = 128 if interactions < 0 else 18
    for n in range(count):
        name = f"{n:09d}".rjust(width, "c")
        # fresh copies, as the store holds them after changelog recovery
        for slot, raw in enumerate(encoded[n % 50]):
            copy = bytes(bytearray(raw))
            table[f"{name}|{slot}".encode()] = (
                json.loads(copy[copy.index(b"|") + 1:] if slot == 0 else copy)
                if as_dicts else copy)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(table) >= count
    return (after - before) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    args = parser.parse_args()
    rules = StateRules(**{name: getattr(load_settings({}), name)
                          for name in StateRules.model_fields})
    cases = [
        ("profile only", 0, 0),
        ("typical: 5 interactions, 2 answers", 5, 2),
        ("busy: 20 interactions, 10 answers", 20, 10),
        (f"at every cap: {rules.seen_event_ids_kept} ids remembered", rules.seen_event_ids_kept,
         rules.recent_scores_kept),
        ("worst: every cap, longest ids and texts, alerts", -1, -1),
    ]
    print(f"{args.customers} customers per case; bytes per customer as stored (compact JSON "
          "bytes) and, for comparison, as Python dicts")
    print(f"{'case':<45} {'bytes':>9} {'GiB/million':>12} {'as dicts':>9} {'ratio':>6}")
    for name, interactions, answers in cases:
        size = bytes_per_customer(args.customers, interactions, answers, rules)
        dicts = bytes_per_customer(args.customers, interactions, answers, rules, as_dicts=True)
        print(f"{name:<45} {size:>9,.0f} {size * 1e6 / 2**30:>12.2f} {dicts:>9,.0f} "
              f"{dicts / size:>6.1f}")


if __name__ == "__main__":
    main()
