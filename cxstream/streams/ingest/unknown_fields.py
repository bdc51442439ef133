"""Fields an input carries that the contract does not name.

The contract accepts them (docs/contract.md: producers may add fields): the event is
processed without them, and they are never stored. A misspelt optional field
(``comments`` for ``comment``) would vanish without a trace, so each one is counted per
topic and field name (``cxstream_unknown_fields_total``) and logged the first time it is
seen. Field names come from producers: only the first ``MAX_NAMED_FIELDS`` distinct names
of a topic are labels of their own, the rest count under ``(other)``, so the metric's
series stay bounded whatever producers send.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)

#: distinct unknown field names counted by name per topic (the label set's bound)
MAX_NAMED_FIELDS = 32
#: characters of a field name kept in its label
MAX_NAME_CHARS = 64
OTHER = "(other)"


class UnknownFields:
    """Counts the unknown fields of accepted inputs on ``counter`` (labels topic, field)."""

    def __init__(self, counter: Any) -> None:
        self.counter = counter
        #: topic -> the field names it has a label of their own for
        self.named: dict[str, set[str]] = {}

    def note(self, topic: str, names: Iterable[str]) -> None:
        named = self.named.setdefault(topic, set())
        for name in names:
            label = name[:MAX_NAME_CHARS]
            if label not in named:
                if len(named) >= MAX_NAMED_FIELDS:
                    label = OTHER
                else:
                    named.add(label)
                    log.info("%s: field %r is not in the contract: the event is processed "
                             "without it (cxstream_unknown_fields_total counts it)",
                             topic, label)
            self.counter.labels(topic, label).inc()
