"""Wire the scoring fold to Faust tables: one read and one write per key per batch.

Tables (all changelogged to Kafka, partitioned like the input topics):
- ``customer_to_state``: customer_id (bytes) -> b"<partition>|" + compact JSON of the
  CustomerState (bytes take about a sixth of the memory of the same state as Python
  dicts; see bench/memory_per_customer.py); the partition prefix lets a worker skip data
  of partitions it no longer owns (the memory store keeps them after a rebalance)
- ``group_partials``: "<partition>|<dimension>|<window>|<start>|<key>" -> PartialTally, and
  "<partition>|~watermark" -> Watermark; each partition keeps its own share of every
  group tally (two-phase aggregation: no repartition per event; queries add the shares).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from cxstream.alerts.reactions import AlertReactions
from cxstream.schemas.parsing import ErrorClass, Rejection
from cxstream.scoring.customer import CustomerState, StateRules, experience_is_low
from cxstream.scoring.fold import (
    FoldResult,
    FoldRules,
    PartialTally,
    SourcedEvent,
    expired_partial_keys,
    fold_batch,
    group_keys_key,
    partial_slots,
    watermark_key,
)
from cxstream.scoring.groups import DIMENSIONS, GroupKeys
from cxstream.scoring.value_bands import ValueIndex
from cxstream.scoring.windows import Watermark
from cxstream.streams.changelog import BulkChangelog
from cxstream.streams.faust_compat.access import table_store, writing_for
from cxstream.streams.ingest import Accepted
from cxstream.streams.metrics import WorkerMetrics

log = logging.getLogger(__name__)

T = TypeVar("T")
#: runs a send until Kafka confirms it (streams.delivery.deliver with the worker's stop)
Deliver = Callable[[Callable[[], Awaitable[Any]], str], Awaitable[Any]]


async def _deliver_once(send: Callable[[], Awaitable[Any]], what: str) -> Any:
    return await send()

EXPIRY_INTERVAL_SECONDS = 60.0
#: decoded states kept beside the table (their bytes checked by identity): decoding JSON
#: stood out in a py-spy profile of the worker (bench/profile_worker.py)
DECODED_KEPT = 50_000


def encode_customer(partition: int, state: CustomerState) -> bytes:
    return f"{partition}|".encode() + state.model_dump_json(exclude_none=True).encode()


def customer_partition(raw: bytes) -> int:
    return int(raw[: raw.index(b"|")])


def decode_customer(raw: bytes) -> CustomerState:
    return CustomerState.model_validate_json(raw[raw.index(b"|") + 1 :])


def erased_key(customer_id: str) -> bytes:
    """Key of an erased customer's marker: a digest, not the id."""
    return hashlib.sha256(customer_id.encode()).hexdigest().encode()


