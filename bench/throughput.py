"""Throughput, latency, memory and restart of the full pipeline next to its baselines.

    .venv/bin/python -m bench.throughput [--events 200000] [--customers 20000]
        [--latency-seconds 30] [--recovery-customers 1000000] [--grown-customers 100000]
        [--only all|recovery|grown|in-process|faust|peers|group-answers|gc]
        [--keep-logs DIR]

Everything runs in one go on one local Kafka broker this script starts (free loopback
ports), on the same simulated events (valid ones only, profiles first); docs/performance.md
says what each row is. In this process first: cxstream's own work with no Kafka and no
Faust (a first pass, then the next events of the same customers), and 0.3.0's own work
(bench/reference_core.py), with the changelog bytes of each. Then on the broker: the raw
aiokafka consumer, Faust's bare iteration one by one and over take_events batches, a naive
Faust agent (bench/faust_baselines.py), the quix-streams peer (bench/peer/quix_cx.py, in
the virtualenv ``make bench-peer`` makes; left out without it), the full pipeline with one
worker and with two, produce-to-alert latency at half the one-worker rate and at 1,000
events/s, a restart on local RocksDB state and a start from the changelog alone with
--recovery-customers customers, and the memory of a worker holding --grown-customers
grown customers.
Each rate is events per second from the first event processed to the last.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from rich.console import Console
from rich.table import Table

from cxstream.cli.kafka import local_broker
from cxstream.cli.processes import WorkerProcess, free_port
from cxstream.cli.simulator.generator import SimConfig, SimRecord, simulate
from cxstream.cli.simulator.sending import send_records
from cxstream.schemas.parsing import InputKind, Rejection, parse_input
from cxstream.streams.kafka.clients import aiokafka_options
from cxstream.streams.kafka.plain_clients import partitions_of
from cxstream.streams.kafka.topic_admin import ensure_topics
from cxstream.streams.metrics import OWN_WORK_STAGES
from cxstream.streams.settings import Settings, load_settings
from cxstream.streams.worker import GC_THRESHOLDS
from testkit.in_process import in_process_core, in_process_messages
from testkit.support import base_env, feedback, to_bytes

ROOT = Path(__file__).resolve().parents[1]
console = Console()


def topics_for(run: str) -> dict[str, str]:
    return {"topic_interactions": f"{run}.cx.interactions", "topic_feedback": f"{run}.cx.feedback",
            "topic_customers": f"{run}.cx.customers", "topic_alerts": f"{run}.cx.alerts",
            "topic_deadletter": f"{run}.cx.deadletter",
            "topic_alerts_deadletter": f"{run}.cx.alerts.deadletter",
            "topic_survey_requests": f"{run}.cx.survey-requests"}


def bench_records(events: int, customers: int, seed: int = 5,
                  later: bool = False) -> list[SimRecord]:
    """Exactly ``events`` records: ``customers`` profiles, then the live events at a flat
    rate (no daily rhythm), so a run means the same whatever the hour it starts. The live
    events span about 10 minutes of event time ending 20 minutes ago (``later``: the next
    events of the same customers, after those)."""
    live = max(events - customers, 1)
    # drawn at a rate with a margin, then cut at ``live``: Poisson arrivals make the
    # count of a fixed span vary, the first ``live`` of a longer one do not
    config = SimConfig(customers=customers, rate=(live * 1.25 + 100) / 600, duration=600,
                       history_days=0, malformed_share=0, incidents=False, seed=seed,
                       daily_rhythm=False)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30 if not later
                                                                 else 20)
    stream = simulate(config, start).records()
    records = list(itertools.islice(stream, customers + live))
    if len(records) != customers + live:
        raise RuntimeError(f"the simulator gave {len(records)} records, not "
                           f"{customers + live}")
    return records


async def raw_consumer(settings: Settings, count: int) -> float:
    """Read and validate every input message with a plain aiokafka consumer."""
    kinds = {settings.topic_interactions: InputKind.INTERACTION,
             settings.topic_feedback: InputKind.FEEDBACK,
             settings.topic_customers: InputKind.CUSTOMER}
    consumer = AIOKafkaConsumer(**aiokafka_options(settings), group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                max_partition_fetch_bytes=8 * 1024 * 1024)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for topic in settings.input_topics
               for p in await partitions_of(settings, topic)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen, first = 0, 0.0
        while seen < count:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            if batches and not first:
                first = time.monotonic()
            for tp, messages in batches.items():
                for message in messages:
                    parsed = parse_input(kinds[tp.topic], message.key, message.value, 65_536)
                    assert not isinstance(parsed, Rejection), parsed
                    seen += 1
        return time.monotonic() - first
    finally:
        await consumer.stop()


def in_process_rules(settings: Settings) -> tuple[Any, Any, Any, Any]:
    """The fold rules, value index, bands and alert reactions of a worker's core on 4 owned
    partitions (cxstream.streams.core.build_core), for 0.3.0's in-process row."""
    core = in_process_core(settings, None, None)
    return core.rules, core.index, core.bands, core.writer.reactions


