"""Survey requests in the worker: the triggers and fatigue rules of alerts.surveys run on
the events the fold has just applied, and each customer's ``SurveyMemory`` is kept in the
table ``survey_memory``.

The fold tells the desk of each applied interaction and answer, with the customer's
segment, region and open alerts as they are at that event (``observe``, called by
alerts.customer_core). Once the fold of a partition's batch is done, the state writer asks the
desk for the batch's decisions (``finish``): the memories it changed, to write with the
batch's other tables, and the requests to send (``SurveyOut``), which go to
``cx.survey-requests`` with the alerts, before any changelog. A crash in between sends
the same requests again (same ids), as it does alerts.

A deferred request waits in its customer's memory, and a marker key (``PENDING`` + id)
lists the customer; the markers sort first in the table, so that after a recovery they
are read without the memories. A timer looks at the deferred requests again
(``due_requests``) and sends those whose condition has cleared.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from cxstream.alerts.customer_core import Fact
from cxstream.alerts.survey_config import Surveys
from cxstream.alerts.surveys import (
    Candidate,
    Decision,
    SurveyMemory,
    candidates,
    decide,
    language_of,
    note_answer,
    note_failure,
    record,
)
from cxstream.schemas.events import Feedback, Interaction
from cxstream.schemas.outputs import SurveyRequest
from cxstream.scoring.fold import SourcedEvent
from cxstream.scoring.plain_customer import Customer, from_us, to_us
from cxstream.streams.customers.decoded import DecodedCache
from cxstream.streams.kafka.faust_compat.access import stored_items, table_store
from cxstream.streams.metrics import WorkerMetrics

log = logging.getLogger(__name__)

MEMORY = b"m|"  # + customer id: the customer's SurveyMemory
PENDING = b"\x00|"  # + customer id: the customer has deferred requests (sorts first)
PENDING_END = b"\x01"
FAILED_OUTCOMES = ("failure", "abandoned")
ACTION_NAMES = {"send": "sent", "suppress": "suppressed", "later": "deferred"}
#: decoded memories kept: at most this many, and this estimate of their memory
DECODED_KEPT, DECODED_MEMORY_BYTES = 50_000, 64 * 2**20
#: writes of one partition (key -> value, None: delete)
Writes = dict[bytes, bytes | None]


@dataclass(frozen=True, slots=True)
class SurveyOut:
    """A request to publish on cx.survey-requests."""

    request: SurveyRequest

    @property
    def key(self) -> bytes:
        return self.request.customer_id.encode()

    def encode(self) -> bytes:
        return self.request.model_dump_json().encode()


@dataclass(frozen=True, slots=True)
class _Seen:
    """What the desk keeps of one applied event until the batch's decisions."""

    customer_id: str
    at: int
    answer: tuple[str, str | None] | None  # (survey, language) of an answer
    failed: bool
    asked: list[Candidate]
    segment: str | None
    region: str | None
    open_alert: bool
    predicted: float | None = None  # the customer's probability of a low answer


def _probability(state: Customer | Fact) -> float | None:
    """The customer's predicted probability of a low answer (None: no model)."""
    if isinstance(state, Fact):
        return state.predicted
    return None if state.prediction is None else float(state.prediction[0])


def open_alert_at(alerts: dict[str, Any], at: int) -> bool:
    """Whether the customer has an alert still open (cooling) at ``at``."""
    return any(at < to_us(datetime.fromisoformat(alert["until"]))
               for alert in alerts.get("open", {}).values())


def memory_key(customer_id: str) -> bytes:
    return MEMORY + customer_id.encode()


def pending_key(customer_id: str) -> bytes:
    return PENDING + customer_id.encode()


def encode_memory(partition: int, memory: SurveyMemory) -> bytes:
    return b"%d|" % partition + orjson.dumps(memory.to_json())


def decode_memory(raw: bytes) -> SurveyMemory:
    return SurveyMemory.from_json(orjson.loads(raw[raw.index(b"|") + 1:]))


