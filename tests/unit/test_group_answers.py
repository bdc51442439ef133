"""The recent answers behind a group's scores (scoring.group_answers): kept newest first
up to the cap whatever the order they come in, written beside the tallies by the state
writer, followed by the index, gone with an erasure, and at the cap under their bound."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from cxstream.schemas.events import Feedback
from cxstream.scoring import group_answers as ga
from cxstream.scoring.bounds import group_answers_bytes_bound
from cxstream.scoring.conventions import Conventions
from cxstream.scoring.customer import TEXT_KEPT, StateRules
from cxstream.scoring.fold import FoldRules, is_bookkeeping_key
from cxstream.scoring.partials_index import PartialsIndex
from cxstream.scoring.value_bands import ValueIndex
from cxstream.scoring.windows import window_specs
from cxstream.streams.customers.state_writer import StateWriter
from cxstream.streams.metrics import WorkerMetrics
from testkit.support import feedback
from tests.unit.test_erasure import Source
from tests.worst import BIG, WORST, worst

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
KEPT = 5


def rules(kept: int = KEPT) -> FoldRules:
    return FoldRules(state=StateRules(group_answers_kept=kept), conventions=Conventions(),
                     windows=window_specs(7), allowed_lateness_seconds=30 * 86_400,
                     max_clock_skew_seconds=600)


def answer(n: int, customer: str = "c-1", **overrides: Any) -> Any:
    from cxstream.schemas.parsing import InputKind
    from cxstream.streams.ingest.batches import Accepted

    event = feedback(event_id=f"f-{n}", customer_id=customer, score=n % 11,
                     occurred_at=(T0 + timedelta(minutes=n)).isoformat(), **overrides)
    return Accepted(InputKind.FEEDBACK, Feedback.model_validate(event), Source(n))


@given(st.lists(st.integers(0, 40), max_size=60), st.integers(1, 8))
def test_a_group_keeps_the_newest_answers_whatever_their_order(minutes: list[int],
                                                              kept: int) -> None:
    answers: list[ga.Answer] = []
    for minute in minutes:
        ga.keep_answer(answers, [minute * 60_000_000, f"e-{minute}", "c", "nps", 9, None,
                                 None], kept)
    newest = sorted(set(minutes))[-kept:]
    assert [a[ga.AT] // 60_000_000 for a in answers] == newest
    assert len({a[ga.EVENT_ID] for a in answers}) == len(answers) <= kept


def test_the_writer_keeps_each_groups_answers_beside_its_tallies_and_the_index_follows(
) -> None:
    partials: dict[bytes, Any] = {}
    index = PartialsIndex()
    writer = StateWriter({}, partials, rules(), WorkerMetrics(CollectorRegistry()),
                         ValueIndex(), partials_index=index)
    asyncio.run(writer.handle([answer(n, comment=f"comment {n}" if n % 2 else None,
                                      language="en") for n in range(8)]))
    asyncio.run(writer.handle([answer(3)]))  # read again: kept once
    key = ga.answers_key(0, "touchpoint", "checkout").encode()
    stored = partials[key]
    assert [a[ga.EVENT_ID] for a in stored] == ["f-3", "f-4", "f-5", "f-6", "f-7"]
    assert stored[-1][ga.COMMENT] == "comment 7" and stored[-1][ga.LANGUAGE] == "en"
    assert stored[-2][ga.COMMENT] is None and stored[-2][ga.LANGUAGE] is None
    assert {raw.decode().split("|")[2] for raw in partials
            if ga.is_answers_key(raw.decode())} == {"segment", "channel", "touchpoint",
                                                        "stage"}
    rings = sorted(raw.decode() for raw in partials if ga.is_answers_key(raw.decode()))
    assert sorted(index.answers.keys_of_customer(0, "c-1")) == rings
    assert index.answers.answer_count() == len(rings)  # one customer in each group
    assert ga.answer_report(stored[-1])["at"] == (T0 + timedelta(minutes=7)).isoformat()
    # a restarted worker finds them again in the table
    again = PartialsIndex()
    again.load(list(partials.items()), {0})
    assert sorted(again.answers.keys_of_customer(0, "c-1")) == rings
    elsewhere = PartialsIndex()
    elsewhere.load(list(partials.items()), {1})
    assert elsewhere.answers.keys_of_customer(0, "c-1") == []
    assert [row[2] for row in again.rows("channel", None, None, {0})] == ["web"] * 3


def test_no_answers_are_kept_with_a_cap_of_zero() -> None:
    partials: dict[bytes, Any] = {}
    writer = StateWriter({}, partials, rules(0), WorkerMetrics(CollectorRegistry()),
                         ValueIndex())
    asyncio.run(writer.handle([answer(1)]))
    assert partials and not [raw for raw in partials if ga.is_answers_key(raw.decode())]


def test_an_erasure_takes_the_customers_answers_out_of_every_group() -> None:
    partials: dict[bytes, Any] = {}
    index = PartialsIndex()
    writer = StateWriter({}, partials, rules(), WorkerMetrics(CollectorRegistry()),
                         ValueIndex(), partials_index=index)
    asyncio.run(writer.handle([answer(1, "gone", handled_by="agent-7"), answer(2, "stays"),
                               answer(3, "gone", channel="phone")]))
    receipt = writer.erase("gone")
    assert receipt is not None and receipt["group_answers"] == 5 + 4  # 5 groups, 4 groups
    left = [a for raw, value in partials.items() if ga.is_answers_key(raw.decode())
            for a in value]
    assert left and {a[ga.CUSTOMER_ID] for a in left} == {"stays"}
    assert ga.answers_key(0, "agent", "agent-7").encode() not in partials  # emptied: gone
    assert ga.answers_key(0, "channel", "phone").encode() not in partials
    assert index.answers.keys_of_customer(0, "gone") == []
    assert len(index.answers.keys_of_customer(0, "stays")) == 4
    assert writer.erase("gone") is None


def test_answers_keys_are_bookkeeping_for_the_tally_readers() -> None:
    assert ga.is_answers_key(ga.answers_key(3, "agent", "a|b~answers|c"))
    assert is_bookkeeping_key(ga.answers_key(3, "agent", "x"))
    assert ga.parse_answers_key(ga.answers_key(3, "agent", "a|b")) == (3, "agent", "a|b")
    assert not ga.is_answers_key("3|segment|day|0|~answers|x")


def test_a_groups_answers_at_the_cap_stay_under_their_bound() -> None:
    for kept in (1, 20, 100):
        one = [BIG, worst(), worst(1), "csat", 10, WORST * TEXT_KEPT, "x" * 35]
        raw = orjson.dumps([one] * kept)
        assert len(raw) <= group_answers_bytes_bound(kept) < 2 * len(raw)


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]),
                          st.lists(st.sampled_from(["x", "y", "z"]), max_size=4)),
                max_size=30))
def test_the_index_names_exactly_the_groups_holding_a_customers_answers(
        writes: list[tuple[str, list[str]]]) -> None:
    index = ga.AnswersIndex()
    table: dict[str, list[ga.Answer]] = {}
    for n, (group, customers) in enumerate(writes):
        key = ga.answers_key(2, "touchpoint", group)
        answers = [[n, f"e{n}-{i}", customer, "nps", 9, None, None]
                   for i, customer in enumerate(customers)]
        table[key] = answers
        index.put(key, answers)
    for customer in ("x", "y", "z"):
        assert sorted(index.keys_of_customer(2, customer)) == sorted(
            key for key, answers in table.items()
            if any(a[ga.CUSTOMER_ID] == customer for a in answers))
    assert index.answer_count() == sum(len({a[ga.CUSTOMER_ID] for a in answers})
                                       for answers in table.values())