@contextlib.contextmanager
def gc_thresholds(thresholds: tuple[int, int, int] | None) -> Any:
    """The collector's thresholds for a run (None: the process's, as they are), then
    the process's again."""
    before = gc.get_threshold()
    if thresholds is not None:
        gc.set_threshold(*thresholds)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def fold_alone(settings: Settings, passes: list[list[SimRecord]],
               cores: list[Any] | None = None,
               thresholds: tuple[int, int, int] | None = GC_THRESHOLDS
               ) -> list[tuple[float, int, int, dict[str, float]]]:
    """Seconds, changelog bytes (keys and values), new alerts and seconds by stage
    (cxstream_own_work_seconds_total) for the pipeline's own work on each pass of records
    in this process, one worker's state carried from pass to pass, no Kafka and no Faust:
    validation, fold, rules, alerts, survey requests, priorities and table values with
    their changelog records encoded (then dropped), in batches of CXSTREAM_BATCH_SIZE.
    What a worker would cost if Faust and Kafka were free. ``cores``: given the core, to
    read after the run. ``thresholds``: the collector's, a worker's by default
    (streams.worker.GC_THRESHOLDS; before commit 06f282d this ran with Python's)."""

    from cxstream.alerts.reactions import AlertOut
    from cxstream.streams.ingest.batches import Ingest, IngestLimits
    from cxstream.streams.kafka.changelog import BulkChangelog

    written = [0]
    alerts = [0]

    async def drop(outputs: list[Any]) -> None:
        alerts[0] += sum(1 for output in outputs
                         if isinstance(output, AlertOut) and output.status == "new")

    async def count(topic: str, partition: int, records: list[Any]) -> None:
        written[0] += sum(len(key) + len(value or b"") for key, value in records)

    core = in_process_core(settings, drop, BulkChangelog(count))
    writer, metrics = core.writer, core.writer.metrics
    if cores is not None:
        cores.append(core)

    class NoDeadLetters:  # the bench's events are all valid
        async def write(self, topic: str, partition: int, rejected: Any) -> list[int]:
            return []

    ingest = Ingest(settings.input_kinds(),
                    IngestLimits(settings.max_event_bytes, None, settings.max_clock_skew_seconds),
                    metrics, NoDeadLetters(), writer.handle, writer.finish)
    next_offset: dict[tuple[str, int], int] = {}

    async def run(events: list[Any]) -> float:
        began = time.perf_counter()
        for start in range(0, len(events), settings.batch_size):
            await ingest.process(events[start:start + settings.batch_size])
        return time.perf_counter() - began

    def stages() -> dict[str, float]:
        return {stage: metrics.registry.get_sample_value(
            "cxstream_own_work_seconds_total", {"stage": stage}) or 0.0
            for stage in OWN_WORK_STAGES}

    results = []
    for records in passes:
        events = in_process_messages(settings, records, next_offset)
        written[0] = alerts[0] = 0
        before = stages()
        with gc_thresholds(thresholds):
            seconds = asyncio.run(run(events))
        after = stages()
        results.append((seconds, written[0], alerts[0],
                        {stage: after[stage] - before[stage] for stage in OWN_WORK_STAGES}))
    return results


def stage_table(passes: list[tuple[str, int, dict[str, float]]]) -> Table:
    """µs per event by stage of the own work (cxstream_own_work_seconds_total), one column
    per pass: (name, events, seconds by stage)."""
    table = Table(title="own work by stage (µs per event, from the worker's counters)")
    table.add_column("stage")
    for name, _, _ in passes:
        table.add_column(name, justify="right")
    for stage in OWN_WORK_STAGES:
        table.add_row(stage, *(f"{1e6 * by_stage[stage] / events:.1f}"
                               for _, events, by_stage in passes))
    table.add_row("sum", *(f"{1e6 * sum(by_stage.values()) / events:.1f}"
                           for _, events, by_stage in passes))
    return table


def reference_alone(settings: Settings, records: list[SimRecord]) -> tuple[float, int]:
    """fold_alone's first pass as 0.3.0 did the work (bench/reference_core.py), with
    Python's collector thresholds, as 0.3.0's worker ran."""
    from bench.reference_core import ReferenceWorker

    rules, index, _, reactions = in_process_rules(settings)
    worker = ReferenceWorker(rules, reactions, settings.max_event_bytes, index)
    kinds = settings.input_kinds()
    messages = [(kinds[e.message.topic], e.message.partition, e.message.offset,
                 e.message.key, e.message.value)
                for e in in_process_messages(settings, records, {})]
    began = time.perf_counter()
    for start in range(0, len(messages), settings.batch_size):
        worker.process(messages[start:start + settings.batch_size])
    return time.perf_counter() - began, worker.changelog_bytes


def faust_baseline(mode: str, values: dict[str, str], count: int, workdir: Path,
                   run: str = "") -> float:
    """Seconds of one Faust baseline over the ``count`` events (``run``: a name that makes
    its consumer group a new one, to read them all again)."""
    env = base_env(**values, app_id=f"bench-{mode}{run}", data_dir=str(workdir / mode))
    result = subprocess.run([sys.executable, "-m", "bench.faust_baselines", mode,
                             str(count)], env=env, cwd=ROOT, capture_output=True, text=True,
                            timeout=3600, check=False)
    # Faust's worker sends stdout through its logger: find the JSON inside the line
    output = result.stdout + result.stderr
    found = [line[line.index('{"mode"'):] for line in output.splitlines() if '{"mode"' in line]
    if not found:
        raise RuntimeError(f"{mode} baseline failed:\n{output[-3000:]}")
    return float(json.loads(found[-1])["seconds"])


