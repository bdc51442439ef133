"""The main job: a broker, a worker and the simulator, with alerts and scores shown live.

Each run is independent: its topics are named ``<run>.cx.*`` and its worker group
``cxstream-<run>``, so a second run on the same broker starts from nothing and its
scripted incidents raise their alerts again. The run's rules are the default rules with
two changes for a short run on a laptop: the recurring-issue threshold is scaled to the
run's traffic (a fixed 5 customers an hour would fire on every busy touchpoint), and
segment drops are evaluated every 5 s.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from rich.console import Console
from rich.live import Live
from rich.text import Text

from cxstream.cli.demo_board import (
    DemoRun,
    Scoreboard,
    alert_line,
    metrics_of,
    print_summary,
    survey_decisions,
)
from cxstream.cli.demo_setup import (
    DEMO_AGENT,
    DEMO_USER,
    as_strings,
    demo_settings,
    train_demo_model,
    worker_env,
    write_rules,
    write_users,
)
from cxstream.cli.kafka import local_broker
from cxstream.cli.processes import WorkerExited, WorkerProcess
from cxstream.cli.scrape import total
from cxstream.cli.simulator.generator import SimConfig, SimRecord, simulate
from cxstream.cli.simulator.sending import send_records
from cxstream.streams.kafka.clients import aiokafka_options
from cxstream.streams.kafka.topic_admin import ensure_topics
from cxstream.streams.settings import Settings, load_settings

START_TIMEOUT = 120.0
#: the demo agent acknowledges one alert in this many, as a support team would
ACK_EVERY = 3
SETTLE_TIMEOUT = 60.0  # after sending: time for the last alerts (segment drops, ...)


@dataclass
class DemoOptions:
    config: SimConfig = field(default_factory=SimConfig)
    keep_broker: bool = False
    refresh_seconds: float = 3.0
    summary_file: Path | None = None


def run_demo(settings: Settings, console: Console, options: DemoOptions) -> int:
    """Run the demo; return the process exit code (0: every incident caught)."""
    signal.signal(signal.SIGTERM, _interrupt)  # stop cleanly on SIGTERM as on Ctrl-C
    started_broker = _ensure_broker(settings, console)
    run_id = datetime.now(UTC).strftime("demo%Y%m%d%H%M%S") + secrets.token_hex(2)
    demo = demo_settings(settings, run_id)
    start = datetime.now(UTC).replace(microsecond=0)
    simulation = simulate(options.config, start)
    records = list(simulation.records())
    rules_file = write_rules(demo, records, options.config.duration)
    users_file, tokens = write_users(demo)
    demo = load_settings({}, **{**as_strings(demo), "rules_file": str(rules_file),
                                "users_file": str(users_file)})
    model = _train_model(demo, options.config, start, console)
    if model is not None:
        demo = load_settings({}, **{**as_strings(demo), "model_file": str(model[0])})
    worker = WorkerProcess(worker_env(demo), demo.data_dir / "worker.log", demo.web_port)
    run = DemoRun(simulation.expectations, run_id, demo, model=model and model[1],
                  malformed_sent=sum(1 for r in records if r.malformed),
                  malformed_kinds=Counter(r.malformed for r in records if r.malformed),
                  console_url=f"http://{demo.web_host}:{demo.web_port}/console",
                  console_token=tokens[DEMO_USER])
    try:
        asyncio.run(ensure_topics(demo))
        worker.start()
        run.worker_pid = worker.process.pid if worker.process else None
        console.print(f"run [bold]{run_id}[/]: topics {run_id}.cx.*, worker log "
                      f"{worker.log_path}")
        _wait_until_ready(worker, demo, console)
        _where_to_look(console, demo, run)
        asyncio.run(_live(console, demo, records, worker, run, options, tokens[DEMO_AGENT]))
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: stopping the worker"
                      + (" and the broker" if started_broker and not options.keep_broker
                         else "") + "[/]")
        return 130
    except WorkerExited as exc:
        console.print(f"[red]the worker stopped:[/] {exc}")
        return 1
    finally:
        if worker.process is not None:
            worker.stop()
        if started_broker and not options.keep_broker:
            local_broker.stop(settings)
    print_summary(console, run)
    if options.summary_file is not None:
        options.summary_file.write_text(json.dumps(run.summary(), indent=2))
    return 0 if run.succeeded() else 1


# -- set-up -------------------------------------------------------------------------------

def _train_model(settings: Settings, config: SimConfig, start: datetime, console: Console
                 ) -> tuple[Path, dict[str, Any]] | None:
    with console.status("training the prediction model on 60 simulated days"):
        trained = train_demo_model(settings, config, start)
    if trained is None:
        console.print("[yellow]no prediction model: scikit-learn is not installed "
                      "(pip install 'cxstream[model]')[/]")
        return None
    figures = trained[1]
    console.print(f"prediction model {figures['model_version']}: trained on "
                  f"{figures['answers']:,} simulated answers; on the latest fifth, AUC "
                  f"{figures['auc']:.3f}, Brier {figures['brier']:.3f}, calibration within "
                  f"{figures['largest_decile_gap'] * 100:.1f} points per decile "
                  "(docs/predictions.md)")
    return trained


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt

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


def _wait_until_ready(worker: WorkerProcess, settings: Settings, console: Console) -> None:
    with console.status("waiting for the worker to join the group..."):
        worker.wait_for("cxstream_partitions_assigned", settings.partitions,
                        timeout=START_TIMEOUT)


def _where_to_look(console: Console, settings: Settings, run: DemoRun) -> None:
    base = f"http://{settings.web_host}:{settings.web_port}"
    token = settings.api_token.get_secret_value() if settings.api_token else ""
    console.print(Text.assemble(
        ("where to look while it runs:\n", "bold"),
        f"  console  {run.console_url}  (sign in as {DEMO_USER} with the token "
        f"{run.console_token})\n",
        f"  metrics  {base}/metrics\n",
        f"  scores   curl -H 'Authorization: Bearer {token}' {base}/api/scores/segment\n",
        f"  customer curl -H 'Authorization: Bearer {token}' {base}/api/customers/c-00001\n",
        f"  alerts   topic {settings.topic_alerts}; dead letters {settings.topic_deadletter}"))


# -- the live part ------------------------------------------------------------------------

async def _live(console: Console, settings: Settings, records: list[SimRecord],
                worker: WorkerProcess, run: DemoRun, options: DemoOptions,
                agent_token: str) -> None:
    token = settings.api_token.get_secret_value() if settings.api_token else ""
    base = f"http://{settings.web_host}:{settings.web_port}"
    profiles = next((n for n, r in enumerate(records) if r.kind != "customers"), len(records))
    async with httpx.AsyncClient(base_url=base, timeout=10,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        board = Scoreboard()
        with Live(board.render(run, len(records)), console=console,
                  refresh_per_second=2, transient=False) as live:
            tail = asyncio.create_task(_tail_alerts(settings, run, live.console,
                                                    agent_token))
            refresh = asyncio.create_task(_refresh(client, board, run, live, options,
                                                   len(records), worker))

            async def profiles_read() -> None:
                while total(await metrics_of(client), "cxstream_events_folded_total",
                            kind="customer") < profiles:
                    worker.check_running()
                    await asyncio.sleep(0.5)

            try:
                stats = await send_records(settings, records, 1.0, profiles_read,
                                           lambda record: run.sent.update([record.kind]))
                await _settle(client, run, worker, stats.sent)
                run.finished = True
                samples = await metrics_of(client)
                for action in ("acknowledged", "escalated", "auto_resolved"):
                    run.lifecycle[action] = int(total(
                        samples, "cxstream_alert_lifecycle_changes_total", action=action))
                await board.update(client, run)
                live.update(board.render(run, len(records)))
                run.priorities = await _top_priorities(client)
            finally:
                refresh.cancel()
                tail.cancel()
                await asyncio.gather(refresh, tail, return_exceptions=True)


async def _settle(client: httpx.AsyncClient, run: DemoRun, worker: WorkerProcess,
                  sent: int) -> None:
    """Wait until every message is consumed, then for the incidents' alerts (bounded)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while time.monotonic() < deadline:
        worker.check_running()
        samples = await metrics_of(client)
        run.consumed = int(total(samples, "cxstream_events_consumed_total"))
        run.deadlettered = int(total(samples, "cxstream_events_deadlettered_total"))
        run.surveys = survey_decisions(samples)
        if run.consumed >= sent and all(run.caught().values()):
            return
        await asyncio.sleep(1)


