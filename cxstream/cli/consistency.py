"""Compare the stream's group tallies with a batch recomputation from the input topics."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from cxstream.scoring.groups import KEYED_DIMENSIONS
from cxstream.scoring.recompute import GroupTallies, RawInput, recompute
from cxstream.scoring.tallies import Tally
from cxstream.streams.kafka.plain_clients import read_topic
from cxstream.streams.settings import Settings


async def read_inputs(settings: Settings) -> list[RawInput]:
    """Every message now in the three input topics."""
    inputs = []
    for topic in settings.input_topics:
        for record in await read_topic(settings, topic, timeout_seconds=300):
            inputs.append(RawInput(record.topic, record.partition, record.offset,
                                   record.timestamp, record.key, record.value))
    return inputs


def batch_tallies(settings: Settings) -> GroupTallies:
    """The tallies recomputed from the topics (see scoring.recompute for the rules)."""
    inputs = asyncio.run(read_inputs(settings))
    return recompute(inputs, settings.input_kinds(), settings.max_event_bytes,
                     settings.fold_rules())


def stream_tallies(base_url: str, token: str | None) -> GroupTallies:
    """The tallies the running workers hold, through the HTTP API."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    tallies: GroupTallies = {}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
        for dimension in KEYED_DIMENSIONS:
            response = client.get(f"/api/tallies/{dimension}")
            response.raise_for_status()
            for row in response.json()["tallies"]:
                slot = (dimension, row.pop("window"), int(row.pop("start")), row.pop("key"))
                tally = Tally.model_validate(row)
                if not tally.is_empty:
                    tallies[slot] = tally
    return tallies


def differences(expected: GroupTallies, actual: GroupTallies) -> list[dict[str, Any]]:
    """Every slot whose tallies differ, with both sides (empty: the two agree exactly)."""
    found = []
    for slot in sorted(set(expected) | set(actual)):
        want, got = expected.get(slot), actual.get(slot)
        if want != got:
            found.append({"slot": list(slot),
                          "batch": want.model_dump() if want else None,
                          "stream": got.model_dump() if got else None})
    return found
