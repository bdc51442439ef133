"""The main job: a local broker, a worker, sample events, and what became of them."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table

from cxstream.io import produce, read_topic
from cxstream.kafka import local_broker
from cxstream.kafka.clients import ensure_topics
from cxstream.processes import WorkerProcess
from cxstream.samples import sample_records
from cxstream.scrape import Samples, total
from cxstream.settings import Settings
from streams.deadletter import read_headers

WAIT_SECONDS = 120.0


def run_demo(settings: Settings, console: Console, keep_broker: bool = True) -> int:
    """Run the demo; return the process exit code."""
    started_broker = _ensure_broker(settings, console)
    worker = WorkerProcess(_worker_env(), settings.data_dir.parent / "demo-worker.log",
                           settings.web_port)
    try:
        asyncio.run(ensure_topics(settings))
        worker.start()
        console.print(f"worker started (pid {worker.process.pid if worker.process else '?'}); "
                      f"metrics at http://{settings.web_host}:{settings.web_port}/metrics")
        baseline = _scrape_when_up(worker)
        samples = sample_records(settings, datetime.now(UTC))
        asyncio.run(produce(settings, samples.records))
        console.print(f"sent {samples.valid} valid and {samples.invalid} invalid inputs")
        sent = total(baseline, "cxstream_events_consumed_total") + len(samples.records)
        worker.wait_for("cxstream_events_consumed_total", sent, timeout=WAIT_SECONDS)
        _show_counts(console, settings, worker.metrics())
        _show_deadletters(console, settings, samples.invalid)
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130
    finally:
        if worker.process is not None:
            worker.stop()
        if started_broker and not keep_broker:
            local_broker.stop(settings)
    return 0


def _ensure_broker(settings: Settings, console: Console) -> bool:
    if asyncio.run(local_broker.is_serving(settings.bootstrap_servers)):
        console.print(f"using the Kafka broker at {settings.bootstrap_servers}")
        return False
    if not settings.uses_local_broker:
        raise SystemExit(f"cannot reach Kafka at {settings.bootstrap_servers}")
    console.print(f"starting a local Apache Kafka {settings.kafka_version} broker "
                  "(the first run downloads its jars)...")
    state = local_broker.start(settings)
    console.print(f"broker serving on {state.bootstrap_servers} (log: {state.log_file})")
    return True


def _worker_env() -> dict[str, str]:
    # The worker reads the same CXSTREAM_* settings as this process.
    return dict(os.environ)


def _scrape_when_up(worker: WorkerProcess) -> Samples:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        try:
            return worker.metrics()
        except Exception:
            if time.monotonic() > deadline or not worker.running:
                raise
            time.sleep(0.3)


def _show_counts(console: Console, settings: Settings, samples: Samples) -> None:
    table = Table("topic", "consumed", "accepted", "dead-lettered",
                  title="What the worker did with the inputs")
    for topic in settings.input_topics:
        table.add_row(topic, *(
            f"{total(samples, name, topic=topic):.0f}"
            for name in ("cxstream_events_consumed_total", "cxstream_events_accepted_total",
                         "cxstream_events_deadlettered_total")
        ))
    console.print(table)


def _show_deadletters(console: Console, settings: Settings, last: int) -> None:
    records = sorted(asyncio.run(read_topic(settings, settings.topic_deadletter)),
                     key=lambda record: read_headers(list(record.headers)).get("failed_at", ""))
    table = Table("source", "class", "reason", title=f"{settings.topic_deadletter} (latest)")
    for record in records[-last:]:
        meta = read_headers(list(record.headers))
        table.add_row(f"{meta['source.topic']}[{meta['source.partition']}]"
                      f"@{meta['source.offset']}", meta["error.class"], meta["error.reason"])
    console.print(table)
