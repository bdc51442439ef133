"""Wire the scoring fold to Faust tables: one read and one write per key per batch.

Tables (all changelogged to Kafka, partitioned like the input topics):
- ``customer_to_state``: customer_id (bytes) -> b"<partition>|" + compact JSON of the
  state (a sixth of the memory of Python dicts: bench/memory_per_customer.py); the prefix
  lets a worker skip partitions it no longer owns (kept in memory after a rebalance)
- ``group_partials``: "<partition>|<dimension>|<window>|<start>|<key>" -> PartialTally,
  "<partition>|~watermark" -> Watermark, and the groups' recent answers (scoring.group_answers);
  each partition keeps its own share of every group tally (two-phase aggregation).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from time import perf_counter
from typing import Any, TypeVar

from cxstream.alerts.customer_core import BatchOutcome, CustomerCore, TablesRead, count_too_old
from cxstream.alerts.reactions import AlertReactions
from cxstream.schemas.parsing import ErrorClass, Rejection
from cxstream.scoring import plain_codec as codec
from cxstream.scoring import plain_customer as plain
from cxstream.scoring import plain_models
from cxstream.scoring.customer import CustomerState
from cxstream.scoring.fold import (
    FoldRules,
    SourcedEvent,
    group_keys_key,
    watermark_key,
)
from cxstream.scoring.groups import KEYED_DIMENSIONS, GroupKeys
from cxstream.scoring.partials_index import PartialsIndex
from cxstream.scoring.prediction import Predictor
from cxstream.scoring.value_bands import LiveBands, ValueIndex
from cxstream.scoring.windows import Watermark
from cxstream.streams.customers.band_refresh import BandsHolder
from cxstream.streams.customers.decoded import DECODED_BYTES, DecodedCache
from cxstream.streams.customers.erasure import erase, state_after_erasure
from cxstream.streams.customers.live_predictions import LivePredictions
from cxstream.streams.customers.survey_desk import SurveyDesk
from cxstream.streams.ingest.batches import Accepted
from cxstream.streams.issues.priorities import PriorityBoard
from cxstream.streams.kafka.faust_compat.access import writing_for
from cxstream.streams.kafka.table_writers import ConfirmedSend, DirectWrites, TableWriter, send_once
from cxstream.streams.metrics import WorkerMetrics

log = logging.getLogger(__name__)

T = TypeVar("T")
#: the outputs a partition's moved partial tallies cause (key -> table value)
ShareHook = Callable[[int, dict[str, dict[str, Any]]], list[Any]]

EXPIRY_INTERVAL_SECONDS = 60.0
#: encoded bytes of the decoded states kept beside the table (their bytes checked by
#: identity): decoding stood out in a profile of the worker (bench/profile_worker.py).
#: A decoded state takes several times its encoded size (bench/memory_per_customer.py).


class StateWriter:
    """Folds accepted inputs into the tables, partition by partition (alerts.customer_core)."""

    def __init__(self, customers: Any, partials: Any, rules: FoldRules,
                 metrics: WorkerMetrics, value_index: ValueIndex,
                 reactions: AlertReactions | None = None,
                 emit: Callable[[list[Any]], Awaitable[None]] | None = None,
                 writes: TableWriter | None = None,
                 confirmed: ConfirmedSend | None = None, erased: Any = None,
                 bands: LiveBands | None = None,
                 decoded_bytes: int = DECODED_BYTES,
                 partials_index: PartialsIndex | None = None,
                 share_partials: ShareHook | None = None,
                 surveys: SurveyDesk | None = None,
                 priorities: PriorityBoard | None = None,
                 predictor: Predictor | None = None) -> None:
        self.customers = customers
        #: the issue counts of the batches (streams.issues.priorities), with their table
        self.priorities = priorities
        #: survey requests of the batches (streams.customers.survey_desk), with their table
        self.surveys = surveys
        #: the partial tallies by slice, following every write (readers never scan)
        self.partials_index = partials_index or PartialsIndex()
        #: what a batch's moved tallies send on (the segment shares), with its outputs
        self.share_partials = share_partials
        #: table erased_customers: SHA-256 of an erased id -> what keeps its old events
        #: from being applied again ({"applied_up_to": {kind: offset}, "erased_at": ...})
        self.erased = erased
        self.confirmed: ConfirmedSend = confirmed or send_once
        self._outputs: list[Any] = []
        #: how tables are written: in bulk with the batch (the worker) or per key
        self.writes: TableWriter = writes or DirectWrites()
        self.value_index = value_index
        self.decoded: DecodedCache[plain.Customer] = DecodedCache(decoded_bytes)
        self.bands = bands
        self.core = CustomerCore(rules, reactions, bands, predictor)
        self.live = None if predictor is None else LivePredictions(predictor, metrics)
        self.reactions = reactions
        self.emit = emit
        self.partials = partials
        self.rules = rules
        self.plain_rules = plain.PlainRules(rules.state)
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
        began = perf_counter()
        try:
            await self._send()
        finally:
            self.metrics.own_work["send"].inc(perf_counter() - began)

    async def _send(self) -> None:
        outputs, self._outputs = self._outputs, []
        if self.emit is not None and outputs:
            emit = self.emit
            await self.confirmed(lambda: emit(outputs), "publishing alerts and signals")
        await self.writes.send()

    def erase(self, customer_id: str) -> dict[str, int] | None:
        """The customer's state and remembered ids removed (customers.erasure)."""
        return erase(self, customer_id)

    def send_due_surveys(self, partitions: set[int]) -> None:
        """Look at the deferred survey requests of ``partitions`` again (sent with the
        next ``finish``)."""
        if self.surveys is None:
            return
        for partition in sorted(partitions):
            writes, requests = self.surveys.due_requests(partition, self._load_customer)
            if writes:
                self._write_many(self.surveys.table, partition, writes)
            self._outputs += requests

    def load_state(self, customer_id: str) -> CustomerState | None:
        """The customer's current state (None: unknown here), as the contract's model."""
        state = self._load_customer(customer_id)
        return None if state is None else plain_models.to_model(state, with_seen=True)

    def put_state(self, partition: int, customer_id: str, state: CustomerState,
                  outputs: list[Any]) -> None:
        """Write the alert rules' part of ``state`` outside a batch of events (the rest
        is the fold's), with what it caused (sent by ``finish``)."""
        current = self._load_customer(customer_id) or plain_models.from_model(
            state, self.rules.state.seen_event_ids_kept)
        current.alerts = dict(state.alerts)
        self._put_customer(partition, current)
        self._outputs += outputs

    def _put_customer(self, partition: int, state: plain.Customer) -> None:
        writes: dict[bytes, bytes | None] = {}
        self._customer_writes(partition, state, writes)
        self._write_many(self.customers, partition, writes)

    def _customer_writes(self, partition: int, state: plain.Customer,
                         writes: dict[bytes, bytes | None]) -> None:
        """Add the customer's hot part and the history records that changed to
        ``writes``; the decoded state keeps the hot part only (history is read again
        when needed)."""
        raw = codec.encode(partition, state)
        writes[state.customer_id.encode()] = raw
        customer_id = state.customer_id
        for tag, value in state.take_writes().items():
            writes[plain.history_key(customer_id, tag)] = value
        state.cache.clear()
        self.decoded.put(customer_id, raw, state)

    def _write_many(self, table: Any, partition: int, writes: dict[bytes, Any]) -> None:
        self.writes.write_many(table, partition, writes)

    def _delete(self, table: Any, partition: int, key: bytes) -> None:
        self.writes.delete(table, partition, key)

    def decode_state(self, raw: bytes) -> plain.Customer:
        return codec.decode(raw, self.history_loader, self.rules.state.seen_event_ids_kept)

    @property
    def history_loader(self) -> plain.HistoryLoader:
        """Where a customer's history records are read from: the table's store itself,
        so the fold reads them without calling back into this layer."""
        loader: plain.HistoryLoader = self._store(self.customers).get
        return loader

    def _store(self, table: Any) -> Any:
        return self.writes.store(table)

    def _set(self, table: Any, partition: int, key: bytes, value: Any) -> None:
        self.writes.set(table, partition, key, value)

    def _get(self, table: Any, key: bytes) -> Any:
        return self._store(table).get(key)

    def _fold_partition(self, partition: int, items: list[Accepted]
                        ) -> tuple[list[Any], list[tuple[Accepted, Rejection]]]:
        try:
            result = self._fold(partition, items)
            self._write(partition, result)
            return result.outputs, []
        except Exception:
            log.exception("folding a batch of partition %d failed; retrying one by one",
                          partition)
            self._forget(items)
        outputs: list[Any] = []
        failures = []
        for item in items:  # isolate the input that breaks the fold
            try:
                result = self._fold(partition, [item])
                self._write(partition, result)
                outputs += result.outputs
            except Exception as exc:
                self._forget([item])
                failures.append((item, Rejection(ErrorClass.INTERNAL,
                                                 f"{type(exc).__name__}: {exc}"[:1000])))
        return outputs, failures

    def _forget(self, items: list[Accepted]) -> None:
        """Drop the decoded states a failed fold may have changed in place: the table
        still holds their bytes from before it."""
        for item in items:
            self.decoded.pop(item.event.customer_id)
        if self.surveys is not None:
            self.surveys.drop_decoded(item.event.customer_id for item in items)

    def _fold(self, partition: int, items: list[Accepted]) -> BatchOutcome:
        # a record time ahead of the worker's clock counts as now: no producer clock can
        # move the watermark past the worker's clock plus the allowed skew
        now = time.time()
        sourced = [SourcedEvent(item.event, item.source.message.offset,
                                min(item.source.message.timestamp, now)) for item in items]
        began = perf_counter()
        customers: dict[str, plain.Customer | None] = {}
        for item in items:  # every customer of the batch, read once before the fold
            customer_id = item.event.customer_id
            if customer_id not in customers:
                customers[customer_id] = self._load_customer(customer_id)
        stored = TablesRead(customers, self._store(self.partials),
                        self._load_watermark(partition), self._load_keys(partition),
                        self.history_loader)
        if isinstance(self.bands, BandsHolder):
            self.bands.sync_ownership()  # the fold reads the bands as they stand
        read = perf_counter()
        result = self.core.fold_batch(partition, sourced, stored)
        stages = self.metrics.own_work
        stages["read"].inc(read - began)
        stages["fold"].inc(perf_counter() - read - result.rules_seconds
                           - result.predict_seconds)
        stages["rules"].inc(result.rules_seconds)
        if self.live is not None:
            self.live.observe(result.predicted, result.predict_seconds)
        return result

    def _load_keys(self, partition: int) -> GroupKeys | None:
        cap = self.rules.max_group_keys
        if cap is None:
            return None
        return GroupKeys(cap, {dimension: self._get(
            self.partials, group_keys_key(partition, dimension).encode()) or []
            for dimension in KEYED_DIMENSIONS})

    def _write(self, partition: int, result: BatchOutcome) -> None:
        """A partition's fold written: tallies, issue counts, customers, survey memory;
        the own-work stages timed as they go."""
        stages = self.metrics.own_work
        began = perf_counter()
        self._write_partials(partition, result)
        done = perf_counter()
        write_seconds = done - began
        if self.priorities is not None:  # before the customers: see streams.issues.priorities
            self._write_priorities(self.priorities, partition, result)
            stages["priorities"].inc(perf_counter() - done)
            done = perf_counter()
        writes = self._encode_customers(partition, result)
        encoded = perf_counter()
        stages["encoding"].inc(encoded - done)
        self._write_many(self.customers, partition, writes)
        done = perf_counter()
        write_seconds += done - encoded
        if self.surveys is not None:
            self._write_surveys(self.surveys, partition, result)
            stages["surveys"].inc(perf_counter() - done)
        stages["write"].inc(write_seconds)
        self._count_applied(result)

    def _write_partials(self, partition: int, result: BatchOutcome) -> None:
        # Order matters within the partials changelog: tallies before the watermark.
        index = self.partials_index
        for key, partial in result.partials.items():
            self._set(self.partials, partition, key.encode(), partial)
            index.put(key, partial)
        for key, answers in result.answers.items():  # the groups' recent answers
            self._set(self.partials, partition, key.encode(), answers)
            index.answers.put(key, answers)
        if self.share_partials is not None and result.partials:
            result.outputs += self.share_partials(partition, result.partials)
        if result.keys is not None:
            for dimension in sorted(result.keys.changed):
                self._set(self.partials, partition,
                          group_keys_key(partition, dimension).encode(),
                          result.keys.keys_of(dimension))
            for dimension, count in result.keys.overflow.items():
                self.metrics.group_keys_overflow.labels(dimension).inc(count)
        self._set(self.partials, partition, watermark_key(partition).encode(),
                  result.watermark)

    def _write_priorities(self, board: PriorityBoard, partition: int,
                          result: BatchOutcome) -> None:
        board.begin()
        for fact in result.facts:
            if fact.profile_changed or fact.signals:
                board.observe(fact.item, fact, fact.signals, fact.top)
        issue_writes = board.finish(partition)
        if issue_writes:
            self._write_many(board.table, partition, issue_writes)

    def _encode_customers(self, partition: int, result: BatchOutcome
                          ) -> dict[bytes, bytes | None]:
        writes: dict[bytes, bytes | None] = {}
        for state in result.customers.values():
            self._customer_writes(partition, state, writes)
            if state.profile is not None:
                self.value_index.update(partition, state.customer_id, state.profile[0],
                                        state.profile[1],
                                        plain.experience_is_low(state, self.plain_rules))
        return writes

    def _write_surveys(self, desk: SurveyDesk, partition: int, result: BatchOutcome) -> None:
        desk.begin()
        for fact in result.facts:
            if not fact.profile_changed:
                desk.observe(fact.item, fact)
        survey_writes, requests = desk.finish(partition)
        if survey_writes:
            self._write_many(desk.table, partition, survey_writes)
        result.outputs += requests

    def _count_applied(self, result: BatchOutcome) -> None:
        now = time.time()
        delay = self.metrics.event_delay
        for occurred in result.applied_times:
            delay.observe(max(now - occurred, 0.0))
        for (kind, outcome), count in result.outcomes.items():
            self.metrics.events_folded.labels(kind, outcome).inc(count)
        count_too_old(result, self.metrics.events_too_old_for_rules)

    def _maybe_expire(self, partition: int) -> None:
        now = time.monotonic()
        if now - self._last_expiry.get(partition, 0.0) < EXPIRY_INTERVAL_SECONDS:
            return
        self._last_expiry[partition] = now
        watermark = Watermark.model_validate(self._load_watermark_raw(partition) or {})
        for key in self.partials_index.expired(partition, watermark.at, self.rules.windows):
            self.writes.delete(self.partials, partition, key.encode())
            self.partials_index.put(key, None)
        if self.priorities is not None:
            for old in self.priorities.expired(partition):
                self._delete(self.priorities.table, partition, old)

    def _load_customer(self, customer_id: str) -> plain.Customer | None:
        raw = self._get(self.customers, customer_id.encode())
        if raw is None:
            return state_after_erasure(self, customer_id)
        cached = self.decoded.get(customer_id, raw)
        if cached is not None:  # the very bytes this worker wrote
            return cached
        return self.decode_state(raw)

    def _load_watermark_raw(self, partition: int) -> dict[str, Any] | None:
        return self._get(self.partials, watermark_key(partition).encode())  # type: ignore[no-any-return]

    def _load_watermark(self, partition: int) -> tuple[float, int]:
        raw = self._load_watermark_raw(partition)
        return (0.0, -1) if raw is None else (float(raw["at"]), int(raw["offset"]))


def _by_partition(accepted: Sequence[Accepted]) -> dict[int, list[Accepted]]:
    groups: dict[int, list[Accepted]] = {}
    for item in accepted:
        groups.setdefault(item.source.message.partition, []).append(item)
    return groups
