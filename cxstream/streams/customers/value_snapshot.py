"""The value index saved at a clean stop, so that a restart on the same data need not read
every customer again.

After a recovery a worker refills its value index (scoring.value_bands.ValueIndex) from
every customer its partitions hold: with 1,000,000 customers that read is most of a
restart. On a clean stop (SIGTERM, after the drain), each owned partition's rows are
written to ``<data dir>/value-index/<partition>.json`` with the changelog offset the
customers table's store holds for it. On the next start a snapshot is taken only if the
store, once restored, is at exactly that offset: then no value has been written since, by
this worker or by any other (each write moves the offset), and the snapshot is what a read
of the table would give. Any other snapshot is ignored and the partition is read from the
table as before. Every snapshot file is deleted once looked at, before the worker serves,
so that one can never outlive the state it was taken from.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from cxstream.scoring import plain_codec as codec
from cxstream.scoring import plain_customer as plain
from cxstream.scoring.customer import StateRules
from cxstream.scoring.value_bands import ValueIndex
from cxstream.streams.customers.state_codec import customer_partition
from cxstream.streams.kafka.faust_compat.access import changelog_offset, stored_items

log = logging.getLogger(__name__)

#: 2: the histograms saved beside the rows (1 had the rows alone: read from the table)
FORMAT = 2
FOLDER = "value-index"


def snapshot_folder(data_dir: Path) -> Path:
    return Path(data_dir) / FOLDER


def write_snapshots(folder: Path, customers: Any, index: ValueIndex,
                    partitions: set[int]) -> int:
    """Write a snapshot of each of ``partitions`` that the index holds whole and whose
    store has a changelog offset (a memory store has none: nothing is written); returns
    the customers written. A file is replaced at once (written beside it, then renamed)."""
    written = 0
    topic = customers.changelog_topic.get_topic_name()
    for partition in sorted(partitions & index.indexed):
        offset = changelog_offset(customers, partition)
        if offset is None:
            continue
        rows = index.rows(partition)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{partition}.json"
        scratch = path.with_suffix(".tmp")
        scratch.write_bytes(orjson.dumps(
            {"format": FORMAT, "changelog": topic, "offset": offset, "rows": rows,
             "histograms": index.histograms_of(partition)},
            option=orjson.OPT_NON_STR_KEYS))
        os.replace(scratch, path)
        written += len(rows)
    return written


#: a partition's saved rows (customer id, segment, value, low) and their histograms
Saved = tuple[list[list[Any]], dict[str, dict[int, int]]]


def take_snapshot(folder: Path, customers: Any, partition: int) -> Saved | None:
    """The rows and histograms saved for ``partition`` if they match the store as it is
    now (None: no snapshot, or one of another table or offset, or unreadable, or whose
    histograms do not count its rows); the file is removed in every case."""
    path = folder / f"{partition}.json"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    path.unlink(missing_ok=True)
    try:
        body = orjson.loads(raw)
        saved = (body["format"], body["changelog"], body["offset"])
        rows = body["rows"]  # lists of (customer id, segment, value, low), as saved
        histograms = {segment: {int(bucket): int(count) for bucket, count in counts.items()}
                      for segment, counts in body.get("histograms", {}).items()}
        counted: dict[str, int] = {}
        for _, segment, value, _ in rows:
            counted[segment] = counted.get(segment, 0) + 1
            float(value)  # a value that is not a number is refused here, not later
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError,
            AttributeError) as error:
        log.warning("value index snapshot %s unreadable (%s): reading the table", path, error)
        return None
    current = (FORMAT, customers.changelog_topic.get_topic_name(),
               changelog_offset(customers, partition))
    if saved != current:
        log.info("value index snapshot of partition %d is of %s, the store is at %s: "
                 "reading the table", partition, saved[1:], current[1:])
        return None
    if counted != {segment: sum(counts.values()) for segment, counts in histograms.items()}:
        log.warning("value index snapshot %s: its histograms do not count its rows; reading "
                    "the table", path)
        return None
    return rows, histograms


def drop_snapshots(folder: Path) -> None:
    """Remove every snapshot (those of partitions this worker did not get at its start)."""
    if folder.is_dir():
        for path in folder.glob("*.json"):
            path.unlink(missing_ok=True)


def rebuild_value_index(customers: Any, index: ValueIndex, owned: set[int],
                        rules: StateRules, snapshots: Path | None = None) -> int:
    """Refill the index from the table (after recovery); return the customers indexed.
    With ``snapshots`` (a folder, streams.customers.value_snapshot), a partition whose snapshot
    matches its store is taken from it instead of being read, and every snapshot there is
    then removed."""
    index.clear()
    plain_rules = plain.PlainRules(rules)
    saved: dict[int, int] = {}  # partition -> customers taken from its snapshot
    if snapshots is not None:
        for partition in sorted(owned):
            found = take_snapshot(snapshots, customers, partition)
            if found is not None:
                saved[partition] = index.fill_saved(partition, *found)
        drop_snapshots(snapshots)
    to_read = owned - set(saved)

    def rows() -> Iterator[tuple[int, str, str, float, bool | None]]:
        if not to_read:
            return
        # history keys sort last (HISTORY_MARK): RocksDB stops before them
        for _, key, raw in stored_items(customers, to_read, below=plain.HISTORY_MARK):
            partition = customer_partition(raw)
            if partition in to_read:
                fields = codec.value_fields(raw, plain_rules)
                if fields is not None:
                    yield (partition, key.decode(), *fields)

    indexed = sum(saved.values()) + index.fill(rows())  # fill adds the partitions up
    index.mark_indexed(owned)
    if snapshots is not None:
        log.info("value index: partitions %s from their snapshots (%d customers), %s read "
                 "from the table", sorted(saved), sum(saved.values()), sorted(to_read))
    return indexed
