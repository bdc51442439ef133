"""The CX job as a Python user would write it with quix-streams: bench/throughput.py's peer.

    .venv-peer/bin/python bench/peer/quix_cx.py --bootstrap HOST:PORT --count N \
        --customers T --interactions T --feedback T --state-dir DIR

Runs in its own virtualenv (bench/peer/requirements.txt, ``make bench-peer``), with no
import of cxstream. The job, written the way the library's documentation shows it:
- the three input topics concatenated into one stream keyed by customer id, each
  message validated with a pydantic model (an invalid one goes to a dead-letter topic);
- per-customer state in quix-streams' RocksDB state (changelogged), one value per
  customer: the profile, the latest score per survey, the last 20 interactions and
  answers, the ids already seen;
- detractor alerts (NPS 0-6, a CSAT of 1-2, a CES of 5 or more) of a customer with a
  profile, to an alerts topic;
  (JSON decoded by quix-streams' deserializer, then validated: the documented way);
- NPS per channel in tumbling day windows on event time, after a ``group_by`` on the
  channel, published as each window changes.

Prints one JSON line: {"seconds": ..., "processed": ...}, the time from the first input
message processed to the ``count``-th, which ends the run.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError
from quixstreams import Application
from quixstreams.models import TopicConfig

KEPT = 20


class Profile(BaseModel):
    customer_id: str = Field(min_length=1, max_length=128)
    segment: str
    value: float = Field(ge=0)
    owner: str | None = None
    region: str | None = None
    updated_at: datetime


class Interaction(BaseModel):
    event_id: str = Field(min_length=1, max_length=128)
    customer_id: str = Field(min_length=1, max_length=128)
    occurred_at: datetime
    channel: str
    touchpoint: str
    outcome: str | None = None
    wait_seconds: float | None = Field(default=None, ge=0)
    sentiment: Annotated[float, Field(ge=-1, le=1)] | None = None
    text: str | None = Field(default=None, max_length=4000)
    amount: float | None = None


class Feedback(BaseModel):
    event_id: str = Field(min_length=1, max_length=128)
    customer_id: str = Field(min_length=1, max_length=128)
    occurred_at: datetime
    survey: Literal["nps", "csat", "ces"]
    score: int
    channel: str
    touchpoint: str
    comment: str | None = Field(default=None, max_length=4000)
    language: str | None = None


def parser(kind: str, model: type[BaseModel]) -> Any:
    def parse(value: Any) -> dict[str, Any]:
        try:
            event = model.model_validate(value)
        except ValidationError as exc:
            return {"kind": "invalid", "error": str(exc)[:500], "value": value}
        return {"kind": kind, **event.model_dump(mode="json")}
    return parse


def is_detractor(event: dict[str, Any]) -> bool:
    survey, score = event["survey"], event["score"]
    return (survey == "nps" and score <= 6) or (survey == "csat" and score <= 2) or (
        survey == "ces" and score >= 5)


def fold_customer(event: dict[str, Any], state: Any) -> dict[str, Any]:
    """Update the customer's state; mark the event when it is new and alerts. The state
    is one value per customer, read and written once per event: quix-streams copies what
    ``state.get`` returns (so a changed value is never shared), and five keys read and
    four written per event were most of the peer's own time in a py-spy profile."""
    customer = state.get("customer", None) or {
        "profile": None, "seen": [], "interactions": [], "answers": [], "latest": {}}
    kind = event["kind"]
    if kind == "customer":
        customer["profile"] = event
        state.set("customer", customer)
        return {**event, "alert": False}
    if event["event_id"] in customer["seen"]:
        return {**event, "alert": False, "duplicate": True}
    customer["seen"] = [*customer["seen"], event["event_id"]][-100:]
    profile = customer["profile"]
    if kind == "interaction":
        customer["interactions"] = [*customer["interactions"], event][-KEPT:]
        state.set("customer", customer)
        return {**event, "alert": False}
    customer["answers"] = [*customer["answers"], event][-KEPT:]
    customer["latest"][event["survey"]] = {"score": event["score"],
                                           "at": event["occurred_at"]}
    state.set("customer", customer)
    return {**event, "alert": profile is not None and is_detractor(event),
            "segment": profile["segment"] if profile else None,
            "owner": profile["owner"] if profile else None}


