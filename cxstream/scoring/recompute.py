"""Batch recomputation of the group tallies from the raw input topics, without Faust.

The consistency checker for the stream: it re-reads every input and applies the
documented rules directly, with none of the stream's machinery (batches, tables,
changelogs, offset gates, restarts, partition shares). It shares only the contract's
validation, the window maths and the per-answer counting rule (scoring.groups).

Rules, as documented in docs/scoring.md:
- inputs that fail validation are ignored (they are dead-lettered), among them those whose
  event time is more than the max clock skew ahead of their record's timestamp (the
  stream also refuses event times that far ahead of the worker's clock, which only the
  stream knows: a record whose own timestamp runs ahead of the worker by more than the
  skew can count here and not in the stream);
- an answer whose (customer, event_id) was seen before is a duplicate and ignored;
- per partition of the feedback topic, in offset order, the watermark is the latest
  min(occurred_at, record time + max clock skew) of the answers before; an answer older
  than watermark - allowed lateness is late and left out of the group windows;
- an answer counts in the segment of the customer's latest profile (by updated_at) among
  the profiles stored before it (record time); with none, in "unknown";
- per partition of the feedback topic, the first max_group_keys distinct keys of each
  dimension (in offset order, among answers that are not late) count as themselves, any
  later key as "(other)".

Assumption: fewer than ``seen_event_ids_kept`` distinct events per customer (the stream
remembers that many ids per customer for de-duplication).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from cxstream.schemas.events import CustomerProfile, Feedback
from cxstream.schemas.parsing import Clocks, InputKind, parse_input
from cxstream.scoring.fold import FoldRules
from cxstream.scoring.groups import CountedAnswers, GroupKeys, contributions
from cxstream.scoring.tallies import Tally
from cxstream.scoring.windows import is_expired

#: (dimension, window, start, key) -> tally
GroupTallies = dict[tuple[str, str, int, str], Tally]


@dataclass(frozen=True)
class RawInput:
    topic: str
    partition: int
    offset: int
    timestamp: float
    key: bytes | None
    value: bytes | None


def recompute(inputs: Iterable[RawInput], kind_of_topic: dict[str, InputKind],
              max_event_bytes: int, rules: FoldRules) -> GroupTallies:
    """The group tallies the stream should hold after processing ``inputs``."""
    profiles: dict[str, list[tuple[float, int, CustomerProfile]]] = {}
    answers: dict[int, list[tuple[int, float, Feedback]]] = {}
    for raw in inputs:
        kind = kind_of_topic.get(raw.topic)
        if kind is None or kind is InputKind.INTERACTION:
            continue
        event = parse_input(kind, raw.key, raw.value, max_event_bytes,
                            Clocks(math.inf, raw.timestamp, rules.max_clock_skew_seconds))
        if isinstance(event, CustomerProfile):
            profiles.setdefault(event.customer_id, []).append((raw.timestamp, raw.offset, event))
        elif isinstance(event, Feedback):
            answers.setdefault(raw.partition, []).append((raw.offset, raw.timestamp, event))
    tallies: GroupTallies = {}
    seen: set[tuple[str, str]] = set()
    counted: dict[str, CountedAnswers] = {}
    for partition_answers in answers.values():
        keys = None if rules.max_group_keys is None else GroupKeys(rules.max_group_keys)
        watermark = 0.0
        for _, record_time, answer in sorted(partition_answers, key=lambda item: item[0]):
            if (answer.customer_id, answer.event_id) in seen:
                continue
            seen.add((answer.customer_id, answer.event_id))
            occurred = answer.occurred_at.timestamp()
            late = occurred < watermark - rules.allowed_lateness_seconds
            watermark = max(watermark, min(occurred, record_time + rules.max_clock_skew_seconds))
            if late:
                continue
            segment = _segment_at(profiles.get(answer.customer_id, []), record_time)
            changes, counted[answer.customer_id] = contributions(
                answer, segment, counted.get(answer.customer_id, {}), rules.windows,
                rules.conventions, keys, rules.journey)
            for change in changes:
                slot = (change.dimension, change.window, change.start, change.key)
                tally = tallies.get(slot, Tally())
                tallies[slot] = tally.record(change.survey, change.score, rules.conventions,
                                             change.sign)
    return {slot: tally for slot, tally in tallies.items() if not tally.is_empty}


def _segment_at(history: list[tuple[float, int, CustomerProfile]],
                record_time: float) -> str | None:
    earlier = [item for item in history if item[0] < record_time]
    if not earlier:
        return None
    latest = max(earlier, key=lambda item: (item[2].updated_at, item[0], item[1]))
    return latest[2].segment


def drop_expired(tallies: GroupTallies, watermark: float, rules: FoldRules) -> GroupTallies:
    """Leave out windows that retention has dropped at ``watermark``."""
    spec_of = {spec.name: spec for spec in rules.windows}
    return {slot: tally for slot, tally in tallies.items()
            if not is_expired(slot[2], spec_of[slot[1]], watermark)}
