"""A soak run: a month of simulated traffic, at accelerated time, through one worker on
the local broker, while everything that goes wrong in production goes wrong at once.

- a month of history (``days`` x ``per_day`` events over ``customers`` customers, the
  usual malformed share), sent as fast as the worker takes it;
- one customer sends ``noisy_failures`` failed interactions within an hour (a shared
  account, a producer's retry loop);
- three webhook destinations: key-accounts is down (503) for the middle third of the run,
  smb-support answers 429 with Retry-After to every third post, the rest is healthy;
- a support team acknowledges and resolves ``resolve_share`` of the open alerts as they
  come;
- the worker is stopped every ``restart_every`` seconds, SIGTERM and SIGKILL in turn, and
  started again.

Every ``sample_every`` seconds it samples the worker's RSS, the /healthz answer time (the
event loop's lag, with the HTTP round trip), the /api/alerts and console inbox answer
times, and the consumer lag; the deadline check's time comes from the worker's own
histogram. At the end it compares, as multisets, the inputs applied, the dead letters,
the alert ids on ``cx.alerts`` and at the destinations, the resolutions made and the
cases' states, and the survey requests; and the noisy customer's largest stored values
with their computed bounds.

Used by ``bench/soak.py`` (large) and ``tests/integration/test_soak.py`` (a few minutes).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import random
import signal
import statistics
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from cxstream.alerts.config import load_rules
from cxstream.alerts.surveys import memory_bytes_bound
from cxstream.cli.processes import WorkerProcess, free_port
from cxstream.cli.scrape import scrape
from cxstream.cli.simulator.generator import SimConfig, SimRecord, simulate
from cxstream.cli.simulator.sending import send_records, wait_for_group
from cxstream.scoring import plain_codec as codec
from cxstream.scoring import plain_models
from cxstream.scoring.bounds import customer_bytes_bound
from cxstream.scoring.customer import StateRules
from cxstream.scoring.windows import window_specs
from cxstream.streams.customers.survey_desk import memory_key
from cxstream.streams.kafka.clients import aiokafka_options
from cxstream.streams.kafka.plain_clients import Record, partitions_of, produce, read_topic
from cxstream.streams.kafka.topic_admin import ensure_topics
from cxstream.streams.settings import Settings, load_settings
from testkit.faults import FaultReport, _check, _wait_until_caught_up
from testkit.support import stored_case
from tests.receiver import Receiver

SECRET = "soak-run-secret"
NOISY = "c-noisy"
ACTOR_TOKEN = "soak-run-token-of-32-characters-or-more"
LEAD_TOKEN = "soak-lead-token-0123456789abcdef"  # a lead signs in to the console


@dataclass(frozen=True)
class SoakPlan:
    customers: int = 2_000
    days: int = 30
    per_day: int = 1_000
    noisy_failures: int = 10_000
    restart_every: tuple[float, float] = (20.0, 40.0)
    resolve_share: float = 0.8
    sample_every: float = 5.0
    seed: int = 13
    partitions: int = 4
    #: events sent per second (the month at accelerated time), below what the worker
    #: takes: a soak measures a worker keeping up, not one working off a backlog
    rate: float = 400.0
    min_restarts: int = 4
    #: alert cases written to the lifecycle topic before the worker starts (a worker that
    #: has raised a million alerts in its months), ``seed_open_share`` of them unresolved
    #: and due after the soak, the rest resolved within the retention
    seed_cases: int = 0
    seed_open_share: float = 0.05
    #: the rate-limited destination answers every this-many-th post 429, Retry-After: 1
    #: (its lane then waits a second: the run's end waits for that lane to drain)
    limit_every: int = 3


@dataclass
class Sample:
    at: float  # seconds since the start
    rss_mib: float | None
    healthz_ms: float | None
    alerts_ms: float | None
    console_ms: float | None
    lag: int | None


@dataclass
class SoakReport:
    checks: FaultReport
    plan: SoakPlan
    samples: list[Sample] = field(default_factory=list)
    #: (seconds since the start, signal name, exit code)
    restarts: list[tuple[float, str, int]] = field(default_factory=list)
    #: the worker's RSS (MiB) just before each restart: a process lives a few minutes at
    #: most here, so what would grow over a month shows as growth from one run to the next
    rss_before_restart: list[float] = field(default_factory=list)
    #: destination -> delivery seconds of each post (notice time to arrival)
    delivery: dict[str, list[float]] = field(default_factory=dict)
    #: the same, without notices made while the worker was stopped or starting again
    delivery_served: dict[str, list[float]] = field(default_factory=dict)
    #: destination -> the slowest posts while served: (seconds after the start the notice
    #: was made, what it was, seconds to arrive)
    slowest: dict[str, list[tuple[float, str, float]]] = field(default_factory=dict)
    began_at: float = 0.0  # wall-clock time of the start
    resolved_by_team: int = 0
    resolutions_missing: int = 0
    cases: int = 0
    #: seeded cases on the lifecycle topic at the end (each still there: none lost)
    seeded_cases_kept: int = 0
    #: unresolved cases on the lifecycle topic at the end, and as the worker lists them
    #: (a case restored into no store is missing from the list)
    unresolved_on_topic: int = 0
    unresolved_listed: int | None = None
    alerts_without_case: int = 0
    survey_requests: int = 0
    survey_request_repeats: int = 0
    survey_causes_with_two_ids: int = 0
    noisy_state_bytes: int = 0
    noisy_state_bound: int = 0
    noisy_survey_bytes: int = 0
    noisy_survey_bound: int = 0
    #: the noisy customer's remembered ids are their last ones sent, none applied twice
    noisy_memory_ok: bool = False
    #: bucket upper bounds of the deadline check's histogram, with counts (all runs)
    deadline_buckets: dict[float, float] = field(default_factory=dict)
    seconds: float = 0.0

    def ok(self) -> bool:
        return (self.checks.ok() and self.resolutions_missing == 0
                and self.seeded_cases_kept == self.plan.seed_cases
                and self.unresolved_listed == self.unresolved_on_topic
                and self.alerts_without_case == 0 and self.survey_causes_with_two_ids == 0
                and self.noisy_state_bytes <= self.noisy_state_bound
                and self.noisy_survey_bytes <= self.noisy_survey_bound
                and self.noisy_memory_ok
                and all(code in {0, -9} for _, _, code in self.restarts))

    def lines(self) -> list[str]:
        rss = [s.rss_mib for s in self.samples if s.rss_mib is not None]
        before = self.rss_before_restart
        half = before[len(before) // 2:]
        out = [f"checks: {self.checks.line()}",
               f"restarts: {len(self.restarts)} "
               f"({', '.join(f'{name}@{at:.0f}s->{code}' for at, name, code in self.restarts)})",
               f"alert cases: {self.cases} (seeded before the start: "
               f"{self.plan.seed_cases}, still there {self.seeded_cases_kept}), resolved by "
               f"the team {self.resolved_by_team}, "
               f"resolutions missing {self.resolutions_missing}, alerts without a case "
               f"{self.alerts_without_case}, unresolved on the topic "
               f"{self.unresolved_on_topic}, listed by the worker {self.unresolved_listed}",
               f"survey requests: {self.survey_requests} distinct ids, "
               f"{self.survey_request_repeats} repeated records (same id), causes with "
               f"two ids {self.survey_causes_with_two_ids}",
               f"noisy customer: state {self.noisy_state_bytes} of {self.noisy_state_bound} "
               f"bytes, survey memory {self.noisy_survey_bytes} of {self.noisy_survey_bound}"
               f", last ids remembered and none twice: {self.noisy_memory_ok}"]
        if rss:
            out.append(f"RSS MiB: max {max(rss):.0f}, last {rss[-1]:.0f}")
        if len(half) >= 2:
            out.append(f"RSS MiB before each restart: "
                       f"{', '.join(f'{mib:.0f}' for mib in before)}; over the second half "
                       f"{half[0]:.0f} -> {half[-1]:.0f} "
                       f"({(half[-1] / half[0] - 1) * 100:+.1f} %)")
        for name, values in (("healthz (loop lag) ms", [s.healthz_ms for s in self.samples]),
                             ("/api/alerts ms", [s.alerts_ms for s in self.samples]),
                             ("console inbox ms", [s.console_ms for s in self.samples])):
            got = [v for v in values if v is not None]
            if got:
                out.append(f"{name}: p50 {percentile(got, 50):.1f}, p99 "
                           f"{percentile(got, 99):.1f}, max {max(got):.1f} ({len(got)} samples)")
        lags = [s.lag for s in self.samples if s.lag is not None]
        if lags:
            out.append(f"consumer lag: max {max(lags)}, last {lags[-1]}")
        if self.deadline_buckets:
            out.append(f"deadline check: {int(self.deadline_buckets.get(float('inf'), 0))} "
                       f"ticks, p99 at most {histogram_p99(self.deadline_buckets)} s")
        for name in sorted(self.delivery):
            every, served = self.delivery[name], self.delivery_served.get(name, [])
            if every:
                out.append(f"delivery to {name}: {len(every)} posts, p99 "
                           f"{percentile(every, 99):.2f} s, max {max(every):.1f} s; while "
                           f"served p50 {percentile(served, 50) if served else 0:.2f} s, "
                           f"p99 {percentile(served, 99) if served else 0:.2f} s; slowest "
                           f"served (made at s, what, s): {self.slowest.get(name)}")
        return out


def percentile(values: list[float], pct: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(pct) - 1]


def histogram_p99(buckets: dict[float, float]) -> float:
    """The upper bound of the bucket that holds the 99th percentile (Prometheus buckets
    are cumulative)."""
    total = buckets.get(float("inf"), 0)
    for bound in sorted(buckets):
        if buckets[bound] >= 0.99 * total:
            return bound
    return float("inf")


def noisy_records(count: int, start: datetime) -> list[SimRecord]:
    """``count`` failed interactions of one customer within the hour before ``start``."""
    step = 3_600 / max(count, 1)
    return [SimRecord(at=0.0, kind="interactions", key=NOISY.encode(), value=json.dumps({
        "event_id": f"noisy-{n}", "customer_id": NOISY,
        "occurred_at": (start - timedelta(seconds=3_600 - n * step)).isoformat(),
        "channel": "chat", "touchpoint": "support", "outcome": "failure",
        "wait_seconds": 900, "text": "still not working, I tried again"}).encode())
        for n in range(count)]


def soak_records(plan: SoakPlan, start: datetime) -> list[SimRecord]:
    """The simulated month, with the noisy customer's failures spread through it."""
    config = SimConfig(customers=plan.customers, rate=20.0, duration=60.0, seed=plan.seed,
                       history_days=plan.days, history_per_day=plan.per_day, start=start)
    records = list(simulate(config, start).records())
    profiles = [dataclasses.replace(r, at=0.0) for r in records if r.kind == "customers"]
    rest = [r for r in records if r.kind != "customers"]
    noisy = noisy_records(plan.noisy_failures, start)
    # interleave: the noisy customer's failures among the month's traffic, in order
    merged: list[SimRecord] = []
    every = max(len(rest) // max(len(noisy), 1), 1)
    it = iter(noisy)
    for n, record in enumerate(rest):
        merged.append(record)
        if n % every == 0:
            merged.extend(itertools.islice(it, 1))
    merged.extend(it)
    return profiles + [dataclasses.replace(r, at=n / plan.rate) for n, r in enumerate(merged)]


SEEDED = "seed-"  # the alert ids of seeded cases begin so


def seeded_cases(count: int, open_share: float, start: datetime
                 ) -> Iterator[tuple[bytes, bytes]]:
    """(alert id, case JSON) of ``count`` cases raised in the fortnight before ``start``:
    every ``1 / open_share``-th one unresolved and due 40 days after ``start`` (nothing
    escalates during a soak), the others resolved an hour after being raised (kept: the
    retention is 30 days)."""
    every = max(round(1 / open_share), 1) if open_share > 0 else 0
    for n in range(count):
        created = start - timedelta(days=15) + timedelta(seconds=n % 864_000)
        unresolved = every > 0 and n % every == 0
        alert_id = f"{SEEDED}{n:012d}"
        case = stored_case(alert_id, n, created, start + timedelta(days=40),
                           None if unresolved else created + timedelta(hours=1))
        yield alert_id.encode(), case.model_dump_json().encode()


async def seed_cases(settings: Settings, plan: SoakPlan, start: datetime) -> int:
    """Write the plan's seeded cases to the lifecycle topic, keyed by alert id as the
    worker's table writes them (the same partitioner)."""
    return await produce(settings, (
        Record(settings.topic_alert_lifecycle, key, value)
        for key, value in seeded_cases(plan.seed_cases, plan.seed_open_share, start)))


def soak_users(folder: Path) -> str:
    """A lead (sees every team's alerts) for the console's inbox."""
    path = folder / "soak-users.yaml"
    path.write_text(yaml.safe_dump({"users": [
        {"name": "soak-lead", "token": LEAD_TOKEN, "role": "lead"}]}))
    return str(path)


def soak_rules(folder: Path, urls: dict[str, str]) -> str:
    """The shipped rules with destinations per team, no alert budget (every alert its own
    post, to compare), and alerts for events of the whole simulated month."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "soak-rules.yaml"
    path.write_text(yaml.safe_dump({
        "max_event_age_hours": 24 * 40,
        "routing": {"segment_teams": {"enterprise": "key-accounts", "smb": "smb-support"}},
        "notifications": {"budget_per_hour": 1_000_000,
                          "destinations": {"key-accounts": urls["key-accounts"],
                                           "smb-support": urls["smb-support"]},
                          "default_destination": urls["customer-care"]}}))
    return str(path)


class Destinations:
    """The three receivers, seen together as one by the fault checks."""

    def __init__(self, limit_every: int = 3) -> None:
        self.down = threading.Event()
        limited = itertools.count()
        self.by_name = {
            "key-accounts": Receiver(free_port(), SECRET,
                                     answer=lambda alert: 503 if self.down.is_set() else None),
            "smb-support": Receiver(free_port(), SECRET, retry_after="1",
                                    answer=lambda alert: 429 if next(limited) % limit_every == 0
                                    else None),
            "customer-care": Receiver(free_port(), SECRET)}

    def start(self) -> Destinations:
        for receiver in self.by_name.values():
            receiver.start()
        return self

    def stop(self) -> None:
        for receiver in self.by_name.values():
            receiver.stop()

    @property
    def received(self) -> list[Any]:
        return [item for r in self.by_name.values() for item in r.received]

    def alert_ids(self) -> list[str]:
        return [item.alert["alert_id"] for item in self.received]

    def delivery_ids(self) -> list[str]:
        return [item.alert_id_header for item in self.received]


def rss_mib(worker: WorkerProcess) -> float | None:
    if worker.process is None or not worker.running:
        return None
    try:
        status = Path(f"/proc/{worker.process.pid}/status").read_text()
    except OSError:
        return None
    return vmrss_mib(status)


def vmrss_mib(status: str) -> float | None:
    """VmRSS of a /proc/<pid>/status text in MiB; None for a process that has just
    exited (a zombie's status has no memory lines)."""
    line = next((line for line in status.splitlines() if line.startswith("VmRSS:")), None)
    return None if line is None else int(line.split()[1]) / 1024


def timed(client: httpx.Client, path: str, **kwargs: Any) -> float | None:
    began = time.perf_counter()
    try:
        response = client.get(path, **kwargs)
    except httpx.HTTPError:
        return None
    return (time.perf_counter() - began) * 1000 if response.status_code == 200 else None


async def consumer_lag(settings: Settings) -> int | None:
    admin = AIOKafkaAdminClient(**aiokafka_options(settings))
    probe = AIOKafkaConsumer(**aiokafka_options(settings), group_id=None)
    await admin.start()
    await probe.start()
    try:
        partitions = [TopicPartition(topic, p) for topic in settings.input_topics
                      for p in await partitions_of(settings, topic)]
        ends = await probe.end_offsets(partitions)
        committed = await admin.list_consumer_group_offsets(settings.app_id,
                                                            partitions=partitions)
        return sum(ends[tp] - (committed[tp].offset if committed.get(tp) else 0)
                   for tp in partitions)
    finally:
        await probe.stop()
        await admin.close()


def deadline_buckets(port: int) -> dict[float, float]:
    try:
        samples = scrape(f"http://127.0.0.1:{port}/metrics")
    except httpx.HTTPError:
        return {}
    found = {}
    for (name, pairs), value in samples.items():
        labels = dict(pairs)
        if (name == "cxstream_timer_tick_seconds_bucket"
                and labels.get("timer") == "check_alert_deadlines"):
            found[float(labels["le"])] = value
    return found


def run_soak(settings_values: dict[str, str], env: dict[str, str], workdir: Path,
             plan: SoakPlan, timeout: float = 3_600.0) -> SoakReport:
    destinations = Destinations(plan.limit_every).start()
    urls = {name: r.url for name, r in destinations.by_name.items()}
    values = {**settings_values, "rules_file": soak_rules(workdir, urls),
              "users_file": soak_users(workdir),
              "partitions": str(plan.partitions), "api_token": ACTOR_TOKEN,
              "webhook_secret": SECRET, "webhook_max_backoff_seconds": "2",
              "allowed_lateness_seconds": str(40 * 86_400)}
    settings = load_settings({}, **values)
    worker_env = {**env, **{f"CXSTREAM_{k.upper()}": v for k, v in values.items()}}
    start = datetime.now(UTC).replace(microsecond=0)
    records = soak_records(plan, start)
    checks = FaultReport(events=len(records), invalid=sum(1 for r in records if r.malformed))
    checks.valid = checks.events - checks.invalid
    report = SoakReport(checks=checks, plan=plan, began_at=time.time())
    asyncio.run(ensure_topics(settings))
    if plan.seed_cases:
        asyncio.run(seed_cases(settings, plan, start))
    worker = WorkerProcess(worker_env, workdir / "worker.log", settings.web_port).start()
    began = time.monotonic()
    done = threading.Event()  # the sampler and the support team stop
    stop_restarts = threading.Event()
    rng = random.Random(plan.seed)
    #: wall-clock windows in which the worker was stopped or starting again
    down_windows: list[tuple[float, float]] = []
    resolved: dict[str, float] = {}
    runs: list[dict[float, float]] = [{}]  # the deadline histogram of each worker run
    lock = threading.Lock()

    def restarter() -> None:
        signals = itertools.cycle([(signal.SIGTERM, "SIGTERM"), (signal.SIGKILL, "SIGKILL")])
        while True:
            time.sleep(rng.uniform(*plan.restart_every))
            if stop_restarts.is_set() and len(report.restarts) >= plan.min_restarts:
                return
            sig, name = next(signals)
            with lock:
                runs[-1] = deadline_buckets(settings.web_port) or runs[-1]
                rss = rss_mib(worker)
                if rss is not None:
                    report.rss_before_restart.append(rss)
                stopped_at = time.time()
                code = worker.stop(sig)
                report.restarts.append((round(time.monotonic() - began, 1), name, code))
                if sig == signal.SIGKILL:
                    checks.kills += 1
                    checks.kill_wall_times.append(time.time())
                worker.start()
                runs.append({})
            try:
                worker.wait_for("cxstream_partitions_assigned", settings.partitions,
                                timeout=180)
            finally:
                # an alert made just before the stop is posted by the next process
                down_windows.append((stopped_at - 2, time.time() + 5))

    def sampler() -> None:
        headers = {"Authorization": f"Bearer {ACTOR_TOKEN}"}
        base = f"http://127.0.0.1:{settings.web_port}"
        with httpx.Client(base_url=base, timeout=30, headers=headers) as api, \
                httpx.Client(base_url=base, timeout=30) as console:
            signed_in = False
            while not done.wait(plan.sample_every):
                if not signed_in:
                    try:
                        console.post("/console/login", data={"token": LEAD_TOKEN})
                        signed_in = bool(console.cookies)
                    except httpx.HTTPError:
                        pass
                try:
                    lag = asyncio.run(consumer_lag(settings))
                except Exception:  # the broker is busy: no figure this time
                    lag = None
                report.samples.append(Sample(
                    at=round(time.monotonic() - began, 1), rss_mib=rss_mib(worker),
                    healthz_ms=timed(api, "/healthz"),
                    alerts_ms=timed(api, "/api/alerts", params={"status": "open",
                                                                "limit": "50"}),
                    console_ms=timed(console, "/console") if signed_in else None, lag=lag))
                buckets = deadline_buckets(settings.web_port)
                if buckets:
                    runs[-1] = buckets

    def support_team() -> None:
        """Acknowledges and resolves ``resolve_share`` of the open alerts, chosen by id."""
        headers = {"Authorization": f"Bearer {ACTOR_TOKEN}"}
        offset = 0  # the team reads on past a page of alerts it leaves open
        with httpx.Client(base_url=f"http://127.0.0.1:{settings.web_port}", timeout=30,
                          headers=headers) as api:
            while not done.wait(2.0):
                try:
                    page = api.get("/api/alerts", params={"status": "open", "limit": "200",
                                                          "offset": str(offset)})
                    if page.status_code != 200:
                        continue
                    rows = page.json()["alerts"]
                    todo = [row["alert_id"] for row in rows
                            if row["alert_id"] not in resolved
                            and zlib.crc32(row["alert_id"].encode()) % 1000 / 1000
                            < plan.resolve_share]
                    offset = 0 if todo or len(rows) < 200 else offset + len(rows)
                    for alert_id in todo:
                        api.post(f"/api/alerts/{alert_id}/ack", json={})
                        answer = api.post(f"/api/alerts/{alert_id}/resolve",
                                          json={"category": "fixed", "note": "soak"})
                        if answer.status_code == 200:
                            resolved[alert_id] = time.time()
                except (httpx.HTTPError, ValueError, KeyError):
                    continue  # the worker is restarting: the next round tries again

    threads = [threading.Thread(target=target, daemon=True)
               for target in (restarter, sampler, support_team)]
    try:
        worker.wait_for("cxstream_partitions_assigned", settings.partitions, timeout=180)
        for thread in threads:
            thread.start()

        async def profiles_read() -> None:
            if not await wait_for_group(settings, settings.topic_customers, timeout):
                raise TimeoutError("the worker did not read the profiles")

        third = len(records) // 3

        sent: Iterator[int] = itertools.count(1)

        def on_sent(record: SimRecord) -> None:
            n = next(sent)
            if n == third:
                destinations.down.set()
            elif n == 2 * third:
                destinations.down.clear()

        asyncio.run(send_records(settings, records, speed=1.0, after_profiles=profiles_read,
                                 on_sent=on_sent))
        destinations.down.clear()
        stop_restarts.set()  # once the last restarts are done (plan.min_restarts)
        threads[0].join(timeout=1_800)
        time.sleep(plan.restart_every[1])  # the support team works on after the restarts
        done.set()
        for thread in threads[1:]:
            thread.join(timeout=300)
        _wait_until_caught_up(settings, worker, timeout)
        report.seconds = time.monotonic() - began
        _check(settings, records, checks, destinations,  # type: ignore[arg-type]
               beyond_memory=frozenset({NOISY}), retained_only=True)
        runs[-1] = deadline_buckets(settings.web_port) or runs[-1]
        report.deadline_buckets = dict(sum((Counter(run) for run in runs), Counter()))
        _check_soak(settings, report, destinations, resolved, down_windows, plan)
    finally:
        done.set()
        stop_restarts.set()
        if worker.process is not None and worker.running:
            report.restarts.append((round(time.monotonic() - began, 1), "end",
                                    worker.stop()))
        destinations.stop()
    return report


def _check_soak(settings: Settings, report: SoakReport, destinations: Destinations,
                resolved: dict[str, float], down_windows: list[tuple[float, float]],
                plan: SoakPlan) -> None:
    for name, receiver in destinations.by_name.items():
        report.delivery[name], report.delivery_served[name] = [], []
        for item in receiver.received:
            if item.alert.get("notice") is None and item.alert.get("occurrences", 1) > 1:
                continue  # an update keeps the alert's first creation time: not timed
            made = str(item.alert.get("notice_at") or item.alert["created_at"])
            made_at = datetime.fromisoformat(made).timestamp()
            seconds = item.received_at - made_at
            report.delivery[name].append(seconds)
            if not any(start <= made_at <= end for start, end in down_windows):
                report.delivery_served[name].append(seconds)
                report.slowest.setdefault(name, []).append(
                    (round(made_at - report.began_at, 1),
                     str(item.alert.get("notice") or "raised"), round(seconds, 2)))
        report.slowest[name] = sorted(report.slowest.get(name, []),
                                      key=lambda entry: -entry[2])[:5]
    # the support team's last changes reach the lifecycle topic: read again until they
    # are all there, or for 60 s
    deadline = time.monotonic() + 60
    while True:
        cases, missing = _cases_and_missing_resolutions(settings, resolved)
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(1)
    report.seeded_cases_kept = sum(1 for alert_id in cases if alert_id.startswith(SEEDED))
    report.unresolved_on_topic = _unresolved(cases, plan)
    report.unresolved_listed = _unresolved_listed(settings, report.unresolved_on_topic)
    report.cases = len(cases)
    report.resolved_by_team = len(resolved)
    report.resolutions_missing = missing
    alert_ids = {json.loads(r.value or b"{}").get("alert_id")
                 for r in asyncio.run(read_topic(settings, settings.topic_alerts))}
    report.alerts_without_case = len(alert_ids - set(cases))
    requests = [json.loads(r.value or b"{}") for r in
                asyncio.run(read_topic(settings, settings.topic_survey_requests))]
    ids = Counter(request["request_id"] for request in requests)
    report.survey_requests = len(ids)
    report.survey_request_repeats = sum(ids.values()) - len(ids)
    per_cause: dict[tuple[str, str], set[str]] = {}
    for request in requests:
        per_cause.setdefault((request["trigger"], request["cause_event_id"]), set()).add(
            request["request_id"])
    report.survey_causes_with_two_ids = sum(1 for found in per_cause.values()
                                            if len(found) > 1)
    state_rules = StateRules(**{name: getattr(settings, name)
                                for name in StateRules.model_fields})
    report.noisy_state_bound = customer_bytes_bound(
        state_rules, len(window_specs(settings.long_window_days)))
    report.noisy_state_bytes = _largest(settings, "customer_to_state", NOISY.encode())
    report.noisy_survey_bound = memory_bytes_bound(load_rules(settings.rules_file).surveys)
    report.noisy_survey_bytes = _largest(settings, "survey_memory", memory_key(NOISY))
    sent = [f"noisy-{n}" for n in range(plan.noisy_failures)]
    seen, recent = _noisy_memory(settings)
    report.noisy_memory_ok = (seen == set(sent[-settings.seen_event_ids_kept:])
                              and len(recent) == len(set(recent)))


def _unresolved(cases: dict[str, Any], plan: SoakPlan) -> int:
    """Unresolved cases on the lifecycle topic (a seeded case the team did not touch is
    unresolved as seeded: every ``1 / seed_open_share``-th one)."""
    every = max(round(1 / plan.seed_open_share), 1) if plan.seed_open_share > 0 else 0
    count = 0
    for alert_id, case in cases.items():
        if case:
            count += case["status"] != "resolved"
        elif alert_id.startswith(SEEDED):
            count += every > 0 and int(alert_id[len(SEEDED):]) % every == 0
    return count


def _unresolved_listed(settings: Settings, expected: int) -> int | None:
    """The unresolved alerts the worker lists (``total`` of /api/alerts), asked until it
    equals ``expected`` or for 120 s (the list answers 503 while the worker reads its
    cases again)."""
    listed: int | None = None
    deadline = time.monotonic() + 120
    with httpx.Client(base_url=f"http://127.0.0.1:{settings.web_port}", timeout=60,
                      headers={"Authorization": f"Bearer {ACTOR_TOKEN}"}) as api:
        while True:
            try:
                answer = api.get("/api/alerts", params={"status": "unresolved",
                                                        "limit": "1"})
                if answer.status_code == 200:
                    listed = int(answer.json()["total"])
            except httpx.HTTPError:
                pass
            if listed == expected or time.monotonic() > deadline:
                return listed
            time.sleep(2)


def _cases_and_missing_resolutions(settings: Settings, resolved: dict[str, float]
                                   ) -> tuple[dict[str, Any], int]:
    """The alert cases on the lifecycle topic, and how many of the team's resolutions
    (alert id -> when) are in neither a resolved case nor one changed after."""
    latest: dict[bytes, bytes | None] = {}
    for record in asyncio.run(read_topic(settings, settings.topic_alert_lifecycle,
                                         timeout_seconds=900)):
        latest[record.key or b""] = record.value
    # a seeded case the team did not touch is counted, not read (a million of them)
    cases = {key.decode(): (json.loads(value) if not key.startswith(SEEDED.encode())
                            or key.decode() in resolved else {})
             for key, value in latest.items() if value}
    missing = 0
    for alert_id, at in resolved.items():
        case = cases.get(alert_id)
        later = case is not None and any(
            change["action"] in {"reopened", "updated", "raised"}
            and datetime.fromisoformat(change["at"]).timestamp() > at - 1
            for change in case["history"])
        if case is None or not (case["status"] == "resolved" or later):
            missing += 1
    return cases, missing


def _noisy_memory(settings: Settings) -> tuple[set[str], list[str]]:
    """The noisy customer's remembered event ids, and the ids of their kept interactions."""
    latest: dict[bytes, bytes | None] = {}
    for record in asyncio.run(read_topic(settings, f"{settings.app_id}-customer_to_state"
                                         "-changelog", timeout_seconds=300)):
        latest[record.key or b""] = record.value
    table = {key: value for key, value in latest.items() if value is not None}
    raw = table.get(NOISY.encode())
    if raw is None:
        return set(), []
    state = plain_models.to_model(codec.decode(raw, table.get, settings.seen_event_ids_kept),
                           with_seen=True)
    return ({name.split(":", 1)[1] for name in state.seen},
            [record.event_id for record in state.recent_interactions])


def _largest(settings: Settings, table: str, key: bytes) -> int:
    """The largest value ever written for ``key`` on ``table``'s changelog."""
    records = asyncio.run(read_topic(settings, f"{settings.app_id}-{table}-changelog",
                                     timeout_seconds=300))
    return max((len(r.value) for r in records if r.key == key and r.value), default=0)
