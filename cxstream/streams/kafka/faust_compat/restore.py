"""Fix 11: a table's changelog restored in bulk, not one record at a time through Faust.

Faust 0.15.3 restores a table by feeding every changelog record through the worker's
consumer, its conductor and a queue, then through ``Recovery._slurp_changelogs``, which
awaits ``asyncio.wait_for`` and recomputes how much is left over every partition for each
record. A profile of a worker restoring 200,000 customers (``bench/profile_worker.py
--target recovery``) put 46 % of its busy time in the fetch and conductor path and 29 %
in that loop, and under 1 % in RocksDB's writes: a worker started on an empty data
directory restored about 4,000 records per second (244 s for 1,000,000 customers).

With ``read_changelogs_with(app, new_reader)``, the active changelog partitions of the
RocksDB tables are brought up to their high-water marks before Faust's recovery looks
at them (``Recovery._build_offsets``, patched by ``fixes.apply``). A consumer of their
own, with no group, reads each partition from the offset the store holds, and each fetch
is written to the partition's database in one ``WriteBatch`` together with the offset it
reaches, so a stop at any moment leaves a database and an offset that agree. Faust then
finds the partitions up to date (or reads what is left) and finishes its recovery as
before: the tables' recovery callbacks run, and nothing is acted on, since the records
go to the stores only. A rebalance that begins meanwhile ends the bulk read at once;
Faust's next recovery starts from what was written. So does half of the time Faust
gives the step (``broker_request_timeout``): Faust then reads the rest itself.

Written by hand: no release of faust-streaming restores in bulk, and Faust offers no
public hook before its recovery reads the stores' offsets.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition

log = logging.getLogger(__name__)

#: the least records left to restore for the bulk read to be worth its own connection
DEFAULT_MIN_RECORDS = 10_000
#: records taken per fetch, across partitions
FETCH_RECORDS = 20_000
#: a bulk read that gets no record for this long leaves the rest to Faust
IDLE_SECONDS = 30.0
#: the share of Faust's time for ``_build_offsets`` (its broker_request_timeout) a bulk
#: read may take
BUDGET_SHARE = 0.5


@dataclass
class Reading:
    """What an app's bulk read needs: a consumer factory (an unstarted AIOKafkaConsumer with
    no group) and the least records left that make it worth one."""

    new_reader: Callable[[], Any]
    min_records: int
    #: told after each bulk read: (records written, partitions, seconds)
    on_restored: Callable[[int, int, float], None] | None = None


_READINGS: weakref.WeakKeyDictionary[Any, Reading] = weakref.WeakKeyDictionary()


def read_changelogs_with(app: Any, new_reader: Callable[[], Any],
                         min_records: int = DEFAULT_MIN_RECORDS,
                         on_restored: Callable[[int, int, float], None] | None = None
                         ) -> None:
    """Restore ``app``'s RocksDB tables in bulk when at least ``min_records`` changelog
    records are left to read (fix 11)."""
    _READINGS[app] = Reading(new_reader, min_records, on_restored)


@dataclass
class Partition:
    """One changelog partition to bring up to date: its store's database, the last offset
    the database holds (-1: none) and the last offset to read."""

    tp: Any
    db: Any
    offset_key: bytes
    last: int
    end: int

    @property
    def left(self) -> int:
        return self.end - self.last


def plan(recovery: Any, tps: Iterable[Any], offsets: MutableMapping[Any, Any]
         ) -> list[Partition]:
    """The active changelog partitions of RocksDB tables with records left to read."""
    from faust.stores.rocksdb import Store as RocksDBStore

    found = []
    for tp in tps:
        table = recovery.tp_to_table.get(tp)
        store = getattr(table, "data", None)
        if not isinstance(store, RocksDBStore) or not store.use_rocksdict:
            continue
        end = recovery.active_highwaters.get(tp)  # Faust's: the last offset, -1 if empty
        last = offsets.get(tp)
        last = -1 if last is None else last
        if end is not None and end > last:
            found.append(Partition(tp, store._db_for_partition(tp.partition),
                                   store.offset_key, last, end))
    return found


def write_fetched(partition: Partition, records: Iterable[Any]) -> int:
    """Write the fetched records up to the partition's end, with the offset they reach,
    in one batch; returns how many were written."""
    import rocksdict

    batch = rocksdict.WriteBatch(raw_mode=True)
    written = 0
    last = partition.last
    for record in records:
        if record.offset > partition.end:
            break
        if record.offset <= last:
            continue  # read again after a seek: the database has it
        if record.value is None:
            batch.delete(record.key)
        else:
            batch.put(record.key, record.value)
        last = record.offset
        written += 1
    if written:
        batch.put(partition.offset_key, str(last).encode())
        partition.db.write(batch)
        partition.last = last
    return written


async def restore_in_bulk(recovery: Any, tps: Iterable[Any],
                          offsets: MutableMapping[Any, Any]) -> int:
    """Bring the active changelog partitions of ``recovery``'s RocksDB tables up to their
    high-water marks, updating ``offsets`` (Faust's active offsets) as they are written;
    returns the records written (0: left to Faust)."""
    reading = _READINGS.get(recovery.app)
    if reading is None:
        return 0
    try:
        partitions = plan(recovery, tps, offsets)
    except Exception as exc:  # a database that will not open: Faust's recovery says so
        log.warning("bulk restore not started (%r); Faust reads the changelogs", exc)
        return 0
    if sum(partition.left for partition in partitions) < reading.min_records:
        return 0
    began = time.monotonic()
    # Faust gives _build_offsets broker_request_timeout, then stops its recovery service
    # (mode's wait_first reports a timeout as a stop): end well before, Faust reads the rest
    deadline = began + float(recovery.app.conf.broker_request_timeout) * BUDGET_SHARE
    reader = reading.new_reader()
    written = 0
    try:
        await reader.start()
        written = await read_into(reader, partitions, offsets, lambda: bool(
            recovery.signal_recovery_start.is_set() or recovery.should_stop
            or time.monotonic() > deadline))
    except Exception as exc:  # the bulk read is an optimisation: Faust reads what is left
        log.warning("bulk restore stopped early (%r); Faust reads the rest", exc)
    finally:
        await reader.stop()
    seconds = time.monotonic() - began
    log.info("bulk restore: %d changelog records of %d partitions in %.1f s (%.0f/s)",
             written, len(partitions), seconds, written / seconds if seconds else 0.0)
    if reading.on_restored is not None:
        reading.on_restored(written, len(partitions), seconds)
    return written


async def read_into(reader: Any, partitions: list[Partition],
                    offsets: MutableMapping[Any, Any], interrupted: Callable[[], bool],
                    idle_seconds: float = IDLE_SECONDS) -> int:
    """Read each partition from after its last offset to its end with ``reader`` (a
    started consumer without a group) and write it; ``offsets[tp]`` follows what is
    written. Ends early once ``interrupted()`` (a rebalance began, or the worker stops)
    or after ``idle_seconds`` without a record, leaving the rest to Faust; returns the
    records written."""
    written = 0
    # aiokafka's partitions, not Faust's TP (another named tuple)
    pending = {TopicPartition(partition.tp.topic, partition.tp.partition): partition
               for partition in partitions}
    reader.assign(list(pending))
    for key, partition in pending.items():
        if partition.last < 0:
            await reader.seek_to_beginning(key)
        else:
            reader.seek(key, partition.last + 1)
    idle_since = time.monotonic()
    while pending:
        if interrupted():
            log.info("bulk restore: a rebalance or a stop began, or its time is up; Faust "
                     "reads the rest")
            break
        fetched = await reader.getmany(*pending, timeout_ms=500, max_records=FETCH_RECORDS)
        for key, records in fetched.items():
            partition = pending[key]
            count = write_fetched(partition, records)
            if count:
                written += count
                offsets[partition.tp] = partition.last
        for key in list(pending):
            partition = pending[key]
            # done when read past the end (a compacted tail may hold no record at it)
            if partition.last >= partition.end or await reader.position(key) > partition.end:
                del pending[key]
        if fetched:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since > idle_seconds:
            log.warning("bulk restore: nothing read for %.0f s; Faust reads the rest",
                        idle_seconds)
            break
    return written
