"""What holds the memory of a folding worker: a memray heap profile of `cxstream worker`
while it folds grown customers (bench/throughput.py's grown traffic).

    .venv/bin/python -m bench.memory_profile [--customers 20000] [--top 20] [--keep FILE]

Starts its own broker, produces a profile and about 7 events for each customer, runs the
worker under `memray run` until it has folded them all, stops it with SIGTERM, and prints
the allocations alive at the heap's high-water mark, grouped by the innermost frame of
cxstream's code (and of the library below it), with the worker's RSS at the end. memray
tracks every malloc of the process, native libraries' too (RocksDB's): allocations made
with no Python frame on the stack are the native threads' own.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench.throughput import grown_events, rss_bytes, topics_for, wait_until_idle
from cxstream.cli.kafka import local_broker
from cxstream.cli.processes import WorkerProcess, free_port
from cxstream.cli.simulator.sending import send_records
from cxstream.streams.kafka.topic_admin import ensure_topics
from cxstream.streams.settings import load_settings
from testkit.support import base_env


def owner(stack: list[tuple[str, str, int]]) -> tuple[str, str]:
    """(the innermost frame of cxstream's code, the innermost frame below it that is not
    cxstream's) of an allocation's stack, innermost first."""
    if not stack:
        return "(no Python frame: a native thread)", ""
    below = f"{stack[0][0]} ({Path(stack[0][1]).name}:{stack[0][2]})"
    for function, filename, line in stack:
        if "/cxstream/" in filename:
            return f"{function} ({filename.split('/cxstream/')[-1]}:{line})", below
    return "(outside cxstream)", below


def summarise(path: Path, top: int) -> None:
    from memray import FileReader  # the heap profiler (a test dependency)

    reader = FileReader(str(path))
    peak = reader.metadata.peak_memory
    by_owner: Counter[str] = Counter()
    by_pair: Counter[tuple[str, str]] = Counter()
    for record in reader.get_high_watermark_allocation_records(merge_threads=True):
        mine, below = owner(list(record.stack_trace()))
        by_owner[mine] += record.size
        by_pair[mine, below] += record.size
    print(f"heap at its high-water mark: {peak / 2**20:,.0f} MiB")
    print(f"{'MiB':>8}  {'share':>6}  innermost cxstream frame")
    for mine, size in by_owner.most_common(top):
        print(f"{size / 2**20:8.1f}  {size / peak:6.1%}  {mine}")
    print(f"\n{'MiB':>8}  innermost cxstream frame  <-  the frame that allocated")
    for (mine, below), size in by_pair.most_common(top):
        print(f"{size / 2**20:8.1f}  {mine}  <-  {below}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--keep", type=Path, default=None,
                        help="copy the memray capture here (for `memray flamegraph`)")
    args = parser.parse_args()
    with local_broker.scratch_broker("cxstream-memory-") as (bootstrap, work):
        run = {"bootstrap_servers": bootstrap, **topics_for("benchmem"),
               "app_id": "bench-memory", "data_dir": str(work / "worker"),
               "web_port": str(free_port())}
        settings = load_settings({}, **run)
        asyncio.run(ensure_topics(settings))
        events = grown_events(args.customers)
        count = len(events)
        asyncio.run(send_records(settings, events, speed=None))
        del events
        capture = Path(tempfile.mkdtemp(prefix="cxstream-memray-")) / "worker.bin"
        worker = WorkerProcess(base_env(**run), work / "worker.log", settings.web_port,
                               python_args=("-m", "memray", "run", "--quiet", "-o",
                                            str(capture)))
        worker.start()
        try:
            worker.wait_for("cxstream_events_consumed_total", count, timeout=4 * 3_600)
            wait_until_idle(worker)
            rss = rss_bytes(worker.process.pid) if worker.process else 0
        finally:
            code = worker.stop(signal.SIGTERM, timeout=300)
        print(f"{count:,} events of {args.customers:,} grown customers folded; worker RSS "
              f"{rss / 2**20:,.0f} MiB under memray; exit {code}")
        summarise(capture, args.top)
        if args.keep is not None:
            shutil.copy(capture, args.keep)
        shutil.rmtree(capture.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