PEER_PYTHON = ROOT / ".venv-peer" / "bin" / "python"


def quix_peer(values: dict[str, str], count: int, workdir: Path, job: str = "full",
              run: str = "") -> float | None:
    """Seconds for a quix-streams peer over ``count`` input events, in its own virtualenv;
    None when that is not installed (make bench-peer). ``job``: full, the CX job over the
    three input topics (bench/peer/quix_cx.py); simple, the feedback-only job
    (bench/peer/quix_simple.py), ``count`` being the answers on the feedback topic.
    ``run``: a name that makes its consumer group a new one, to read them all again."""
    if not PEER_PYTHON.exists():
        console.print(f"quix-streams peer not measured: {PEER_PYTHON} is missing "
                      "(make bench-peer installs it)")
        return None
    script = {"full": "quix_cx.py", "simple": "quix_simple.py"}[job]
    inputs = ["--feedback", values["topic_feedback"]]
    if job == "full":
        inputs += ["--customers", values["topic_customers"],
                   "--interactions", values["topic_interactions"]]
    result = subprocess.run(
        [str(PEER_PYTHON), str(ROOT / "bench" / "peer" / script),
         "--bootstrap", values["bootstrap_servers"], "--count", str(count), *inputs,
         "--state-dir", str(workdir / f"quix-{job}"), "--group", f"bench-quix-{job}{run}"],
        cwd=ROOT, capture_output=True, text=True, timeout=3600, check=False)
    found = [line for line in result.stdout.splitlines() if line.startswith('{"seconds"')]
    if result.returncode != 0 or not found:
        raise RuntimeError(f"quix-streams {job} peer failed:\n"
                           f"{(result.stdout + result.stderr)[-3000:]}")
    figures = json.loads(found[-1])
    if figures["processed"] < count:
        raise RuntimeError(f"quix-streams {job} peer processed {figures['processed']} "
                           f"of {count}")
    return float(figures["seconds"])


def full_pipeline(worker: WorkerProcess, count: int) -> float:
    """Seconds from the first consumed event to the last, polling /metrics every 50 ms."""
    from cxstream.cli.scrape import total

    first = 0.0
    while True:
        try:
            consumed = total(worker.metrics(), "cxstream_events_consumed_total")
        except Exception:
            consumed = 0
        now = time.monotonic()
        if consumed and not first:
            first = now
        if consumed >= count:
            return now - first
        worker.check_running()
        time.sleep(0.05)


def wait_until_idle(worker: WorkerProcess, quiet_seconds: float = 2.0) -> None:
    """Until the worker's folded-event count has not moved for ``quiet_seconds``."""
    from cxstream.cli.scrape import total

    last, since = -1.0, time.monotonic()
    while time.monotonic() - since < quiet_seconds:
        worker.check_running()  # a worker that died says so, instead of a refused scrape
        folded = total(worker.metrics(), "cxstream_events_folded_total")
        if folded != last:
            last, since = folded, time.monotonic()
        time.sleep(0.2)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


PROBE_EVERY = 20  # one latency probe among this many messages of simulated traffic


WARM_UP_SECONDS = 3.0  # traffic at the same rate before the first probe


async def latency(settings: Settings, rate: float, seconds: float,
                  background: list[SimRecord]) -> list[float]:
    """Simulated traffic at ``rate``/s for WARM_UP_SECONDS + ``seconds``; after the warm-up
    one message in PROBE_EVERY is a probe instead, a detractor answer from a new customer
    (each raises one alert). Returns the produce-to-alert latencies of the probes."""
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    consumer = AIOKafkaConsumer(settings.topic_alerts, **aiokafka_options(settings),
                                group_id=None, auto_offset_reset="latest")
    producer = AIOKafkaProducer(**aiokafka_options(settings), acks="all", linger_ms=0)
    await consumer.start()
    await producer.start()
    await consumer.seek_to_end()
    warm_up = int(rate * WARM_UP_SECONDS)
    total_sent = warm_up + int(rate * seconds)
    topics = {"customers": settings.topic_customers,
              "interactions": settings.topic_interactions, "feedback": settings.topic_feedback}

    async def collect() -> None:
        async for message in consumer:
            alert = json.loads(message.value)
            customer = alert.get("customer_id") or ""
            if customer in sent_at and alert["occurrences"] == 1:
                latencies.append(message.timestamp / 1000 - sent_at.pop(customer))

    collector = asyncio.create_task(collect())
    try:
        began = time.monotonic()
        for n in range(total_sent):
            delay = began + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if n >= warm_up and (n % PROBE_EVERY == 0 or not background):
                customer = f"lat-{rate:.0f}-{n}"  # new customers in each run
                sent_at[customer] = time.time()
                await producer.send(settings.topic_feedback, key=customer.encode(),
                                    value=to_bytes(feedback(
                                        event_id=customer, customer_id=customer, score=3,
                                        occurred_at=datetime.now(UTC).isoformat())))
            else:
                record = background[n % len(background)]
                await producer.send(topics[record.kind], key=record.key, value=record.value)
        await producer.flush()
        deadline = time.monotonic() + 30
        while sent_at and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
    finally:
        collector.cancel()
        await producer.stop()
        await consumer.stop()
    if sent_at:
        raise RuntimeError(f"{len(sent_at)} detractors raised no alert")
    return latencies