def alert_of(event: dict[str, Any]) -> dict[str, Any]:
    return {"rule": "detractor", "customer_id": event["customer_id"],
            "event_id": event["event_id"], "survey": event["survey"],
            "score": event["score"], "segment": event["segment"], "owner": event["owner"],
            "comment": event.get("comment")}


def add_nps(tally: dict[str, int], event: dict[str, Any]) -> dict[str, int]:
    score = event["score"]
    group = "promoters" if score >= 9 else "passives" if score >= 7 else "detractors"
    return {**tally, group: tally[group] + 1}


def start_nps(event: dict[str, Any]) -> dict[str, int]:
    return add_nps({"promoters": 0, "passives": 0, "detractors": 0}, event)


def event_time(value: Any, headers: Any, timestamp: float, timestamp_type: Any) -> int:
    """Milliseconds of the event's own time (the message timestamp without one)."""
    try:
        return int(datetime.fromisoformat(value["occurred_at"]).timestamp() * 1000)
    except (KeyError, ValueError, TypeError):
        return int(timestamp)


class TimedRun:
    """A quix-streams Application that stops once ``count`` messages of ``inputs`` were
    processed, timed from the first of them (both peers run this way)."""

    def __init__(self, args: argparse.Namespace, inputs: set[str]) -> None:
        self.count, self.inputs = args.count, inputs
        self.processed = 0
        self.began: float | None = None
        self.app = Application(broker_address=args.bootstrap, consumer_group=args.group,
                               auto_offset_reset="earliest", state_dir=args.state_dir,
                               on_message_processed=self.on_processed, loglevel="WARNING")

    def on_processed(self, topic: str, partition: int, offset: int) -> None:
        if topic not in self.inputs:
            return
        if self.began is None:
            self.began = time.monotonic()
        self.processed += 1
        if self.processed >= self.count:
            self.app.stop()

    def output(self, name: str) -> Any:
        """An output topic of the job (JSON, 4 partitions)."""
        return self.app.topic(name, value_serializer="json", key_serializer="str",
                              config=TopicConfig(num_partitions=4, replication_factor=1))

    def run(self) -> int:
        """Run the job; print {"seconds": ..., "processed": ...}."""
        self.app.run()
        seconds = 0.0 if self.began is None else time.monotonic() - self.began
        print(json.dumps({"seconds": seconds, "processed": self.processed}))
        return 0


def main() -> int:
    parser_ = argparse.ArgumentParser()
    for name in ("bootstrap", "customers", "interactions", "feedback", "state-dir"):
        parser_.add_argument(f"--{name}", required=True)
    parser_.add_argument("--count", type=int, required=True)
    parser_.add_argument("--group", default="bench-quix")
    args = parser_.parse_args()
    timed = TimedRun(args, {args.customers, args.interactions, args.feedback})
    app = timed.app
    raw = {"value_deserializer": "json", "key_deserializer": "str"}
    streams = [
        app.dataframe(app.topic(args.customers, **raw)).apply(
            parser("customer", Profile)),
        app.dataframe(app.topic(args.interactions, timestamp_extractor=event_time, **raw)
                      ).apply(parser("interaction", Interaction)),
        app.dataframe(app.topic(args.feedback, timestamp_extractor=event_time, **raw)
                      ).apply(parser("feedback", Feedback)),
    ]
    events = streams[0].concat(streams[1]).concat(streams[2])
    invalid = events[events["kind"] == "invalid"]
    invalid.to_topic(timed.output(f"{args.group}.deadletter"))
    events = events[events["kind"] != "invalid"]
    events = events.apply(fold_customer, stateful=True)
    alerts = events[events["alert"]]
    alerts.apply(alert_of).to_topic(timed.output(f"{args.group}.alerts"))
    answers = events[(events["kind"] == "feedback") & (events["survey"] == "nps")]
    by_channel = answers.group_by("channel")
    scores = by_channel.tumbling_window(timedelta(days=1)).reduce(add_nps, start_nps).current()
    scores.to_topic(timed.output(f"{args.group}.nps-by-channel"))
    return timed.run()

if __name__ == "__main__":
    raise SystemExit(main())
