"""The recent answers behind a group's scores: per partition and group, the newest
``group_answers_kept`` answers that counted in the group, with their comments.

They are kept beside the partial tallies, under "<partition>|~answers|<dimension>|<key>",
and written with them, so a group's page reaches the answers that make its score without
reading any customer, and a restarted worker has them from the changelog.

Shape of an answer (a list, as the table holds it): [time (microseconds since the epoch),
event id, customer id, survey, score, comment (its first TEXT_KEPT characters, or None),
language (None without a comment)]; a group's answers are in time order, oldest first.
"""

from __future__ import annotations

from bisect import insort
from datetime import UTC, datetime, timedelta
from typing import Any

from cxstream.schemas.events import Feedback
from cxstream.scoring.customer import TEXT_KEPT

ANSWERS_MARK = "~answers"
AT, EVENT_ID, CUSTOMER_ID, SURVEY, SCORE, COMMENT, LANGUAGE = range(7)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Answer = list[Any]


def answers_key(partition: int, dimension: str, key: str) -> str:
    return f"{partition}|{ANSWERS_MARK}|{dimension}|{key}"


def is_answers_key(raw: str) -> bool:
    return raw.partition("|")[2].startswith(ANSWERS_MARK + "|")


def parse_answers_key(raw: str) -> tuple[int, str, str]:
    """(partition, dimension, group key) of an answers key."""
    partition, _, dimension, key = raw.split("|", 3)
    return int(partition), dimension, key


def answer_of(event: Feedback) -> Answer:
    comment = event.comment[:TEXT_KEPT] if event.comment else None
    at = (event.occurred_at - EPOCH) // timedelta(microseconds=1)
    return [at, event.event_id, event.customer_id, event.survey, event.score, comment,
            event.language if comment else None]


def keep_answer(answers: list[Answer], answer: Answer, kept: int) -> bool:
    """Add ``answer`` to a group's ``answers`` in place, keeping the newest ``kept``;
    False if it is there already (an event read again)."""
    event_id = answer[EVENT_ID]
    if any(known[EVENT_ID] == event_id for known in answers):
        return False
    insort(answers, answer, key=lambda known: (known[AT], known[EVENT_ID]))
    del answers[:-kept]
    return True


def without_customer(answers: list[Answer], customer_id: str) -> list[Answer]:
    return [answer for answer in answers if answer[CUSTOMER_ID] != customer_id]


def answer_report(answer: Answer) -> dict[str, Any]:
    """An answer as the API shows it."""
    at = EPOCH + timedelta(microseconds=answer[AT])
    return {"at": at.isoformat(), "event_id": answer[EVENT_ID],
            "customer_id": answer[CUSTOMER_ID], "survey": answer[SURVEY],
            "score": answer[SCORE], "comment": answer[COMMENT], "language": answer[LANGUAGE]}


class AnswersIndex:
    """Which groups of a partition hold a customer's answers, so that an erasure finds
    them without a scan. Follows the partials table like
    scoring.partials_index.PartialsIndex, which holds it; the answers themselves are
    read from the table.

    Bound: per partition, one tuple of customer ids per group key it admits
    (CXSTREAM_MAX_GROUP_KEYS + 1 per dimension) of at most CXSTREAM_GROUP_ANSWERS_KEPT
    ids, and one entry per kept answer in ``_groups_of``."""

    def __init__(self) -> None:
        self._customers: dict[int, dict[tuple[str, str], tuple[str, ...]]] = {}
        self._groups_of: dict[int, dict[str, dict[tuple[str, str], None]]] = {}

    def clear(self, partitions: set[int]) -> None:
        self._customers = {partition: {} for partition in partitions}
        self._groups_of = {partition: {} for partition in partitions}

    def put(self, raw_key: str, answers: list[Answer] | None) -> None:
        """Follow a write of the table (None or []: a delete)."""
        partition, dimension, key = parse_answers_key(raw_key)
        group = (dimension, key)
        by_group = self._customers.setdefault(partition, {})
        groups_of = self._groups_of.setdefault(partition, {})
        for customer_id in by_group.pop(group, ()):
            groups = groups_of.get(customer_id)
            if groups is not None:
                groups.pop(group, None)
                if not groups:
                    del groups_of[customer_id]
        if answers:
            by_group[group] = customers = tuple({a[CUSTOMER_ID]: None for a in answers})
            for customer_id in customers:
                groups_of.setdefault(customer_id, {})[group] = None

    def keys_of_customer(self, partition: int, customer_id: str) -> list[str]:
        """The table keys of the groups of ``partition`` holding the customer's answers."""
        groups = self._groups_of.get(partition, {}).get(customer_id, {})
        return [answers_key(partition, *group) for group in groups]

    def answer_count(self) -> int:
        return sum(len(groups) for by_customer in self._groups_of.values()
                   for groups in by_customer.values())
