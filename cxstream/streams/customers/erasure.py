"""A customer's erasure (the right to erasure): their state, history records, survey
memory, priority marks and their answers among the groups' recent ones deleted through
the changelog, and a marker under a digest of their id that keeps their old events from
being applied again if read again."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from cxstream.scoring import plain_customer as plain
from cxstream.scoring.group_answers import without_customer
from cxstream.streams.customers.state_codec import customer_partition, erased_key

if TYPE_CHECKING:
    from cxstream.scoring.partials_index import PartialsIndex
    from cxstream.scoring.value_bands import ValueIndex
    from cxstream.streams.customers.decoded import DecodedCache
    from cxstream.streams.customers.survey_desk import SurveyDesk
    from cxstream.streams.issues.priorities import PriorityBoard
    from cxstream.streams.kafka.table_writers import TableWriter


class Holder(Protocol):
    """What an erasure reads and deletes: the tables, stores and memories of a worker's
    customers (streams.customers.state_writer.StateWriter, which calls it)."""

    customers: Any
    partials: Any
    erased: Any  # the erased customers' markers (None: not kept)
    writes: TableWriter
    partials_index: PartialsIndex
    decoded: DecodedCache[plain.Customer]
    value_index: ValueIndex
    surveys: SurveyDesk | None
    priorities: PriorityBoard | None

    @property
    def history_loader(self) -> plain.HistoryLoader: ...

    def decode_state(self, raw: bytes) -> plain.Customer: ...


def erase(writer: Holder, customer_id: str) -> dict[str, int] | None:
    """Remove a customer's state and remembered ids through the changelog (right to
    erasure); their old events stay ignored if read again. Returns what was deleted,
    by store (None: unknown here)."""
    key = customer_id.encode()
    raw = writer.writes.store(writer.customers).get(key)
    if raw is None:
        return None
    partition = customer_partition(raw)
    state = writer.decode_state(raw)
    tags = state.history_tags()
    for tag in tags:
        writer.writes.delete(writer.customers, partition, plain.history_key(customer_id, tag))
    writer.writes.delete(writer.customers, partition, key)
    receipt = {"customer_state": 1, "history_records": len(tags)}
    answers = writer.partials_index.answers
    receipt["group_answers"] = 0
    for ring_key in answers.keys_of_customer(partition, customer_id):
        group_answers = writer.writes.store(writer.partials).get(ring_key.encode()) or []
        kept = without_customer(group_answers, customer_id)
        if kept:
            writer.writes.set(writer.partials, partition, ring_key.encode(), kept)
        else:
            writer.writes.delete(writer.partials, partition, ring_key.encode())
        answers.put(ring_key, kept)
        receipt["group_answers"] += len(group_answers) - len(kept)
    if writer.erased is not None:
        marker = json.dumps({"applied_up_to": state.applied_up_to,
                             "erased_at": datetime.now(UTC).isoformat()}).encode()
        writer.writes.set(writer.erased, partition, erased_key(customer_id), marker)
    writer.decoded.pop(customer_id)
    writer.value_index.forget(partition, customer_id)
    if writer.surveys is not None:
        found = [survey_key for survey_key in writer.surveys.forget(partition, customer_id)
                 if writer.writes.store(writer.surveys.table).get(survey_key) is not None]
        for survey_key in found:
            writer.writes.delete(writer.surveys.table, partition, survey_key)
        receipt["survey_memory"] = len(found)
    if writer.priorities is not None:
        marks = writer.priorities.forget(partition, customer_id)
        for mark in marks:
            writer.writes.delete(writer.priorities.table, partition, mark)
        receipt["priority_marks"] = len(marks)
    return receipt


def state_after_erasure(writer: Holder, customer_id: str) -> plain.Customer | None:
    """A new state for an erased customer that knows which of their events were
    applied before (None: never erased)."""
    if writer.erased is None:
        return None
    marker = writer.writes.store(writer.erased).get(erased_key(customer_id))
    if marker is None:
        return None
    state = plain.Customer(customer_id, writer.history_loader)
    state.applied_up_to = dict(json.loads(marker)["applied_up_to"])
    return state
