"""A small, fixed set of sample inputs: valid events of every kind and typical bad ones."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cxstream.schemas.examples import FEEDBACK, INTERACTION, PROFILE
from cxstream.streams.kafka.plain_clients import Record
from cxstream.streams.settings import Settings

#: the kinds ``cxstream send example`` sends, in order, with their example and time field
EXAMPLES = {"customers": (PROFILE, "updated_at"), "interactions": (INTERACTION, "occurred_at"),
            "feedback": (FEEDBACK, "occurred_at")}


@dataclass(frozen=True)
class Samples:
    records: list[Record]
    valid: int
    invalid: int


def _json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode("utf-8")


def sample_records(settings: Settings, now: datetime) -> Samples:
    """Valid profiles, interactions and feedback, then one input of each kind of mistake."""
    at = (now - timedelta(minutes=5)).isoformat()
    profiles = [
        {"customer_id": "c-1001", "segment": "enterprise", "value": 250000.0,
         "owner": "am.jonaitis", "region": "LT", "updated_at": at},
        {"customer_id": "c-1002", "segment": "smb", "value": 1200.0, "region": "EE",
         "updated_at": at},
        {"customer_id": "c-1003", "segment": "consumer", "value": 90.5, "updated_at": at},
    ]
    interactions = [
        {"event_id": "i-1", "customer_id": "c-1001", "occurred_at": at, "channel": "phone",
         "touchpoint": "support", "outcome": "escalated", "wait_seconds": 1260},
        {"event_id": "i-2", "customer_id": "c-1002", "occurred_at": at, "channel": "web",
         "touchpoint": "checkout", "outcome": "success", "amount": 149.9},
        {"event_id": "i-3", "customer_id": "c-1003", "occurred_at": at, "channel": "social",
         "touchpoint": "delivery", "sentiment": -0.8,
         "text": "Third week waiting for my parcel. Never again."},
    ]
    feedback = [
        {"event_id": "f-1", "customer_id": "c-1001", "occurred_at": at, "survey": "nps",
         "score": 3, "channel": "email", "touchpoint": "support",
         "comment": "Labai ilgai laukiau atsakymo iš palaikymo komandos.", "language": "lt"},
        {"event_id": "f-2", "customer_id": "c-1002", "occurred_at": at, "survey": "csat",
         "score": 5, "channel": "web", "touchpoint": "checkout", "language": "et",
         "comment": "Kiire ja mugav tellimine."},
        {"event_id": "f-3", "customer_id": "c-1003", "occurred_at": at, "survey": "ces",
         "score": 2, "channel": "app", "touchpoint": "returns", "language": "pl",
         "comment": "Zwrot towaru był bardzo skomplikowany."},
    ]
    records = [Record(settings.topic_customers, str(p["customer_id"]).encode(), _json(p))
               for p in profiles]
    records += [Record(settings.topic_interactions, str(e["customer_id"]).encode(), _json(e))
                for e in interactions]
    records += [Record(settings.topic_feedback, str(e["customer_id"]).encode(), _json(e))
                for e in feedback]
    valid = len(records)
    bad_score = dict(feedback[0], event_id="f-bad-score", score=11)
    naive_time = dict(feedback[1], event_id="f-naive", occurred_at="2026-11-23T10:00:00")
    invalid = [
        Record(settings.topic_feedback, b"c-1001", b"this is not json"),
        Record(settings.topic_feedback, b"c-1001", b'{"comment": "\xff\xfe broken"}'),
        Record(settings.topic_feedback, b"c-1001", _json(bad_score)),
        Record(settings.topic_feedback, b"c-1002", _json(naive_time)),
        Record(settings.topic_interactions, b"someone-else", _json(interactions[0])),
        Record(settings.topic_customers, b"c-1003",
               _json(dict(profiles[2], note="x" * (settings.max_event_bytes + 1)))),
    ]
    return Samples(records + invalid, valid=valid, invalid=len(invalid))


def example_events(now: datetime, token: str,
                   kinds: tuple[str, ...] = tuple(EXAMPLES)) -> list[tuple[str, dict[str, Any]]]:
    """The docs' examples of ``kinds`` (kind, event), stamped a little before ``now`` in
    their order, with ids made fresh by ``token``: a customer of their own, so a second
    run raises a new alert instead of folding into the first one's."""
    customer = f"{PROFILE['customer_id']}-{token}"
    events = []
    for step, kind in enumerate(kinds):
        example, time_field = EXAMPLES[kind]
        event = {**example, "customer_id": customer,
                 time_field: (now - timedelta(seconds=3 * (len(kinds) - step))).isoformat()}
        if "event_id" in event:
            event["event_id"] = f"{event['event_id']}-{token}"
        events.append((kind, event))
    return events