async def probe_alert(settings: Settings, customer: str, began: float,
                      timeout: float = 3600) -> float:
    """Send a detractor answer of a new customer; seconds from ``began`` (monotonic) until
    its alert is on the alerts topic: the worker is serving."""
    consumer = AIOKafkaConsumer(settings.topic_alerts, **aiokafka_options(settings),
                                group_id=None, auto_offset_reset="latest")
    producer = AIOKafkaProducer(**aiokafka_options(settings), acks="all")
    await consumer.start()
    await producer.start()
    try:
        await consumer.seek_to_end()
        await producer.send_and_wait(settings.topic_feedback, key=customer.encode(),
                                     value=to_bytes(feedback(
                                         event_id=f"{customer}-probe", customer_id=customer,
                                         score=2, occurred_at=datetime.now(UTC).isoformat())))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = await consumer.getmany(timeout_ms=200)
            for messages in found.values():
                for message in messages:
                    if json.loads(message.value).get("customer_id") == customer:
                        return time.monotonic() - began
        raise RuntimeError(f"no alert for {customer} within {timeout:.0f} s")
    finally:
        await producer.stop()
        await consumer.stop()


def profiles(customers: int) -> list[SimRecord]:
    return [SimRecord(0.0, "customers", f"r-{n:08d}".encode(), to_bytes(
        {"customer_id": f"r-{n:08d}", "segment": ("smb", "consumer", "enterprise")[n % 3],
         "value": float(n % 9973), "updated_at": "2026-11-01T00:00:00+00:00"}))
        for n in range(customers)]


def grown_events(customers: int, seed: int = 11) -> list[SimRecord]:
    """A profile and on average 7 events (interactions and answers) for each of
    ``customers`` (grown states): the simulator's traffic over the last whole day, so that
    its daily rhythm averages out whatever the hour of the run."""
    day = 86_400
    config = SimConfig(customers=customers, rate=customers * 7 / day, duration=day,
                       history_days=0, malformed_share=0, incidents=False, seed=seed)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=day)
    return list(simulate(config, start).records())


def recovery(values: dict[str, str], customers: int, workdir: Path) -> dict[str, float]:
    """Fill a worker with ``customers`` profiles; restart it on its own data (RocksDB)
    after a clean stop, and again after a SIGKILL, then start one on an empty data
    directory (the changelog alone): the seconds from each start until a new detractor's
    alert is out, and the memory held after the clean restart and the fresh start."""
    # a static member, as the shipped StatefulSet makes each worker: the same id after a
    # crash, and for the start on an empty directory (the same worker, its disk lost)
    run = {**values, **topics_for("benchrec"), "app_id": "bench-recovery",
           "group_instance_id": "bench-recovery-0",
           "data_dir": str(workdir / "recovery"), "web_port": str(free_port())}
    settings = load_settings({}, **run)
    asyncio.run(ensure_topics(settings))
    asyncio.run(send_records(settings, profiles(customers), speed=None))
    worker = WorkerProcess(base_env(**run), workdir / "recovery.log", settings.web_port).start()
    figures: dict[str, float] = {}
    try:
        worker.wait_for("cxstream_events_consumed_total", customers, timeout=7200)
        wait_until_idle(worker)
        asyncio.run(probe_alert(settings, "probe-before", time.monotonic()))
        worker.stop()
        began = time.monotonic()
        worker.start()
        figures["restart"] = asyncio.run(probe_alert(settings, "probe-restart", began))
        figures["restart_rss"] = rss_bytes(worker.process.pid) if worker.process else 0
        worker.stop(signal.SIGKILL)  # a crash: no saved value index
        began = time.monotonic()
        worker.start()
        figures["crash"] = asyncio.run(probe_alert(settings, "probe-crash", began))
        worker.stop()
        fresh = {**run, "data_dir": str(workdir / "recovery-fresh")}
        worker = WorkerProcess(base_env(**fresh), workdir / "recovery-fresh.log",
                               settings.web_port)
        began = time.monotonic()
        worker.start()
        figures["fresh"] = asyncio.run(probe_alert(settings, "probe-fresh", began))
        figures["fresh_rss"] = rss_bytes(worker.process.pid) if worker.process else 0
    finally:
        worker.stop()
    return figures


