"""The alert cases at volume, in-process (no broker): a worker's partitions holding
``--cases`` cases, ``--open`` of them unresolved; what a recovery, the inbox, the deadline
check and the retention sweep cost.

    .venv/bin/python -m bench.alert_cases [--cases 1000000] [--open 5000] [--due 20]

Cases are built once as the lifecycle topic holds them (JSON, each with a customer
context of a few recent interactions) into a plain dict standing for the table; the
changelog is a no-op. Prints each figure; quote them with this command. The same whatever
the hour: nothing here follows the clock of day.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry

from cxstream.alerts.config import load_rules
from cxstream.schemas.outputs import Alert
from cxstream.streams.alerting.case_index import IndexNotReady
from cxstream.streams.alerting.cases import INDEX_SLICE_SECONDS, AlertCases
from cxstream.streams.health.collectors import OpenAlertsCollector
from cxstream.streams.kafka.changelog import BulkChangelog
from cxstream.streams.metrics import WorkerMetrics
from cxstream.streams.users import Principal
from cxstream.streams.web.alert_lists import filter_rows, local_rows
from cxstream.streams.web.queries import page
from cxstream.streams.worker import GC_THRESHOLDS
from testkit.support import CasesTable, stored_case

T0 = datetime(2026, 11, 1, tzinfo=UTC)
CONFIG = load_rules()


async def no_send(topic: str, partition: int, records: list[Any]) -> None:
    return None


async def no_follow_up(alert: Alert) -> Any:
    return asyncio.sleep(0)


def build(cases: int, unresolved: int, due: int, now: datetime) -> CasesTable:
    table = CasesTable()
    for n in range(cases):
        created = T0 + timedelta(seconds=n)
        act_by = (now - timedelta(minutes=1) if n < due else now + timedelta(days=1))
        case = stored_case(f"customer-{n:024x}", n, created, act_by,
                           None if n < unresolved else created + timedelta(hours=1))
        table[case.alert_id.encode()] = case.model_dump_json().encode()
    return table


def timed(fun: Any) -> float:
    began = time.perf_counter()
    fun()
    return time.perf_counter() - began


async def read_after_recovery(cases: AlertCases) -> tuple[float, list[float]]:
    """(seconds until the index is read, how long the loop went without a turn each
    time, longest first)."""
    gaps: list[float] = []
    reading = True

    async def probe() -> None:
        while reading:
            began = time.perf_counter()
            await asyncio.sleep(0)
            gaps.append(time.perf_counter() - began)

    watcher = asyncio.ensure_future(probe())
    await asyncio.sleep(0)
    began = time.perf_counter()
    while True:
        try:
            cases.index()
            break
        except IndexNotReady:
            await asyncio.sleep(0.05)  # a request, a deadline check: now and then
    total = time.perf_counter() - began
    reading = False
    await watcher
    return total, sorted(gaps, reverse=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=200_000)
    parser.add_argument("--open", type=int, default=5_000)
    parser.add_argument("--due", type=int, default=20)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    now = T0 + timedelta(days=60)
    began = time.perf_counter()
    table = build(args.cases, args.open, args.due, now)
    print(f"{args.cases:,} cases ({args.open:,} unresolved, {args.due} due) built in "
          f"{time.perf_counter() - began:.1f} s; {sum(map(len, table.values())) / 2**20:,.0f}"
          " MiB of JSON")
    cases = AlertCases(table, CONFIG, WorkerMetrics(CollectorRegistry()), 3,
                       BulkChangelog(no_send), lambda: {0, 1, 2}, no_follow_up, lambda: now)
    gc.set_threshold(*GC_THRESHOLDS)  # as a worker runs
    total, gaps = asyncio.run(read_after_recovery(cases))
    longest = ", ".join(f"{gap * 1000:.0f}" for gap in gaps[:3])
    print(f"open cases read again after a recovery (every stored case once, slices of "
          f"{INDEX_SLICE_SECONDS * 1000:.0f} ms in a running loop): {total:,.1f} s in all; "
          f"the loop's longest waits for a turn: {longest} ms, "
          f"p99 {gaps[len(gaps) // 100] * 1000:.0f} ms of {len(gaps):,} (the first slice "
          "copies a memory store's items, RocksDB iterates; a full garbage collection "
          "visits every object)")
    alice = Principal("alice", ("smb-support",))
    query = {"status": "unresolved", "limit": "200"}
    times = []
    for _ in range(args.requests):
        began = time.perf_counter()
        share = local_rows(cases, {"status": "unresolved"}, alice, 200)  # as /api/alerts
        page(filter_rows(share["alerts"], query, alice), query, share["matched"])
        times.append(time.perf_counter() - began)
    times.sort()
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    print(f"inbox (status=unresolved, one user's 200 rows): p50 "
          f"{statistics.median(times) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms over "
          f"{args.requests} requests")
    collector = OpenAlertsCollector(cases.open_counts, lambda: now)
    scrapes = sorted(timed(lambda: list(collector.collect())) for _ in range(args.requests))
    print(f"metrics scrape of the open cases (cxstream_alerts_open, _overdue): p50 "
          f"{statistics.median(scrapes) * 1000:.2f} ms, p99 "
          f"{scrapes[min(len(scrapes) - 1, int(len(scrapes) * 0.99))] * 1000:.2f} ms")
    check = timed(lambda: asyncio.run(cases.check_deadlines()))
    print(f"deadline check with {args.due} due: {check * 1000:.1f} ms")
    idle = timed(lambda: asyncio.run(cases.check_deadlines()))
    print(f"deadline check with none due: {idle * 1000:.2f} ms")
    first = timed(lambda: asyncio.run(cases.forget_resolved(30, 500)))
    sweep = timed(lambda: asyncio.run(cases.forget_resolved(30, 500)))
    print(f"retention sweep slice (500 stored cases looked at, as a worker's tick): "
          f"{sweep * 1000:.1f} ms; the first of a walk {first * 1000:.1f} ms (a memory "
          "store's items are copied once per walk; RocksDB iterates)")


if __name__ == "__main__":
    main()