async def _refresh(client: httpx.AsyncClient, board: Scoreboard, run: DemoRun, live: Live,
                   options: DemoOptions, planned: int, worker: WorkerProcess) -> None:
    while True:
        await asyncio.sleep(options.refresh_seconds)
        worker.check_running()
        try:
            await board.update(client, run)
        except httpx.HTTPError:
            continue  # the worker is busy or rebalancing: keep the last board
        live.update(board.render(run, planned))


async def _top_priorities(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    """The three issues to fix first, by revenue at stake (none if the worker cannot
    answer: the summary says so)."""
    try:
        response = await client.get("/api/priorities", params={"limit": "3"})
    except httpx.HTTPError:
        return []
    rows: list[dict[str, Any]] = response.json()["issues"] if response.status_code == 200 \
        else []
    return rows


async def _tail_alerts(settings: Settings, run: DemoRun, console: Console,
                       agent_token: str) -> None:
    """Print each new alert and follow-up; the demo agent acknowledges some alerts."""
    consumer = AIOKafkaConsumer(settings.topic_alerts, **aiokafka_options(settings),
                                group_id=None, auto_offset_reset="earliest")
    base = f"http://{settings.web_host}:{settings.web_port}"
    acking: set[asyncio.Task[None]] = set()
    await consumer.start()
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10, headers={
                "Authorization": f"Bearer {agent_token}"}) as agent:
            async for message in consumer:
                alert = json.loads(message.value)
                if alert.get("notice"):
                    console.print(alert_line(alert), highlight=False)
                    continue
                if alert["alert_id"] in run.alerts:
                    continue  # a later trigger folded into an alert already shown
                run.alerts[alert["alert_id"]] = alert
                console.print(alert_line(alert), highlight=False)
                if len(run.alerts) % ACK_EVERY == 0:
                    acking.add(task := asyncio.create_task(
                        _acknowledge(agent, alert["alert_id"])))
                    task.add_done_callback(acking.discard)
    finally:
        for task in acking:
            task.cancel()
        await consumer.stop()


async def _acknowledge(agent: httpx.AsyncClient, alert_id: str) -> None:
    """As a support agent would, a few seconds after the alert arrives."""
    await asyncio.sleep(3)
    for _ in range(5):  # the case may not be in the table yet
        try:
            response = await agent.post(f"/api/alerts/{alert_id}/ack", json={})
        except httpx.HTTPError:
            response = None
        if response is not None and response.status_code in (200, 409):
            return
        await asyncio.sleep(2)