def grown_rss(values: dict[str, str], customers: int, workdir: Path,
              samples: list[tuple[float, int]] | None = None) -> tuple[float, int]:
    """RSS of a worker once it has folded grown states of ``customers`` customers; with
    ``samples``, also (events consumed, RSS) every GROWN_SAMPLE_SECONDS on the way."""
    from cxstream.cli.scrape import total

    run = {**values, **topics_for("benchgrown"), "app_id": "bench-grown",
           "data_dir": str(workdir / "grown"), "web_port": str(free_port())}
    settings = load_settings({}, **run)
    asyncio.run(ensure_topics(settings))
    events = grown_events(customers)
    count = len(events)
    asyncio.run(send_records(settings, events, speed=None))
    del events
    worker = WorkerProcess(base_env(**run), workdir / "grown.log", settings.web_port).start()
    try:
        if samples is None:
            worker.wait_for("cxstream_events_consumed_total", count, timeout=4 * 3600)
        else:
            worker.wait_for("cxstream_events_consumed_total", 0, timeout=600)
            deadline = time.monotonic() + 4 * 3600
            consumed = 0.0
            while consumed < count:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{consumed:,.0f} of {count:,} events consumed")
                time.sleep(GROWN_SAMPLE_SECONDS)
                worker.check_running()
                try:  # a busy worker may answer a scrape late: sample at the next turn
                    consumed = total(worker.metrics(), "cxstream_events_consumed_total")
                except httpx.HTTPError as error:
                    console.print(f"no sample this time ({error!r})")
                    continue
                assert worker.process is not None
                samples.append((consumed, rss_bytes(worker.process.pid)))
                console.print(f"{consumed:,.0f} / {count:,} events consumed, RSS "
                              f"{samples[-1][1] / 2**30:.2f} GiB")
        wait_until_idle(worker)
        return count, rss_bytes(worker.process.pid) if worker.process else 0
    finally:
        worker.stop()


GROWN_SAMPLE_SECONDS = 60.0


