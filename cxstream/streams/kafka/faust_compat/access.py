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


def is_durable(table: Any) -> bool:
    """Whether the table's store outlives the process (RocksDB), so that what is written
    to it must never be ahead of its changelog."""
    from faust.stores.rocksdb import Store as RocksDBStore

    return isinstance(getattr(table, "data", None), RocksDBStore)


class _PartitionEvent:
    """Stands for an event of ``partition`` where Faust's store asks for the current one
    (its RocksDB store writes into the database of the current event's partition)."""

    __slots__ = ("__weakref__", "message")

    def __init__(self, partition: int) -> None:
        self.message = _Message(partition)


class _Message:
    __slots__ = ("partition",)

    def __init__(self, partition: int) -> None:
        self.partition = partition


def store_writes(table: Any, partition: int, writes: dict[bytes, Any],
                 changelog: tuple[str, int] | None = None) -> None:
    """Put ``writes`` (key -> value, None: delete) into the table's store, in the
    partition's database, with ``changelog``: the changelog topic and the offset the
    writes are at (None: not known; see ``note_changelog_offset``). A RocksDB store gets
    them in one batch with the offset: Faust's store writes one key at a time, each
    through its own lookups (7.8 % of a folding worker's samples,
    bench/profile_worker.py), and one batch is atomic, so a crash never leaves values
    ahead of or behind their offset."""
    if is_durable(table):
        _write_batch(table_store(table), partition, writes,
                     None if changelog is None else changelog[1])
        return
    _write_each(table, partition, writes)
    if changelog is not None:
        note_changelog_offset(table, changelog[0], partition, changelog[1])


def _write_batch(store: Any, partition: int, writes: dict[bytes, Any],
                 changelog_offset: int | None) -> None:
    """Faust's ``Store._set`` and ``_del`` for each key, in one rocksdict ``WriteBatch``:
    the key and value encoded by the store's own codecs into the partition's database,
    the key's partition into the store's key index (which reads look at first). A delete
    deletes the key in this partition's database: Faust's ``_del`` looks in every
    database that may hold it, and these tables' keys live in one partition only. The
    databases are opened in raw mode (fix 11 writes them the same way)."""
    import rocksdict

    db = store._db_for_partition(partition)
    index = store._key_index
    # the raw codec gives bytes back as they are: skip its call for those
    raw = store.key_serializer == "raw" and store.value_serializer == "raw"
    encode_key, encode_value = store._encode_key, store._encode_value
    batch = rocksdict.WriteBatch(raw_mode=True)
    for key, value in writes.items():
        raw_key = key if raw and type(key) is bytes else encode_key(key)
        if value is None:
            batch.delete(raw_key)
            index.pop(raw_key, None)
        else:
            batch.put(raw_key, value if raw and type(value) is bytes else encode_value(value))
            index[raw_key] = partition
    if changelog_offset is not None:
        batch.put(store.offset_key, str(changelog_offset).encode())
    db.write(batch)


def _write_each(table: Any, partition: int, writes: dict[bytes, Any]) -> None:
    store = table_store(table)
    event = _PartitionEvent(partition)
    with writing_for(event):
        for key, value in writes.items():
            if value is None:
                store.pop(key, None)
            else:
                store[key] = value


def table_size(table: Any) -> int:
    """Keys of the table on this worker's active partitions: RocksDB's own estimate for a
    durable table (counting would read every key on each scrape), the count otherwise."""
    if not is_durable(table):
        return len(table)
    store: Any = table_store(table)
    return sum(db.property_int_value("rocksdb.estimate-num-keys") or 0
               for db in store._dbs_for_actives())


def stored_items(table: Any, partitions: set[int], below: bytes | None = None
                 ) -> Iterator[tuple[int, bytes, bytes]]:
    """(partition, key, value) of what the table's store holds for ``partitions``, keys
    in order and only those below ``below`` on RocksDB (None: all), as stored: a table
    with the raw codecs only. On RocksDB each partition's database is read directly, in
    key order: Faust's ``items()`` decodes each item through the table's codecs and its
    store in Python, and a worker reads every customer after a recovery. A memory store
    has no partitions: its items are given with partition -1 (the caller tells them
    apart)."""
    if not is_durable(table):
        for key, value in list(table_store(table).items()):
            if below is None or key < below:
                yield -1, key, value
        return
    store: Any = table_store(table)
    offset_key = store.offset_key
    for partition in sorted(partitions & set(store._dbs)):
        for key, value in store._dbs[partition].items():
            if below is not None and key >= below:
                break
            if key != offset_key:
                yield partition, key, value


def changelog_offset(table: Any, partition: int) -> int | None:
    """The last changelog offset the table's store holds for ``partition`` (None: a memory
    store, a partition whose database is not open here, or nothing applied yet). Read
    from the open database itself: Faust's ``persisted_offset`` opens the database of a
    partition it does not hold, and a stop during a rebalance may have closed it."""
    if not is_durable(table):
        return None
    store: Any = table_store(table)
    db = store._dbs.get(partition)
    if db is None:
        return None
    raw = db.get(store.offset_key)
    return None if raw is None else int(raw)


def note_changelog_offset(table: Any, topic: str, partition: int, offset: int) -> None:
    """Tell the store how far its changelog partition is applied: a restart on the same
    data reads only the records after it (Faust does this for its own writes)."""
    from faust.types import TP

    store: Any = table_store(table)
    store.set_persisted_offset(TP(topic, partition), offset)


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
