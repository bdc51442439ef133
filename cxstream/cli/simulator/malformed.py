"""The malformed share of a simulated run: one of the mistakes producers really make."""

from __future__ import annotations

import json
import random
from typing import Any

from cxstream.cli.simulator.population import Kind

#: what is wrong, and the input topic it is sent to
MISTAKES = ("json", "encoding", "score_out_of_range", "score_as_text", "missing_field",
            "naive_timestamp", "oversized", "empty", "key_mismatch", "unknown_survey")
OVERSIZED_CHARS = 80_000  # above the default max_event_bytes (65,536) and MAX_TEXT_CHARS


def malformed_record(rng: random.Random, customer_id: str,
                     base: dict[str, Any]) -> tuple[Kind, bytes, bytes, str]:
    """(kind, key, value, mistake) for a feedback message with one mistake in it."""
    mistake = rng.choice(MISTAKES)
    key = customer_id.encode()
    good = base | {"survey": "nps", "score": 3, "channel": "email", "touchpoint": "support"}
    value: bytes
    if mistake == "json":
        value = json.dumps(good).encode()[:-7]  # cut off mid-object
    elif mistake == "encoding":
        value = json.dumps(good | {"comment": "Blogas aptarnavimas, ilgai laukiau"},
                           ensure_ascii=False).encode("utf-8").replace(
                               b"laukiau", "laukiau \u010dia".encode("cp1257"))
    elif mistake == "score_out_of_range":
        value = _dump(good | {"score": 11})
    elif mistake == "score_as_text":
        value = _dump(good | {"score": "9"})
    elif mistake == "missing_field":
        value = _dump({k: v for k, v in good.items() if k != "occurred_at"})
    elif mistake == "naive_timestamp":
        value = _dump(good | {"occurred_at": good["occurred_at"][:19]})
    elif mistake == "oversized":
        value = _dump(good | {"comment": "x" * OVERSIZED_CHARS})
    elif mistake == "empty":
        value = b""
    elif mistake == "key_mismatch":
        value, key = _dump(good), b"someone-else"
    else:
        value = _dump(good | {"survey": "happiness"})
    return "feedback", key, value, mistake


def _dump(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode("utf-8")
