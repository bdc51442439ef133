"""The pipeline's own work as 0.3.0 did it, for bench/throughput.py's same-run ratio: the
pydantic fold (testkit/reference/fold.py), the alert rules over the contract's models
(testkit/reference/reactions.py), every changed state encoded whole as JSON (its changelog
record), validation as the worker does it, in the same batches. Not used by the product;
tests/unit/test_plain_core.py checks that the product's core gives the same results."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from faust.serializers import codecs

from cxstream.alerts.reactions import AlertReactions
from cxstream.schemas.parsing import InputKind, Rejection, parse_input
from cxstream.scoring.customer import CustomerState, experience_is_low
from cxstream.scoring.fold import (
    FoldRules,
    PartialTally,
    SourcedEvent,
    watermark_key,
)
from cxstream.scoring.groups import GroupKeys
from cxstream.scoring.value_bands import ValueIndex
from cxstream.scoring.windows import Watermark
from testkit.reference.fold import fold_batch
from testkit.reference.reactions import on_batch

#: (kind, partition, offset, key, value) of one input message
Message = tuple[InputKind, int, int, bytes, bytes]


class ReferenceWorker:
    """States and tallies as pydantic models in dicts; counts the changelog bytes."""

    def __init__(self, rules: FoldRules, reactions: AlertReactions, max_event_bytes: int,
                 index: ValueIndex | None = None) -> None:
        self.rules = rules
        self.index = index  # told of every state written, as the worker's was
        self.reactions = reactions
        self.max_event_bytes = max_event_bytes
        self.states: dict[str, CustomerState] = {}
        self.partials: dict[str, PartialTally] = {}
        self.watermarks: dict[int, Watermark] = {}
        self.keys: dict[int, dict[str, list[str]]] = {}
        self.changelog_bytes = 0

    def process(self, batch: Sequence[Message], now: Callable[[], float] = time.time) -> None:
        by_partition: dict[int, list[SourcedEvent]] = {}
        for kind, partition, offset, key, value in batch:
            parsed = parse_input(kind, key, value, self.max_event_bytes)
            if not isinstance(parsed, Rejection):
                by_partition.setdefault(partition, []).append(
                    SourcedEvent(parsed, offset, now()))
        for partition, items in by_partition.items():
            self._fold(partition, items)

    def _fold(self, partition: int, items: list[SourcedEvent]) -> None:
        cap = self.rules.max_group_keys
        keys = None if cap is None else GroupKeys(cap, self.keys.get(partition))
        result = fold_batch(partition, items, self.states.get, self.partials.get,
                            self.watermarks.get(partition, Watermark()), self.rules, keys)
        changed, _ = on_batch(self.reactions, partition, result.applied)
        for customer_id, alert_state in changed.items():
            result.states[customer_id] = result.states[customer_id].model_copy(
                update={"alerts": alert_state})
        for key, partial in result.partials.items():
            self.partials[key] = partial
            self._count(key.encode(), codecs.dumps("json", partial.model_dump(mode="json")))
        self.watermarks[partition] = result.watermark
        self._count(watermark_key(partition).encode(),
                    codecs.dumps("json", result.watermark.model_dump()))
        for customer_id, state in result.states.items():
            if self.states.get(customer_id) is state:
                continue
            self.states[customer_id] = state
            if self.index is not None and state.profile is not None:
                self.index.update(partition, customer_id, state.profile.segment,
                                  state.profile.value,
                                  experience_is_low(state, self.rules.state))
            self._count(customer_id.encode(), b"%d|" % partition
                        + state.model_dump_json(exclude_none=True).encode())
        if keys is not None:
            self.keys[partition] = {d: keys.keys_of(d) for d in keys.admitted}

    def _count(self, key: bytes, value: Any) -> None:
        self.changelog_bytes += len(key) + len(value)
