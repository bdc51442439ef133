"""Where a worker's time goes: py-spy samples of a `cxstream worker` on simulated traffic.

    .venv/bin/pip install py-spy     # not a project dependency
    .venv/bin/python -m bench.profile_worker [--events 60000] [--seconds 20]

Starts its own broker, produces the events of bench/throughput.py, records the worker for
--seconds with py-spy at 100 Hz while it works through them, and prints the share of
samples per part of the pipeline (a sample can count in several parts).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench.throughput import bench_records, topics_for
from cxstream.cli.kafka import local_broker
from cxstream.cli.processes import free_port
from cxstream.cli.simulator.sending import send_records
from cxstream.streams.clients import ensure_topics
from cxstream.streams.settings import load_settings
from tests.support import base_env

PARTS = {
    "validation (pydantic parsing of the raw messages)": ("Ingest._validate",),
    "fold, rules and alerts (alerts/core.py)": ("CustomerCore.fold_batch",),
    "table values and changelog records (encode, batch, send)": ("StateWriter._write",
                                                                 "BulkChangelog.flush"),
    "publishing alerts": ("AlertEmitter.emit",),
    "alert cases (the lifecycle table)": ("AlertCases.take_events",),
    "recurring-issue signals (their agent)": ("_fold_signal_event",),
    "metrics scrapes": ("serve_metrics",),
    "Faust: stream iteration and batching, per event": ("Stream._c_aiter",
                                                        "Stream._py_aiter",
                                                        "add_to_buffer"),
    "Faust/aiokafka: fetching and the conductor": ("Fetcher._fetcher",
                                                   "Conductor._compile_message_handler"),
    "aiokafka: producer sending": ("Sender._send_produce_req",
                                   "ProducerBuffer._handle_pending"),
    "the consumer thread (aiokafka in its own loop)": ("WorkerThread.run",),
}
#: where a thread waits for I/O: uvloop runs its loop in C, so an idle thread's sample
#: ends in the Python frame that started the loop (the asyncio loop: in select)
IDLE_LEAVES = ("EpollSelector.select", "Worker.execute_from_commandline",
               "ServiceThread._start_thread")


IDLE = "waiting for I/O (idle), either thread"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--top", type=int, default=0,
                        help="also list this many functions most often on the stack")
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("py-spy is not installed: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2
    with local_broker.scratch_broker("cxstream-profile-") as (bootstrap, work):
        values = {"bootstrap_servers": bootstrap, "partitions": "4", **topics_for("prof"),
                  "app_id": "profile", "data_dir": str(work / "worker"),
                  "web_port": str(free_port()), "log_level": "info",
                  "allowed_lateness_seconds": str(30 * 86_400)}
        settings = load_settings({}, **values)
        asyncio.run(ensure_topics(settings))
        asyncio.run(send_records(settings, bench_records(args.events, args.customers),
                                 speed=None))
        raw = work / "profile.txt"
        subprocess.run([spy, "record", "-r", "100", "-d", str(args.seconds), "--format", "raw",
                        "-o", str(raw), "--", sys.executable, "-m", "cxstream", "worker"],
                       env=base_env(**values), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False, timeout=args.seconds + 120)
        shares: Counter[str] = Counter()
        functions: Counter[str] = Counter()
        total = 0
        for line in raw.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            total += int(count)
            for part, markers in PARTS.items():
                if any(marker in stack for marker in markers):
                    shares[part] += int(count)
            if any(leaf in stack.rsplit(";", 1)[-1] for leaf in IDLE_LEAVES):
                shares[IDLE] += int(count)
            for name in {frame.split(" (")[0] for frame in stack.split(";")}:
                functions[name] += int(count)
    print(f"{total} samples of a worker over {args.seconds} s (start-up included)")
    for part in (*PARTS, IDLE):
        print(f"{shares[part] / total:6.1%}  {part}")
    if args.top:
        print(f"the {args.top} functions most often on the stack:")
        for name, count in functions.most_common(args.top):
            print(f"{count / total:6.1%}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