class SurveyDesk:
    """Decides the survey requests of the batches a worker folds."""

    def __init__(self, config: Surveys, table: Any, metrics: WorkerMetrics | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.table = table  # survey_memory
        self.load: Callable[[bytes], bytes | None] = table_store(table).get
        self.metrics = metrics
        self.clock = clock
        self.horizon = config.horizon_us()
        self._seen: list[_Seen] = []
        #: decisions by (survey, action, reason) not yet added to the metric (one
        #: ``labels`` call per decision stood out in the in-process bench)
        self._counts: Counter[tuple[str, str, str]] = Counter()
        #: decoded memories by customer, with the bytes they were decoded from
        self._decoded: DecodedCache[SurveyMemory] = DecodedCache(DECODED_MEMORY_BYTES,
                                                                 DECODED_KEPT)
        #: customers with deferred requests, by partition (from the markers)
        self.pending: dict[int, set[str]] = {}
        #: told every decision counted, with the customer's segment (cli.survey_backtest)
        self.audit: Callable[[Candidate, Decision, str | None], None] | None = None

    # -- the fold's side ---------------------------------------------------------------

    def begin(self) -> None:
        """A partition's fold starts (what an earlier, failed one saw is dropped)."""
        self._seen.clear()

    def observe(self, item: SourcedEvent, state: Customer | Fact) -> None:
        """An event the fold applied, with the customer's state after it (its profile
        and alerts: a Fact of alerts.customer_core carries those)."""
        event = item.event
        if isinstance(event, Feedback):
            self._seen.append(_Seen(event.customer_id, to_us(event.occurred_at),
                                    (event.survey, event.language), False, [], None, None,
                                    False))
            return
        if not isinstance(event, Interaction):
            return
        at = to_us(event.occurred_at)
        asked = candidates(self.config, event.customer_id, event.event_id, at,
                           event.touchpoint, event.channel, event.outcome, event.handled_by)
        failed = event.outcome in FAILED_OUTCOMES
        if not (asked or failed):
            return
        profile = state.profile
        self._seen.append(_Seen(event.customer_id, at, None, failed, asked,
                                profile[0] if profile else None,
                                profile[3] if profile else None,
                                bool(asked) and open_alert_at(state.alerts, at),
                                _probability(state)))

    def finish(self, partition: int) -> tuple[Writes, list[SurveyOut]]:
        """The batch's decisions, in event order: the memories to write and the
        requests to send."""
        seen, self._seen = self._seen, []
        if not seen:
            return {}, []
        now = int(self.clock() * 1_000_000)
        memories: dict[str, SurveyMemory] = {}
        changed: set[str] = set()
        outputs: list[SurveyOut] = []
        for entry in seen:
            customer_id = entry.customer_id
            memory = memories.get(customer_id)
            if memory is None:
                memory = memories[customer_id] = self._memory(customer_id)
            if entry.answer is not None:
                note_answer(memory, entry.at, *entry.answer)
                changed.add(customer_id)
            if entry.failed:
                note_failure(memory, entry.at)
                changed.add(customer_id)
            for candidate in entry.asked:
                found, moved = self._decide(memory, candidate, entry.at, now, entry.segment,
                                            entry.region, entry.open_alert,
                                            predicted=entry.predicted)
                outputs += found
                if moved:
                    changed.add(customer_id)
        return self._writes(partition, {customer_id: memories[customer_id]
                                        for customer_id in memories
                                        if customer_id in changed}), outputs

    # -- the timer's side --------------------------------------------------------------

    def due_requests(self, partition: int,
                     customer: Callable[[str], Customer | None]) -> tuple[Writes, list[SurveyOut]]:
        """Look at the deferred requests of ``partition`` again, at the clock's time:
        send those whose condition cleared, drop the expired ones."""
        now = int(self.clock() * 1_000_000)
        memories: dict[str, SurveyMemory] = {}
        outputs: list[SurveyOut] = []
        for customer_id in sorted(self.pending.get(partition, ())):
            memory = self._memory(customer_id)
            state = customer(customer_id)
            profile = state.profile if state is not None else None
            alerts = state.alerts if state is not None else {}
            changed = False
            for candidate, waiting in list(memory.pending):
                if waiting.due is not None and now < min(waiting.due,
                                                         candidate.valid_until + 1):
                    continue  # not yet (an expired one is dropped once its time is past)
                found, moved = self._decide(memory, candidate, now, now,
                                            profile[0] if profile else None,
                                            profile[3] if profile else None,
                                            open_alert_at(alerts, now), waiting,
                                            None if state is None else _probability(state))
                changed |= moved
                outputs += found
            if changed:
                memories[customer_id] = memory
        return self._writes(partition, memories), outputs

    def load_pending(self, partition: int, customer_ids: Iterator[str]) -> None:
        """The customers with deferred requests of a recovered partition (markers)."""
        self.pending[partition] = set(customer_ids)

    def forget(self, partition: int, customer_id: str) -> list[bytes]:
        """An erased customer: the keys to delete."""
        self.pending.get(partition, set()).discard(customer_id)
        self._decoded.pop(customer_id)
        return [memory_key(customer_id), pending_key(customer_id)]

    def drop_decoded(self, customer_ids: Iterable[str]) -> None:
        """Memories a failed fold may have changed in place: the table still holds their
        bytes from before it."""
        for customer_id in customer_ids:
            self._decoded.pop(customer_id)

    def keep_only(self, partitions: set[int]) -> None:
        for partition in set(self.pending) - partitions:
            del self.pending[partition]

    # -- both --------------------------------------------------------------------------

    def _memory(self, customer_id: str) -> SurveyMemory:
        raw = self.load(memory_key(customer_id))
        if raw is None:
            return SurveyMemory()
        cached = self._decoded.get(customer_id, raw)
        if cached is not None:
            self._decoded.touch(customer_id)
            return cached
        memory = decode_memory(raw)
        self._remember(customer_id, raw, memory)
        return memory

    def _remember(self, customer_id: str, raw: bytes, memory: SurveyMemory) -> None:
        """Keep the decoded memory beside the bytes it is (decoding stood out in the
        in-process bench: a periodic trigger reads the memory at every interaction)."""
        self._decoded.put(customer_id, raw, memory)

    def _decide(self, memory: SurveyMemory, candidate: Candidate, at: int, now: int,
                segment: str | None, region: str | None, open_alert: bool,
                waiting: Decision | None = None, predicted: float | None = None
                ) -> tuple[list[SurveyOut], bool]:
        """Decide, count and remember: the request to send, if any, and whether the
        memory changed (not for a deferred request looked at again that still waits for
        the same thing, nor for a periodic trigger not due yet)."""
        decision = decide(memory, candidate, self.config, at, now, segment, open_alert,
                          predicted, waiting is not None and waiting.reason == "predicted_first")
        if waiting is not None and decision == waiting:
            return [], False
        self._counts[candidate.survey, ACTION_NAMES[decision.action],
                     decision.reason or "none"] += 1
        if self.audit is not None:
            self.audit(candidate, decision, segment)
        if decision.reason == "trigger_interval" and waiting is None:
            return [], False  # nothing to remember
        if decision.action == "suppress" and waiting is None and _repeats(memory, candidate,
                                                                         decision):
            return [], False  # counted; the decisions list shows its first time
        record(memory, candidate, decision, at, now, self.horizon)
        if decision.action != "send":
            return [], True
        language, source = language_of(memory, region, self.config)
        return [SurveyOut(request_of(candidate, at, language, source, segment,
                                     None if waiting is None else waiting.reason))], True

    def _count(self) -> None:
        if self.metrics is not None:
            for (survey, action, reason), count in self._counts.items():
                self.metrics.survey_decisions.labels(survey, action, reason).inc(count)
        self._counts.clear()

    def _writes(self, partition: int, memories: dict[str, SurveyMemory]) -> Writes:
        self._count()
        writes: Writes = {}
        waiting = self.pending.setdefault(partition, set())
        for customer_id, memory in memories.items():
            raw = writes[memory_key(customer_id)] = encode_memory(partition, memory)
            self._remember(customer_id, raw, memory)
            if memory.pending and customer_id not in waiting:
                waiting.add(customer_id)
                writes[pending_key(customer_id)] = b"%d" % partition
            elif not memory.pending and customer_id in waiting:
                waiting.discard(customer_id)
                writes[pending_key(customer_id)] = None
        return writes


def _repeats(memory: SurveyMemory, candidate: Candidate, decision: Decision) -> bool:
    """The customer's latest decision on this survey was the same suppression: a
    periodic trigger asks at every interaction, and listing each would rewrite the
    memory at every interaction too."""
    for _, survey, action, reason, _ in reversed(memory.decisions):
        if survey == candidate.survey:
            return action == "suppress" and reason == decision.reason
    return False


def request_of(candidate: Candidate, at: int, language: str, source: str,
               segment: str | None, waited: str | None) -> SurveyRequest:
    return SurveyRequest(
        request_id=candidate.request_id, customer_id=candidate.customer_id,
        survey=candidate.survey, trigger=candidate.trigger,  # type: ignore[arg-type]
        cause_event_id=candidate.cause, cause_touchpoint=candidate.touchpoint,
        cause_channel=candidate.channel, cause_at=from_us(candidate.cause_at),
        cause_handled_by=candidate.handled_by,
        language=language, language_source=source,  # type: ignore[arg-type]
        segment=segment, requested_at=from_us(at),
        valid_until=from_us(candidate.valid_until),
        waited_for=waited)  # type: ignore[arg-type]


def memory_report(raw: bytes | None) -> dict[str, Any]:
    """A customer's survey memory for the API: requests sent, waiting, latest decisions."""
    memory = SurveyMemory() if raw is None else decode_memory(raw)

    def when(us: int) -> str:
        return from_us(us).astimezone(UTC).isoformat()

    return {
        "sent": [{"at": when(t), "survey": s, "trigger": g} for t, s, g in memory.sent],
        "waiting": [{"request_id": c.request_id, "survey": c.survey, "trigger": c.trigger,
                     "reason": d.reason, "due": None if d.due is None else when(d.due),
                     "valid_until": when(c.valid_until)} for c, d in memory.pending],
        "decisions": [{"request_id": r, "survey": s, "action": a, "reason": why,
                       "at": when(t)} for r, s, a, why, t in memory.decisions],
        "last_answered": {s: when(t) for t, s in memory.answers},
    }


__all__ = ["Decision", "SurveyDesk", "SurveyOut", "memory_report"]


def load_waiting_surveys(table: Any, desk: SurveyDesk, owned: set[int]) -> int:
    """Read the markers of customers with deferred requests (after a recovery); returns
    how many customers wait. The markers sort first: RocksDB stops before the memories."""
    found: dict[int, set[str]] = {partition: set() for partition in owned}
    for _, key, raw in stored_items(table, owned, below=PENDING_END):
        if key.startswith(PENDING):
            partition = int(raw)
            if partition in found:
                found[partition].add(key[len(PENDING):].decode())
    desk.keep_only(owned)
    for partition, customer_ids in found.items():
        desk.load_pending(partition, iter(customer_ids))
    return sum(len(ids) for ids in found.values())
