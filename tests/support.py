"""Helpers shared by the test layers: event builders, ports, environments."""

from __future__ import annotations

import json
import os
from typing import Any

from cxstream.processes import free_port  # noqa: F401  (re-exported for the tests)

NOW = "2026-11-23T10:00:00+00:00"


def feedback(**overrides: Any) -> dict[str, Any]:
    event = {"event_id": "f-1", "customer_id": "c-1", "occurred_at": NOW, "survey": "nps",
             "score": 9, "channel": "web", "touchpoint": "checkout"}
    event.update(overrides)
    return event


def interaction(**overrides: Any) -> dict[str, Any]:
    event = {"event_id": "i-1", "customer_id": "c-1", "occurred_at": NOW, "channel": "phone",
             "touchpoint": "support"}
    event.update(overrides)
    return event


def profile(**overrides: Any) -> dict[str, Any]:
    event = {"customer_id": "c-1", "segment": "smb", "value": 100.0, "updated_at": NOW}
    event.update(overrides)
    return event


def to_bytes(event: dict[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False).encode("utf-8")




def base_env(**settings: str) -> dict[str, str]:
    """The parent environment without CXSTREAM_/Faust variables, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXSTREAM_")}
    env.update({f"CXSTREAM_{k.upper()}": v for k, v in settings.items()})
    return env