def grown_only(values: dict[str, str], customers: int, work: Path) -> int:
    """The memory row alone, with the worker's RSS sampled while it folds."""
    samples: list[tuple[float, int]] = []
    count, rss = grown_rss(values, customers, work, samples)
    figures = Table("events consumed", "worker RSS")
    for consumed, sampled in samples[::max(1, len(samples) // 12)]:
        figures.add_row(f"{consumed:,.0f}", f"{sampled / 2**30:.2f} GiB")
    figures.add_row(f"{count:,} (all, {customers:,} grown customers, idle)",
                    f"{rss / 2**30:.2f} GiB")
    console.print(figures)
    return 0


def two_workers(values: dict[str, str], count: int, workdir: Path) -> float:
    """Seconds for two workers of one group to consume ``count`` events (4 partitions)."""
    from cxstream.cli.scrape import total

    run = {**values, "app_id": "bench-two"}
    workers = [WorkerProcess(base_env(**run, data_dir=str(workdir / f"two-{n}"),
                                      web_port=str(port)), workdir / f"two-{n}.log", port)
               for n, port in enumerate((free_port(), free_port()))]
    for worker in workers:
        worker.start()
    try:
        first = 0.0
        while True:
            consumed = 0.0
            for worker in workers:
                worker.check_running()
                try:
                    consumed += total(worker.metrics(), "cxstream_events_consumed_total")
                except Exception:
                    pass
            now = time.monotonic()
            if consumed and not first:
                first = now
            if consumed >= count:
                return now - first
            time.sleep(0.05)
    finally:
        for worker in workers:
            worker.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--latency-seconds", type=float, default=30)
    parser.add_argument("--recovery-customers", type=int, default=1_000_000)
    parser.add_argument("--grown-customers", type=int, default=100_000)
    parser.add_argument("--keep-logs", type=Path, default=None,
                        help="copy the workers' logs into this folder at the end (the "
                             "broker's folder, where they are written, is removed)")
    parser.add_argument("--only", choices=["all", "recovery", "grown", "in-process", "faust",
                                           "peers", "group-answers", "gc"],
                        default="all",
                        help="recovery: only the restart and recovery rows (they need no "
                             "other row to compare with); grown: only the memory of a "
                             "worker holding --grown-customers grown customers, sampled "
                             "while it folds them; in-process: only cxstream's own work, "
                             "without a broker (what bench/profile_worker.py samples); "
                             "faust: only Faust's batched iteration without and with the "
                             "worker's monitor and fixes, twice each, alternating; peers: "
                             "only the naive Faust agent and the quix-streams peers, twice "
                             "each, alternating; group-answers: the in-process own work "
                             "without and with the groups' recent answers kept, twice "
                             "each, alternating; gc: the in-process own work with "
                             "Python's collector thresholds and with a worker's, twice "
                             "each, alternating")
    args = parser.parse_args()
    if args.only == "in-process":
        return in_process_only(args)
    if args.only == "group-answers":
        return group_answers_cost(args)
    if args.only == "gc":
        return gc_cost(args)
    with local_broker.scratch_broker("cxstream-bench-", heap="2g") as (bootstrap, work):
        try:
            return run(args, bootstrap, work)
        finally:
            if args.keep_logs is not None:
                args.keep_logs.mkdir(parents=True, exist_ok=True)
                for log in work.glob("*.log"):
                    shutil.copy(log, args.keep_logs / log.name)


RAW = "raw aiokafka consumer + pydantic"
REFERENCE = "0.3.0's own work alone (pydantic state and rules, in-process)"
ALONE = "cxstream's own work alone (in-process: no Kafka, no Faust)"
STEADY = "cxstream's own work alone, steady state (second pass, grown states)"
BARE = "Faust bare iteration, one by one (no work)"
BATCHED = "Faust bare iteration over take_events batches (no work)"
LEAN = "the same with the worker's monitor (streams.kafka.lean_monitor)"
FIXED = "the same with the worker's monitor and its fixes to Faust (faust_compat)"
NAIVE = "naive Faust agent (1 table write per event)"
PEER = "quix-streams peer (the CX job, idiomatic: bench/peer/quix_cx.py)"
SIMPLE_PEER = ("quix-streams peer, simple job (feedback only: bench/peer/quix_simple.py; "
               "events/s of answers)")
FULL = "cxstream full pipeline, 1 worker"
TWO = "cxstream full pipeline, 2 workers"


def run(args: argparse.Namespace, bootstrap: str, work: Path) -> int:
    values = {"bootstrap_servers": bootstrap, "partitions": "4", **topics_for("bench"),
              "api_token": "bench-token-of-32-characters-or-more",
              "allowed_lateness_seconds": str(30 * 86_400)}
    settings = load_settings({}, **values)
    asyncio.run(ensure_topics(settings))
    if args.only == "recovery":
        restarts = recovery(values, args.recovery_customers, work)
        figures = Table("figure", "value", "goal")
        recovery_rows(figures, restarts, args.recovery_customers)
        console.print(figures)
        return 0
    if args.only == "grown":
        return grown_only(values, args.grown_customers, work)
    if args.only == "faust":
        return faust_only(values, args, work)
    if args.only == "peers":
        return peers_only(values, args, work)
    records = bench_records(args.events, args.customers)
    second = [record for record in bench_records(args.events, args.customers, seed=6,
                                                 later=True)
              if record.kind != "customers"]  # the next events of the same customers
    count = len(records)
    answers = sum(1 for record in records if record.kind == "feedback")
    began = time.monotonic()
    asyncio.run(send_records(settings, records, speed=None))
    produce_seconds = time.monotonic() - began
    console.print(f"{count} events produced in {produce_seconds:.1f} s "
                  f"({count / produce_seconds:,.0f}/s)")
    # in-process first, on an idle machine
    reference = reference_alone(settings, records)
    (alone, alone_bytes, alerts, alone_stages), (steady, steady_bytes, _, steady_stages) = \
        fold_alone(settings, [records, second])
    console.print(stage_table([("first pass", count, alone_stages),
                               ("steady state", len(second), steady_stages)]))
    console.print(f"the mix: {alerts:,} alerts raised by the {count:,} events "
                  f"({1000 * alerts / count:.1f} per 1,000 events)")
    seconds = {RAW: asyncio.run(raw_consumer(settings, count)), REFERENCE: reference[0],
               ALONE: alone, STEADY: steady * count / len(second)}
    changelog = {REFERENCE: reference[1] / count, ALONE: alone_bytes / count,
                 STEADY: steady_bytes / len(second)}
    del records
    for name, mode in ((BARE, "bare"), (BATCHED, "batched"), (LEAN, "batched-lean"),
                       (FIXED, "batched-fixed"), (NAIVE, "naive")):
        seconds[name] = faust_baseline(mode, values, count, work)
        console.print(f"{mode} Faust done")
    peer = quix_peer(values, count, work)
    if peer is not None:
        seconds[PEER] = peer
        simple = quix_peer(values, answers, work, "simple")
        assert simple is not None
        seconds[SIMPLE_PEER] = simple * count / answers  # as a rate of answers
        console.print("quix-streams peers done")

    idle_values = {**values, **topics_for("benchidle"), "app_id": "bench-idle",
                   "data_dir": str(work / "idle"), "web_port": str(free_port())}
    asyncio.run(ensure_topics(load_settings({}, **idle_values)))
    idle = WorkerProcess(base_env(**idle_values), work / "idle.log",
                         int(idle_values["web_port"])).start()
    idle.wait_for("cxstream_partitions_assigned", 4, timeout=120)
    time.sleep(3)
    idle_rss = rss_bytes(idle.process.pid) if idle.process else 0
    idle.stop()

    full_values = {**values, "app_id": "bench-full", "data_dir": str(work / "full"),
                   "web_port": str(free_port())}
    worker = WorkerProcess(base_env(**full_values), work / "full.log",
                           int(full_values["web_port"])).start()
    try:
        seconds[FULL] = full_pipeline(worker, count)
        console.print("full pipeline done")
        wait_until_idle(worker)  # the last batches taken are still being folded
        full_rss = rss_bytes(worker.process.pid) if worker.process else 0
        full_rate = count / seconds[FULL]
        full_settings = load_settings({}, **full_values)
        half = asyncio.run(latency(full_settings, full_rate / 2, args.latency_seconds, second))
        fixed = asyncio.run(latency(full_settings, 1_000, args.latency_seconds, second))
        console.print("latency done")
    finally:
        worker.stop()
    seconds[TWO] = two_workers(values, count, work)
    console.print("two workers done")
    restarts = recovery(values, args.recovery_customers, work)
    console.print("recovery done")
    grown = grown_rss(values, args.grown_customers, work)
    console.print("grown states done")
    report(count, seconds, changelog, {"half": (full_rate / 2, half), "fixed": (1_000, fixed)},
           idle_rss, full_rss, restarts, args.recovery_customers, grown,
           args.grown_customers)
    return 0


def faust_only(values: dict[str, str], args: argparse.Namespace, work: Path) -> int:
    """Faust's batched iteration without and with the worker's monitor and fixes, twice
    each, alternating, on the same events."""
    settings = load_settings({}, **values)
    records = bench_records(args.events, args.customers)
    asyncio.run(send_records(settings, records, speed=None))
    count = len(records)
    seconds: dict[str, list[float]] = {BATCHED: [], LEAN: [], FIXED: []}
    for run in range(2):
        (work / f"r{run}").mkdir()
        for name, mode in ((BATCHED, "batched"), (LEAN, "batched-lean"),
                           (FIXED, "batched-fixed")):
            seconds[name].append(faust_baseline(mode, values, count, work / f"r{run}",
                                                f"-{run}"))
    table = Table("what", "events/s, two runs", "best vs Faust's",
                  title=f"{count:,} events, Faust's batched iteration")
    best = {name: count / min(runs) for name, runs in seconds.items()}
    for name, runs in seconds.items():
        table.add_row(name, " / ".join(f"{count / run:,.0f}" for run in runs),
                      f"{best[name] / best[BATCHED]:.2f}x")
    console.print(table)
    return 0


def peers_only(values: dict[str, str], args: argparse.Namespace, work: Path) -> int:
    """The naive Faust agent and both quix-streams peers on the same events, each run
    twice, alternating (the peers' ratios without the rest of the bench)."""
    settings = load_settings({}, **values)
    records = bench_records(args.events, args.customers)
    answers = sum(1 for record in records if record.kind == "feedback")
    asyncio.run(send_records(settings, records, speed=None))
    count = len(records)
    rates: dict[str, list[float]] = {NAIVE: [], PEER: [], SIMPLE_PEER: []}
    for run in range(2):
        (work / f"r{run}").mkdir()
        rates[NAIVE].append(count / faust_baseline("naive", values, count, work / f"r{run}",
                                                   f"-{run}"))
        for name, job, events in ((PEER, "full", count), (SIMPLE_PEER, "simple", answers)):
            seconds = quix_peer(values, events, work / f"r{run}", job, f"-{run}")
            if seconds is None:
                return 1
            rates[name].append(events / seconds)
    table = Table("what", "events/s, two runs", "best vs naive Faust",
                  title=f"{count:,} events ({answers:,} answers), the peers")
    best = {name: max(runs) for name, runs in rates.items()}
    for name, runs in rates.items():
        table.add_row(name, " / ".join(f"{rate:,.0f}" for rate in runs),
                      f"{best[name] / best[NAIVE]:.2f}x")
    console.print(table)
    return 0


def report(count: int, seconds: dict[str, float], changelog: dict[str, float],
           latencies: dict[str, tuple[float, list[float]]], idle_rss: int, full_rss: int,
           restarts: dict[str, float], recovery_customers: int, grown: tuple[float, int],
           grown_customers: int) -> None:
    rates = {name: count / value for name, value in seconds.items()}
    naive, full = rates[NAIVE], rates[FULL]
    table = Table("what", "events/s", "µs/event", "vs naive", "changelog bytes/event",
                  title=f"{count:,} events, one broker and the workers on this machine "
                        f"({os.cpu_count()} cores, shared with the broker)")
    for name, rate in rates.items():
        table.add_row(name, f"{rate:,.0f}", f"{1e6 / rate:.1f}", f"{rate / naive:.2f}",
                      f"{changelog[name]:,.0f}" if name in changelog else "")
    console.print(table)
    other = Table("figure", "value", "goal")
    other.add_row("own work, in-process", f"{1e6 / rates[ALONE]:.1f} µs/event "
                  f"({rates[ALONE] / rates[REFERENCE]:.1f}x 0.3.0's)", "<= 25 µs")
    other.add_row("own work, in-process, steady state", f"{1e6 / rates[STEADY]:.1f} µs/event",
                  "<= 30 µs")
    other.add_row("changelog bytes per event, 0.3.0 / now",
                  f"{changelog[REFERENCE] / changelog[ALONE]:.1f}x", ">= 4x")
    other.add_row("full pipeline / naive Faust", f"{full / naive:.2f}x", ">= 2x")
    other.add_row("full pipeline / Faust's bare batched iteration",
                  f"{full / rates[BATCHED]:.0%}", ">= 60%")
    other.add_row("Faust's batched iteration, the worker's monitor / Faust's",
                  f"{rates[LEAN] / rates[BATCHED]:.2f}x", "")
    other.add_row("Faust's batched iteration, the worker's monitor and fixes / Faust's",
                  f"{rates[FIXED] / rates[BATCHED]:.2f}x", ">= 1.5x")
    other.add_row("full pipeline / quix-streams peer",
                  f"{full / rates[PEER]:.2f}x" if PEER in rates else "not measured",
                  ">= 1.5x")
    other.add_row("full pipeline / quix-streams simple-job peer (events/s of all inputs "
                  "vs of answers)",
                  f"{full / rates[SIMPLE_PEER]:.2f}x" if SIMPLE_PEER in rates
                  else "not measured", ">= 0.5x")
    other.add_row("2 workers / 1 worker (4 partitions)", f"{rates[TWO] / full:.2f}x", "")
    for name, goal in (("half", "< 100 ms"), ("fixed", "< 50 ms")):
        rate, values = latencies[name]
        quantiles = statistics.quantiles(values, n=100)
        other.add_row(f"produce-to-alert at {rate:,.0f} events/s: p50 / p99 "
                      f"({len(values)} alerts)",
                      f"{quantiles[49] * 1000:.0f} / {quantiles[98] * 1000:.0f} ms", goal)
    recovery_rows(other, restarts, recovery_customers)
    other.add_row("idle worker RSS", f"{idle_rss / 2**30:.2f} GiB", "")
    other.add_row(f"worker RSS holding {grown_customers:,} grown customers "
                  f"({grown[0]:,.0f} events)", f"{grown[1] / 2**30:.2f} GiB",
                  "< 1.5 GiB at 1,000,000")
    other.add_row(f"worker RSS after the 1-worker run ({count:,} events)",
                  f"{full_rss / 2**30:.2f} GiB", "")
    console.print(other)


def in_process_only(args: argparse.Namespace) -> int:
    """cxstream's own work on both passes, with no broker at all."""
    settings = load_settings({}, partitions="4", **topics_for("bench"),
                             allowed_lateness_seconds=str(30 * 86_400))
    records = bench_records(args.events, args.customers)
    second = [record for record in bench_records(args.events, args.customers, seed=6,
                                                 later=True) if record.kind != "customers"]
    by_stage = []
    for name, (seconds, written, alerts, stages), done, short in zip(
            (ALONE, STEADY), fold_alone(settings, [records, second]), (records, second),
            ("first pass", "steady state"), strict=True):
        console.print(f"{name}: {len(done):,} events, {1e6 * seconds / len(done):.1f} "
                      f"µs/event, {written / len(done):,.0f} changelog bytes/event, "
                      f"{alerts:,} alerts raised ({1000 * alerts / len(done):.1f} per "
                      f"1,000 events)")
        by_stage.append((short, len(done), stages))
    console.print(stage_table(by_stage))
    return 0


def alternating(args: argparse.Namespace, variants: dict[str, tuple[dict[str, str],
                                                                   tuple[int, int, int] | None]]
                ) -> dict[str, tuple[float, float]]:
    """The in-process own work (both passes) of each variant (name -> its settings and
    collector thresholds), twice each, alternating so that the machine's drift falls on
    all; printed per run with the stages, returned as the best of two (µs/event,
    changelog bytes/event)."""
    records = bench_records(args.events, args.customers)
    second = [record for record in bench_records(args.events, args.customers, seed=6,
                                                 later=True) if record.kind != "customers"]
    events = len(records) + len(second)
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    columns = []
    for name in [*variants, *variants]:
        values, thresholds = variants[name]
        settings = load_settings({}, partitions="4", **topics_for("bench"),
                                 allowed_lateness_seconds=str(30 * 86_400), **values)
        passes = fold_alone(settings, [records, second], thresholds=thresholds)
        seconds = sum(result[0] for result in passes)
        written = sum(result[1] for result in passes)
        runs[name].append((1e6 * seconds / events, written / events))
        columns.append((name, events, {stage: sum(result[3][stage] for result in passes)
                                       for stage in OWN_WORK_STAGES}))
        console.print(f"{name}: {1e6 * seconds / events:.1f} µs/event, "
                      f"{written / events:,.0f} changelog bytes/event")
    console.print(stage_table(columns))
    return {name: (min(cost for cost, _ in found), found[0][1])
            for name, found in runs.items()}


def group_answers_cost(args: argparse.Namespace) -> int:
    """The cost of keeping each group's recent answers (CXSTREAM_GROUP_ANSWERS_KEPT):
    the in-process own work without (0) and with them (the shipped 20)."""
    best = alternating(args, {"kept 0": ({"group_answers_kept": "0"}, GC_THRESHOLDS),
                              "kept 20": ({"group_answers_kept": "20"}, GC_THRESHOLDS)})
    (cost0, size0), (cost20, size20) = best["kept 0"], best["kept 20"]
    console.print(f"best of two: {cost0:.1f} -> {cost20:.1f} µs/event (x{cost20 / cost0:.3f}); "
                  f"changelog {size0:,.0f} -> {size20:,.0f} bytes/event "
                  f"(x{size20 / size0:.3f})")
    return 0


def gc_cost(args: argparse.Namespace) -> int:
    """The in-process own work with Python's collector thresholds and with a worker's
    (streams.worker.GC_THRESHOLDS), what every in-process figure ran with before and
    after commit 06f282d."""
    python = f"Python's {gc.get_threshold()}"
    worker = f"a worker's {GC_THRESHOLDS}"
    best = alternating(args, {python: ({}, None), worker: ({}, GC_THRESHOLDS)})
    console.print(f"best of two: {best[python][0]:.1f} µs/event with {python}, "
                  f"{best[worker][0]:.1f} with {worker} "
                  f"(x{best[worker][0] / best[python][0]:.3f})")
    return 0


def recovery_rows(table: Table, restarts: dict[str, float], customers: int) -> None:
    table.add_row(f"restart to serving (first new alert), {customers:,} customers "
                  "on local state", f"{restarts['restart']:.1f} s", "< 5 s")
    table.add_row(f"restart to serving after a crash (SIGKILL), {customers:,} customers "
                  "on local state", f"{restarts['crash']:.1f} s", "< 10 s")
    table.add_row(f"start to serving from the changelog alone, {customers:,} "
                  "customers", f"{restarts['fresh']:.1f} s", "< 30 s at 1,000,000")
    table.add_row(f"worker RSS holding {customers:,} customers (profiles), after "
                  "the restart / from the changelog",
                  f"{restarts['restart_rss'] / 2**30:.2f} / "
                  f"{restarts['fresh_rss'] / 2**30:.2f} GiB", "")


if __name__ == "__main__":
    sys.exit(main())
