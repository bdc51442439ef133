"""A simpler CX job with quix-streams, feedback only: bench/throughput.py's second peer,
the library's best case on this machine.

    .venv-peer/bin/python bench/peer/quix_simple.py --bootstrap HOST:PORT --count N \
        --feedback T --state-dir DIR

Runs in the peer's virtualenv (bench/peer/requirements.txt, ``make bench-peer``), with no
import of cxstream. The job, as the library's documentation writes such a pipeline:
- each answer of the feedback topic validated with a pydantic model (an invalid one goes
  to a dead-letter topic);
- per-customer state (one state key per customer: the latest score per survey and the
  ids already seen, so a resend is ignored);
- a detractor alert (NPS 0-6, CSAT 1-2, CES 5 or more) to an alerts topic;
- NPS per channel in tumbling day windows on event time, after a ``group_by`` on the
  channel, published as each window changes.

No profiles, interactions, value bands, cooldowns, routing, surveys or priorities: what
the full job (quix_cx.py) and cxstream add on top of this is the difference the two rows
of the bench show.

Prints one JSON line: {"seconds": ..., "processed": ...}, the time from the first answer
processed to the ``count``-th, which ends the run.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

# the full job's model and functions (this folder is on the path: both run as scripts)
from quix_cx import Feedback, add_nps, event_time, is_detractor, start_nps
from quixstreams import Application
from quixstreams.models import TopicConfig

SEEN_KEPT = 100


def parse(value: Any) -> dict[str, Any]:
    try:
        return {"valid": True, **Feedback.model_validate(value).model_dump(mode="json")}
    except ValidationError as exc:
        return {"valid": False, "error": str(exc)[:500], "value": value}


def remember(answer: dict[str, Any], state: Any) -> dict[str, Any]:
    """The customer's state after the answer; the answer marked new (or a resend)."""
    customer = state.get("customer", {"latest": {}, "seen": []})
    if answer["event_id"] in customer["seen"]:
        return {**answer, "new": False}
    customer["seen"] = [*customer["seen"], answer["event_id"]][-SEEN_KEPT:]
    customer["latest"][answer["survey"]] = [answer["score"], answer["occurred_at"]]
    state.set("customer", customer)
    return {**answer, "new": True}


def alert_of(answer: dict[str, Any]) -> dict[str, Any]:
    return {"rule": "detractor", "customer_id": answer["customer_id"],
            "event_id": answer["event_id"], "survey": answer["survey"],
            "score": answer["score"], "comment": answer.get("comment")}


def main() -> int:
    parser = argparse.ArgumentParser()
    for name in ("bootstrap", "feedback", "state-dir"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--group", default="bench-quix-simple")
    args = parser.parse_args()

    processed = [0]
    began: list[float] = []

    def on_processed(topic: str, partition: int, offset: int) -> None:
        if topic != args.feedback:
            return
        if not began:
            began.append(time.monotonic())
        processed[0] += 1
        if processed[0] >= args.count:
            app.stop()

    app = Application(broker_address=args.bootstrap, consumer_group=args.group,
                      auto_offset_reset="earliest", state_dir=args.state_dir,
                      on_message_processed=on_processed, loglevel="WARNING")
    answers = app.dataframe(app.topic(args.feedback, value_deserializer="json",
                                      key_deserializer="str", timestamp_extractor=event_time))
    answers = answers.apply(parse)
    out = {"value_serializer": "json", "key_serializer": "str",
           "config": TopicConfig(num_partitions=4, replication_factor=1)}
    answers[~answers["valid"]].to_topic(app.topic(f"{args.group}.deadletter", **out))
    answers = answers[answers["valid"]].apply(remember, stateful=True)
    answers = answers[answers["new"]]
    answers[answers.apply(is_detractor)].apply(alert_of).to_topic(
        app.topic(f"{args.group}.alerts", **out))
    nps = answers[answers["survey"] == "nps"].group_by("channel")
    scores = nps.tumbling_window(timedelta(days=1)).reduce(add_nps, start_nps).current()
    scores.to_topic(app.topic(f"{args.group}.nps-by-channel", **out))
    app.run()
    seconds = time.monotonic() - began[0] if began else 0.0
    print(json.dumps({"seconds": seconds, "processed": processed[0]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
