"""Faust and aiokafka internals the worker needs, each behind a function.

Each says why no public API does it; all are checked against the versions in
``faust_compat.SUPPORTED``.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator, MutableMapping
from typing import Any

from faust.streams import _current_event  # Faust only sets it while iterating a stream


def table_store(table: Any) -> MutableMapping[Any, Any]:
    """The table's local store, read and written without Faust's per-key changelog send
    and sensor calls (``Table.data``): the worker writes a batch's records itself."""
    store: MutableMapping[Any, Any] = table.data
    return store


def aiokafka_producer(app: Any) -> Any:
    """The app's aiokafka producer, for record batches (Faust sends one record at a time)."""
    return app.producer._ensure_producer()


@contextlib.contextmanager
def writing_for(event: Any) -> Iterator[None]:
    """Make ``event`` the current one, so Faust table writes go to its changelog partition.

    A batch is handed over after iteration, when Faust no longer has a current event;
    Faust has no public way to name the partition of a table write.
    """
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def in_flight_events(consumer: Any) -> int:
    """Events taken by an agent and not yet acknowledged. Faust offers no public view;
    this mirrors its own ``wait_empty``, without the early exit it takes once stopping."""
    consumer._clean_unacked_messages()
    return len(consumer._unacked_messages)


def paused_partitions(consumer: Any) -> set[Any]:
    """Partitions Faust itself paused (flow control, recovery), for a stall report."""
    paused: set[Any] = getattr(consumer, "_paused_partitions", set())
    return paused


def active_partitions(consumer: Any) -> set[Any]:
    """Partitions Faust currently fetches, for a stall report."""
    if not hasattr(consumer, "_get_active_partitions"):
        return set()
    active: set[Any] = consumer._get_active_partitions()
    return active
