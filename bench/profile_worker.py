"""Where the time goes: py-spy samples of a `cxstream worker` on simulated traffic, of
cxstream's own work in-process, or of Faust's bare batched iteration.

    (py-spy comes with the test extras that `make test` installs)
    .venv/bin/python -m bench.profile_worker [--events 60000] [--seconds 20]
        [--target worker|in-process|faust-batched|recovery] [--top N]

recovery: a worker folds --customers profiles and stops; one on an empty data directory
restores them from the changelogs, recorded for --seconds.
worker (the default): starts its own broker, produces the events of bench/throughput.py,
records the worker for --seconds with py-spy at 100 Hz while it works through them.
in-process: records `bench.throughput --only in-process` (no broker) to its end.
faust-batched: records `bench.faust_baselines batched` over the produced events to its
end. Prints the share of samples per part (a sample can count in several parts).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench.throughput import ROOT, bench_records, profiles, topics_for, wait_until_idle
from cxstream.cli.kafka import local_broker
from cxstream.cli.processes import WorkerProcess, free_port
from cxstream.cli.simulator.sending import send_records
from cxstream.streams.kafka.topic_admin import ensure_topics
from cxstream.streams.settings import load_settings
from testkit.support import base_env

PARTS = {
    "validation (pydantic parsing of the raw messages)": ("Ingest._validate",),
    "the batch's customers read from the table (StateWriter._load_customer)": (
        "StateWriter._load_customer",),
    "fold, rules and alerts (alerts/customer_core.py)": ("CustomerCore.fold_batch",),
    "table values and changelog records staged (StateWriter._write)": (
        "StateWriter._write",),
    "  of which survey requests and priorities (folds over the core's result)": (
        "SurveyDesk.", "PriorityBoard."),
    "changelog sent, then applied to the stores (BulkChangelog.send_all)": (
        "BulkChangelog.send_all",),
    "  of which RocksDB writes (store_writes)": ("store_writes",),
    "publishing alerts": ("AlertEmitter.emit",),
    "timers (waiting surveys, value bands, escalations, expiries)": ("state_timer",),
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
#: the parts of cxstream's own work (bench.throughput --only in-process)
IN_PROCESS_PARTS = {
    "validation (pydantic parsing of the raw messages)": ("Ingest._validate",),
    "fold (batch_fold)": ("FoldBatch.fold",),
    "rules and alerts (alerts/customer_core.py, beside the fold)": (
        "CustomerCore._on_applied", "CustomerCore._on_profile"),
    "  of which the contract's models for the rules (to_model)": ("to_model",),
    "table values and changelog records": ("StateWriter._write",),
    "  of which the hot record's encoding": ("encode (cxstream/scoring/plain_codec.py",),
    "survey requests (streams/customers/survey_desk.py)": (
        "SurveyDesk.finish", "SurveyDesk.observe"),
    "priorities (streams/issues/priorities.py)": ("PriorityBoard.finish", "PriorityBoard.observe"),
}
#: Faust's path per message (bench.faust_baselines batched)
FAUST_PARTS = {
    "the consumer's wait_first per message (Consumer._drain_messages)": (
        "Service.wait_first",),
    "the conductor's on_message": ("Conductor._compile_message_handler",),
    "the stream's iteration": ("Stream._c_aiter", "Stream._py_aiter"),
    "the monitor and other sensors": ("SensorDelegate.",),
    "aiokafka's fetch": ("Consumer.getmany",),
}
#: a worker started on an empty data directory, restoring its tables from the changelogs
RECOVERY_PARTS = {
    "Faust's recovery loop, per changelog record (Recovery._slurp_changelogs)": (
        "Recovery._slurp_changelogs",),
    "  of which RocksDB writes (Store.apply_changelog_batch)": (
        "Store.apply_changelog_batch",),
    "Faust/aiokafka: fetching and the conductor": ("Fetcher._fetcher",
                                                   "Conductor._compile_message_handler",
                                                   "Consumer._drain_messages"),
    "the value index from the customer table (streams/customers/band_refresh.py, "
    "value_snapshot.py)": (
        "ValueIndex.", "take_snapshot", "rebuild_from"),
    "the partial-tally index and other table reads after the restore": (
        "PartialsIndex.", "stored_items"),
    "the consumer thread (aiokafka in its own loop)": ("WorkerThread.run",),
    "start-up: imports and building the app": ("<module>", "build_app"),
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
    parser.add_argument("--target", choices=["worker", "in-process", "faust-batched",
                                             "recovery"], default="worker",
                        help="recovery: a worker folds --customers profiles and stops, "
                             "then one on an empty data directory restores them from the "
                             "changelogs, recorded for --seconds")
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("py-spy is not installed: make install (the test extras) installs it",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="cxstream-profile-") as folder:
        raw = Path(folder) / "profile.txt"
        if args.target == "in-process":
            subprocess.run([spy, "record", "-r", "100", "--format", "raw", "-o", str(raw),
                            "--", sys.executable, "-m", "bench.throughput", "--only",
                            "in-process", "--events", str(args.events), "--customers",
                            str(args.customers)], cwd=ROOT, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False, timeout=3600)
            return report(raw, IN_PROCESS_PARTS, "of cxstream's own work, in-process",
                          args.top, only="Ingest.process")
        with local_broker.scratch_broker("cxstream-profile-") as (bootstrap, work):
            values = {"bootstrap_servers": bootstrap, "partitions": "4",
                      **topics_for("prof"), "app_id": "profile",
                      "data_dir": str(work / "worker"), "web_port": str(free_port()),
                      "log_level": "info", "allowed_lateness_seconds": str(30 * 86_400)}
            settings = load_settings({}, **values)
            asyncio.run(ensure_topics(settings))
            records = bench_records(args.events, args.customers)
            asyncio.run(send_records(settings, records, speed=None))
            if args.target == "recovery":
                return recovery(spy, raw, values, args, work)
            if args.target == "faust-batched":
                subprocess.run([spy, "record", "-r", "100", "--format", "raw", "-o",
                                str(raw), "--", sys.executable, "-m",
                                "bench.faust_baselines", "batched", str(len(records))],
                               env=base_env(**values), cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, check=False, timeout=3600)
                return report(raw, FAUST_PARTS, "of Faust's bare batched iteration",
                              args.top, busy_only=True)
            subprocess.run([spy, "record", "-r", "100", "-d", str(args.seconds), "--format",
                            "raw", "-o", str(raw), "--", sys.executable, "-m", "cxstream",
                            "worker"], env=base_env(**values), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False,
                           timeout=args.seconds + 120)
            return report(raw, PARTS, f"of a worker over {args.seconds} s (start-up "
                          "included)", args.top)


def recovery(spy: str, raw: Path, values: dict[str, str], args: argparse.Namespace,
             work: Path) -> int:
    settings = load_settings({}, **values)
    asyncio.run(send_records(settings, profiles(args.customers), speed=None))
    filler = WorkerProcess(base_env(**values), work / "filler.log",
                           settings.web_port).start()
    try:
        filler.wait_for("cxstream_events_consumed_total", args.customers, timeout=7200)
        wait_until_idle(filler)
    finally:
        filler.stop()
    fresh = {**values, "data_dir": str(work / "fresh")}
    subprocess.run([spy, "record", "-r", "100", "-d", str(args.seconds), "--format", "raw",
                    "-o", str(raw), "--", sys.executable, "-m", "cxstream", "worker"],
                   env=base_env(**fresh), stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False, timeout=args.seconds + 120)
    return report(raw, RECOVERY_PARTS, f"of a worker restoring {args.customers:,} customers "
                  f"from the changelogs, over {args.seconds} s (start-up included)",
                  args.top, busy_only=True)


def report(raw: Path, parts: dict[str, tuple[str, ...]], what: str, top: int,
           only: str | None = None, busy_only: bool = False) -> int:
    """Print the share of samples per part (``only``: samples with that frame;
    ``busy_only``: samples of a thread waiting for I/O left out)."""
    shares: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        idle = any(leaf in stack.rsplit(";", 1)[-1] for leaf in IDLE_LEAVES)
        if (only is not None and only not in stack) or (busy_only and idle):
            continue
        total += int(count)
        for part, markers in parts.items():
            if any(marker in stack for marker in markers):
                shares[part] += int(count)
        if idle:
            shares[IDLE] += int(count)
        for name in {frame.split(" (")[0] for frame in stack.split(";")}:
            functions[name] += int(count)
    if total == 0:
        print("no samples recorded", file=sys.stderr)
        return 1
    print(f"{total} samples {what}" + (", waiting for I/O left out" if busy_only else ""))
    for part in (*parts, *(() if busy_only else (IDLE,))):
        print(f"{shares[part] / total:6.1%}  {part}")
    if top:
        print(f"the {top} functions most often on the stack:")
        for name, seen in functions.most_common(top):
            print(f"{seen / total:6.1%}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
