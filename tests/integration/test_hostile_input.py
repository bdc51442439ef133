"""Hostile input against a running worker: thousands of bad messages among valid ones.

Hypothesis draws each example's messages: valid events (with extra fields, any Unicode
text, boundary scores) interleaved with random bytes, broken JSON, wrong encodings,
oversized bodies, out-of-range scores, wrong types, missing fields, naive timestamps,
wrong keys and empty values. One worker serves every example; after each, the worker
must still run, every bad message must be on the dead-letter topic with a reason, and
every valid one processed.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxstream.cli.processes import WorkerProcess
from cxstream.cli.scrape import total
from cxstream.streams.ingest.deadletter_record import read_headers
from cxstream.streams.kafka.plain_clients import Record, produce, read_topic
from cxstream.streams.settings import Settings, load_settings
from testkit.support import base_env, feedback, free_port, interaction, to_bytes

pytestmark = pytest.mark.integration

MAX_BYTES = 4_096
_ids = itertools.count()
SEEN: dict[str, int] = {"examples": 0, "valid": 0, "invalid": 0}


@pytest.fixture(scope="module")
def hostile_worker(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[tuple[Settings, WorkerProcess]]:
    folder = tmp_path_factory.mktemp("hostile")
    run = f"hostile{time.monotonic_ns()}"
    values = {"bootstrap_servers": kafka_bootstrap, "app_id": f"cxstream-{run}",
              "topic_interactions": f"{run}.cx.interactions",
              "topic_feedback": f"{run}.cx.feedback", "topic_customers": f"{run}.cx.customers",
              "topic_alerts": f"{run}.cx.alerts", "topic_deadletter": f"{run}.cx.deadletter",
              "partitions": "3", "data_dir": str(folder / "worker"),
              "web_port": str(free_port()), "max_event_bytes": str(MAX_BYTES),
              "allowed_lateness_seconds": str(400 * 86_400)}
    worker = WorkerProcess(base_env(**values), folder / "worker.log",
                           int(values["web_port"])).start()
    try:
        worker.wait_for("cxstream_partitions_assigned", 3, timeout=120)
        yield load_settings({}, **values), worker
    finally:
        print(f"\nhostile input: {SEEN['examples']} examples, {SEEN['valid']} valid and "
              f"{SEEN['invalid']} invalid messages; dead-lettered and lost are checked "
              "per example")
        assert worker.stop() == 0


REPEATS = 50  # each drawn message shape is sent this many times, with fresh ids
texts = st.text(max_size=200)
extras = st.dictionaries(st.text(min_size=1, max_size=8).filter(lambda k: k not in feedback()),
                         st.integers() | texts, max_size=3)
SurveyScores = [("nps", 0), ("nps", 10), ("csat", 1), ("csat", 5), ("ces", 1), ("ces", 7)]
Template = Any  # (n) -> (what, kind, key, value)


@st.composite
def valid_template(draw: st.DrawFn) -> Template:
    if draw(st.booleans()):
        survey, score = draw(st.sampled_from(SurveyScores))
        comment, extra = draw(texts), draw(extras)

        def make_feedback(n: int) -> tuple[str, str, bytes, bytes | None]:
            event = {**feedback(event_id=f"h-{n}", customer_id=f"hc-{n % 97}", survey=survey,
                                score=score, comment=comment), **extra}
            return "valid", "feedback", event["customer_id"].encode(), to_bytes(event)
        return make_feedback
    sentiment, text = draw(st.floats(-1, 1)), draw(texts)

    def make_interaction(n: int) -> tuple[str, str, bytes, bytes | None]:
        event = interaction(event_id=f"h-{n}", customer_id=f"hc-{n % 97}",
                            sentiment=sentiment, text=text)
        return "valid", "interactions", event["customer_id"].encode(), to_bytes(event)
    return make_interaction


@st.composite
def invalid_template(draw: st.DrawFn) -> Template:
    good = feedback(event_id="h-0", customer_id="hc-0")
    body = to_bytes(good)
    mistake = draw(st.one_of(
        st.binary(max_size=300).map(lambda raw: ("random bytes", raw)),
        st.integers(1, len(body) - 1).map(lambda cut: ("truncated", cut)),
        st.integers(11, 10**6).map(lambda s: ("out of range", s)),
        st.sampled_from(["9", 9.5, True, None, [9]]).map(lambda s: ("wrong type", s)),
        st.sampled_from(["event_id", "customer_id", "occurred_at", "survey"]).map(
            lambda f: ("missing field", f)),
        st.sampled_from(["latin-1", "oversized", "naive time", "wrong key", "empty",
                         "null"]).map(lambda what: (what, None)),
    ))

    def make(n: int) -> tuple[str, str, bytes, bytes | None]:
        good = feedback(event_id=f"h-{n}", customer_id=f"hc-{n % 97}")
        key, body = good["customer_id"].encode(), to_bytes(good)
        what, detail = mistake
        value: bytes | None = {
            "random bytes": lambda: detail,
            "truncated": lambda: body[: min(detail, len(body) - 1)],
            "out of range": lambda: to_bytes({**good, "score": detail}),
            "wrong type": lambda: to_bytes({**good, "score": detail}),
            "missing field": lambda: to_bytes({k: v for k, v in good.items() if k != detail}),
            "latin-1": lambda: json.dumps({**good, "comment": "Ž"}, ensure_ascii=False)
            .encode("utf-8").replace("Ž".encode(), b"\x8e"),
            "oversized": lambda: to_bytes({**good, "comment": "x" * MAX_BYTES}),
            "naive time": lambda: to_bytes({**good, "occurred_at": "2026-11-23T10:00:00"}),
            "wrong key": lambda: body,
            "empty": lambda: b"",
            "null": lambda: None,
        }[what]()
        return what, "feedback", (b"not-" + key if what == "wrong key" else key), value
    return make


@st.composite
def messages(draw: st.DrawFn) -> list[tuple[str, str, bytes, bytes | None]]:
    """(what, kind, key, value): what is "valid" or the mistake; shapes drawn by
    Hypothesis, each sent REPEATS times with fresh ids, in a drawn interleaving."""
    shapes = draw(st.lists(valid_template(), min_size=3, max_size=25)) + draw(
        st.lists(invalid_template(), min_size=3, max_size=25))
    order = draw(st.permutations(range(len(shapes))))
    return [shapes[index](next(_ids)) for _ in range(REPEATS) for index in order]


@settings(max_examples=5, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(batch=messages())
def test_hostile_input_never_stops_the_worker_and_nothing_is_lost(
    hostile_worker: tuple[Settings, WorkerProcess], batch: list[Any], tmp_path: Path
) -> None:
    settings_, worker = hostile_worker
    topic = {"feedback": settings_.topic_feedback,
             "interactions": settings_.topic_interactions}
    before = worker.metrics()
    since = time.time() - 1
    asyncio.run(produce(settings_, [Record(topic[kind], key, value)
                                    for _, kind, key, value in batch]))
    sent_valid = sum(1 for what, *_ in batch if what == "valid")
    sent_invalid = len(batch) - sent_valid
    consumed = total(before, "cxstream_events_consumed_total") + len(batch)
    worker.wait_for("cxstream_events_consumed_total", consumed, timeout=120)
    # consumed counts a batch when it is taken; its outcomes follow when it is processed
    worker.wait_for("cxstream_events_accepted_total",
                    total(before, "cxstream_events_accepted_total") + sent_valid, timeout=60)
    worker.wait_for("cxstream_events_deadlettered_total",
                    total(before, "cxstream_events_deadlettered_total") + sent_invalid,
                    timeout=60)
    time.sleep(0.5)  # anything beyond the expected counts would show now
    after = worker.metrics()
    assert worker.running
    accepted = (total(after, "cxstream_events_accepted_total")
                - total(before, "cxstream_events_accepted_total"))
    deadlettered = (total(after, "cxstream_events_deadlettered_total")
                    - total(before, "cxstream_events_deadlettered_total"))
    assert (accepted, deadlettered) == (sent_valid, sent_invalid)
    applied = (total(after, "cxstream_events_folded_total", outcome="applied")
               - total(before, "cxstream_events_folded_total", outcome="applied"))
    assert applied == sent_valid  # every valid one changed the state (new event ids)
    # on the dead-letter topic: the original bytes, each with a class and a reason
    records = asyncio.run(read_topic(settings_, settings_.topic_deadletter, since=since))
    bad = {(key, value or b"") for what, _, key, value in batch if what != "valid"}
    found = {(r.key or b"", r.value or b""): read_headers(list(r.headers)) for r in records}
    assert bad <= set(found)
    for item in bad:
        meta = found[item]
        assert meta["error.class"] != "internal" and meta["error.reason"], meta
    SEEN["examples"] += 1
    SEEN["valid"] += sent_valid
    SEEN["invalid"] += sent_invalid