class StateWriter:
    """Folds accepted inputs into the tables, partition by partition."""

    def __init__(self, customers: Any, partials: Any, rules: FoldRules,
                 metrics: WorkerMetrics, value_index: ValueIndex,
                 reactions: AlertReactions | None = None,
                 emit: Callable[[list[Any]], Awaitable[None]] | None = None,
                 changelog: BulkChangelog | None = None,
                 deliver: Deliver | None = None, erased: Any = None) -> None:
        self.customers = customers
        #: table erased_customers: SHA-256 of an erased id -> what keeps its old events
        #: from being applied again ({"applied_up_to": {kind: offset}, "erased_at": ...})
        self.erased = erased
        self.deliver: Deliver = deliver or _deliver_once
        self._loaded: dict[str, CustomerState] = {}  # states as loaded for the current fold
        self._outputs: list[Any] = []
        self.changelog = changelog
        self.value_index = value_index
        self._decoded: OrderedDict[str, tuple[bytes, CustomerState]] = OrderedDict()
        self.reactions = reactions
        self.emit = emit
        self.partials = partials
        self.rules = rules
        self.metrics = metrics
        self._last_expiry: dict[int, float] = {}

    async def handle(self, accepted: Sequence[Accepted]) -> list[tuple[Accepted, Rejection]]:
        """BatchHandler for Ingest: returns the inputs that could not be folded. What they
        caused is sent by ``finish``."""
        failures: list[tuple[Accepted, Rejection]] = []
        for partition, items in _by_partition(accepted).items():
            with writing_for(items[-1].source):
                produced, failed = self._fold_partition(partition, items)
                self._maybe_expire(partition)
            failures += failed
            self._outputs += produced
        return failures

    async def finish(self) -> None:
        """Send the batch's alerts and signals, then its changelog records; return once
        Kafka has them all.

        The order is what makes a crash harmless: a state in the changelog means that what
        its events caused is in Kafka already. A worker killed between the two leaves the
        old state, so the events are read again as new and raise the same alerts (ids are
        deterministic; the webhook sink posts an id once); a worker killed after both
        leaves nothing to send again.
        """
        outputs, self._outputs = self._outputs, []
        if self.emit is not None and outputs:
            emit = self.emit
            await self.deliver(lambda: emit(outputs), "publishing alerts and signals")
        if self.changelog is not None and self.changelog.pending:
            changelog = self.changelog
            pending = changelog.take()
            await self.deliver(lambda: changelog.send_all(pending), "writing table changelogs")

    def erase(self, customer_id: str) -> bool:
        """Remove a customer's state and remembered ids through the changelog (right to
        erasure); their old events stay ignored if read again. False: unknown here."""
        key = customer_id.encode()
        raw = self._get(self.customers, key)
        if raw is None:
            return False
        partition = customer_partition(raw)
        state = decode_customer(raw)
        if self.changelog is None:
            del self.customers[key]
        else:
            self.changelog.delete(self.customers, partition, key)
        if self.erased is not None:
            marker = json.dumps({"applied_up_to": state.applied_up_to,
                                 "erased_at": datetime.now(UTC).isoformat()}).encode()
            self._set(self.erased, partition, erased_key(customer_id), marker)
        self._decoded.pop(customer_id, None)
        self.value_index.forget(partition, customer_id)
        return True

    def load_state(self, customer_id: str) -> CustomerState | None:
        """The customer's current state (None: unknown here)."""
        return self._load_state(customer_id)

    def put_state(self, partition: int, customer_id: str, state: CustomerState,
                  outputs: list[Any]) -> None:
        """Write one state outside a batch of events, with what it caused (sent by
        ``finish``)."""
        raw = encode_customer(partition, state)
        self._set(self.customers, partition, customer_id.encode(), raw)
        self._decoded[customer_id] = (raw, state)
        self._outputs += outputs

    def _set(self, table: Any, partition: int, key: bytes, value: Any) -> None:
        if self.changelog is None:
            table[key] = value  # a Faust write: its changelog record on its own
        else:
            self.changelog.set(table, partition, key, value)

    def _get(self, table: Any, key: bytes) -> Any:
        # the store itself: Faust's table mapping adds a sensor call per read
        return table_store(table).get(key) if self.changelog is not None else table.get(key)

    def _fold_partition(self, partition: int, items: list[Accepted]
                        ) -> tuple[list[Any], list[tuple[Accepted, Rejection]]]:
        try:
            result = self._fold(partition, items)
            produced = self._react(partition, result)
            self._write(partition, result)
            return produced, []
        except Exception:
            log.exception("folding a batch of partition %d failed; retrying one by one",
                          partition)
        outputs: list[Any] = []
        failures = []
        for item in items:  # isolate the input that breaks the fold
            try:
                result = self._fold(partition, [item])
                produced = self._react(partition, result)
                self._write(partition, result)
                outputs += produced
            except Exception as exc:
                failures.append((item, Rejection(ErrorClass.INTERNAL,
                                                 f"{type(exc).__name__}: {exc}"[:1000])))
        return outputs, failures

    def _fold(self, partition: int, items: list[Accepted]) -> FoldResult:
        # a record time ahead of the worker's clock counts as now: no producer clock can
        # move the watermark past the worker's clock plus the allowed skew
        now = time.time()
        self._loaded.clear()
        sourced = [SourcedEvent(item.event, item.source.message.offset,
                                min(item.source.message.timestamp, now)) for item in items]
        return fold_batch(partition, sourced, self._load_state, self._load_partial,
                          self._load_watermark(partition), self.rules,
                          self._load_keys(partition))

    def _react(self, partition: int, result: FoldResult) -> list[Any]:
        """The alert rules on what the fold applied: their outputs; the cooldowns they set
        go into the states to write."""
        if self.reactions is None or not result.applied:
            return []
        alerts, outputs = self.reactions.on_batch(partition, result.applied)
        for customer_id, alert_state in alerts.items():
            result.states[customer_id] = result.states[customer_id].model_copy(
                update={"alerts": alert_state})
        return outputs

    def _load_keys(self, partition: int) -> GroupKeys | None:
        cap = self.rules.max_group_keys
        if cap is None:
            return None
        return GroupKeys(cap, {dimension: self._get(
            self.partials, group_keys_key(partition, dimension).encode()) or []
            for dimension in DIMENSIONS})

    def _write(self, partition: int, result: FoldResult) -> None:
        # Order matters within the partials changelog: tallies before the watermark.
        for key, partial in result.partials.items():
            self._set(self.partials, partition, key.encode(), partial.model_dump(mode="json"))
        if result.keys is not None:
            for dimension in sorted(result.keys.changed):
                self._set(self.partials, partition,
                          group_keys_key(partition, dimension).encode(),
                          result.keys.keys_of(dimension))
            for dimension, count in result.keys.overflow.items():
                self.metrics.group_keys_overflow.labels(dimension).inc(count)
        self._set(self.partials, partition, watermark_key(partition).encode(),
                  result.watermark.model_dump())
        for customer_id, state in result.states.items():
            if self._loaded.get(customer_id) is state:
                continue  # unchanged (only duplicates): nothing to write, no state to create
            raw = encode_customer(partition, state)
            self._set(self.customers, partition, customer_id.encode(), raw)
            self._decoded[customer_id] = (raw, state)
            self._decoded.move_to_end(customer_id)
            if len(self._decoded) > DECODED_KEPT:
                self._decoded.popitem(last=False)
            if state.profile is not None:
                self.value_index.update(partition, customer_id, state.profile.segment,
                                        state.profile.value,
                                        experience_is_low(state, self.rules.state))
        now = time.time()
        for change in result.applied:
            occurred = getattr(change.item.event, "occurred_at", None)
            if occurred is not None:
                self.metrics.event_delay.observe(max(now - occurred.timestamp(), 0.0))
        for (kind, outcome), count in result.outcomes.items():
            self.metrics.events_folded.labels(kind, outcome).inc(count)

    def _maybe_expire(self, partition: int) -> None:
        now = time.monotonic()
        if now - self._last_expiry.get(partition, 0.0) < EXPIRY_INTERVAL_SECONDS:
            return
        self._last_expiry[partition] = now
        watermark = self._load_watermark(partition)
        keys = [slot.raw for slot, _ in partial_slots(
            ((key, None) for key in list(self.partials.keys())), {partition})]
        for key in expired_partial_keys(keys, watermark, self.rules.windows):
            if self.changelog is None:
                del self.partials[key.encode()]
            else:
                self.changelog.delete(self.partials, partition, key.encode())

    def _load_state(self, customer_id: str) -> CustomerState | None:
        state = self._decode_state(customer_id)
        if state is not None:
            self._loaded[customer_id] = state
        return state

    def _decode_state(self, customer_id: str) -> CustomerState | None:
        raw = self._get(self.customers, customer_id.encode())
        if raw is None:
            return self._after_erasure(customer_id)
        cached = self._decoded.get(customer_id)
        if cached is not None and cached[0] is raw:  # the very bytes this worker wrote
            return cached[1]
        return decode_customer(raw)

    def _after_erasure(self, customer_id: str) -> CustomerState | None:
        """A new state for an erased customer that knows which of their events were
        applied before (None: never erased)."""
        if self.erased is None:
            return None
        marker = self._get(self.erased, erased_key(customer_id))
        if marker is None:
            return None
        applied = json.loads(marker)["applied_up_to"]
        return CustomerState(customer_id=customer_id, applied_up_to=applied)

    def _load_partial(self, key: str) -> PartialTally | None:
        raw = self._get(self.partials, key.encode())
        return None if raw is None else PartialTally.model_validate(raw)

    def _load_watermark(self, partition: int) -> Watermark:
        raw = self._get(self.partials, watermark_key(partition).encode())
        return Watermark() if raw is None else Watermark.model_validate(raw)


def _by_partition(accepted: Sequence[Accepted]) -> dict[int, list[Accepted]]:
    groups: dict[int, list[Accepted]] = {}
    for item in accepted:
        groups.setdefault(item.source.message.partition, []).append(item)
    return groups


def rebuild_value_index(customers: Any, index: ValueIndex, owned: set[int],
                        rules: StateRules) -> int:
    """Refill the index from the table (after recovery); return the customers indexed."""
    index.clear()
    indexed = 0
    for key, raw in list(customers.items()):
        partition = customer_partition(raw)
        if partition not in owned:
            continue
        state = decode_customer(raw)
        if state.profile is not None:
            index.update(partition, key.decode(), state.profile.segment, state.profile.value,
                         experience_is_low(state, rules))
            indexed += 1
    index.mark_indexed(owned)
    return indexed
