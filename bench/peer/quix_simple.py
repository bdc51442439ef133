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
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

# the full job's model and functions (this folder is on the path: both run as scripts)
from quix_cx import Feedback, TimedRun, add_nps, event_time, is_detractor, start_nps

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

    timed = TimedRun(args, {args.feedback})
    app = timed.app
    answers = app.dataframe(app.topic(args.feedback, value_deserializer="json",
                                      key_deserializer="str", timestamp_extractor=event_time))
    answers = answers.apply(parse)
    answers[~answers["valid"]].to_topic(timed.output(f"{args.group}.deadletter"))
    answers = answers[answers["valid"]].apply(remember, stateful=True)
    answers = answers[answers["new"]]
    answers[answers.apply(is_detractor)].apply(alert_of).to_topic(
        timed.output(f"{args.group}.alerts"))
    nps = answers[answers["survey"] == "nps"].group_by("channel")
    scores = nps.tumbling_window(timedelta(days=1)).reduce(add_nps, start_nps).current()
    scores.to_topic(timed.output(f"{args.group}.nps-by-channel"))
    return timed.run()

if __name__ == "__main__":
    raise SystemExit(main())
