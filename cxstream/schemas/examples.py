"""One example of each input event: the examples of the JSON Schemas, README.md and
docs/contract.md (cxstream.cli.examples adds the alert the rules raise on them)."""

from __future__ import annotations

from typing import Any

PROFILE: dict[str, Any] = {
    "customer_id": "cus-20417", "segment": "smb", "value": 1840.0, "region": "EE",
    "updated_at": "2026-11-28T16:05:00+00:00"}
INTERACTION: dict[str, Any] = {
    "event_id": "int-7f3a9c", "customer_id": "cus-20417",
    "occurred_at": "2026-12-01T09:12:44+00:00", "channel": "delivery",
    "touchpoint": "courier", "outcome": "failure", "sentiment": -0.6,
    "text": "Parcel not delivered, no notice left"}
FEEDBACK: dict[str, Any] = {
    "event_id": "fb-9d21e4", "customer_id": "cus-20417",
    "occurred_at": "2026-12-01T09:41:58+00:00", "survey": "nps", "score": 3,
    "channel": "email", "touchpoint": "delivery",
    "comment": "Second time the courier did not show up. I want a refund.", "language": "en"}
