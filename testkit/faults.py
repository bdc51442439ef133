"""Fault injection: a worker killed with SIGKILL and restarted while events pour in.

Used by ``bench/fault_injection.py`` (the full run, about 100,000 events) and by the
integration test (a shorter run). The checks afterwards:
- every valid input is reflected in the tables: the union of the event ids each customer
  state has seen (read from the state changelog) is exactly the valid ids sent;
- every invalid input is on the dead-letter topic (distinct source offsets = invalid sent);
- the group tallies equal the batch recomputation from the input topics;
- no alert id reached the webhook receiver twice.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cxstream.cli.consistency import batch_tallies, differences, stream_tallies
from cxstream.cli.processes import WorkerProcess, free_port
from cxstream.cli.simulator.generator import SimConfig, SimRecord, simulate
from cxstream.cli.simulator.sending import send_records, wait_for_group
from cxstream.scoring import plain_codec as codec
from cxstream.scoring import plain_customer as plain
from cxstream.scoring import plain_models
from cxstream.scoring.recompute import GroupTallies
from cxstream.scoring.windows import window_specs
from cxstream.streams.ingest.deadletter_record import read_headers
from cxstream.streams.kafka.plain_clients import read_topic
from cxstream.streams.kafka.topic_admin import ensure_topics
from cxstream.streams.settings import Settings, load_settings
from testkit.support import unbudgeted_rules
from tests.receiver import Receiver

MIN_KILLS = 3
#: a post this close before a SIGKILL may not have been committed yet
IN_FLIGHT_SECONDS = 0.5
WEBHOOK_SECRET = "fault-run-secret"


@dataclass
class FaultReport:
    events: int = 0
    valid: int = 0
    invalid: int = 0
    kills: int = 0
    seconds: float = 0.0
    lost_valid: int = 0
    unexpected_valid: int = 0
    #: valid events applied twice: an event id twice among a customer's recent records
    doubled_valid: int = 0
    missing_deadletters: int = 0
    #: dead-letter records beyond the first for the same input (topic, partition, offset)
    doubled_deadletters: int = 0
    #: alert ids on the alerts topic that never reached the webhook
    missing_alerts: int = 0
    #: the missing ones by the team they were routed to
    missing_by_team: dict[str, int] = field(default_factory=dict)
    tally_differences: int = 0
    webhook_posts: int = 0
    webhook_duplicates: int = 0
    alerts: int = 0
    kill_times: list[float] = field(default_factory=list)
    difference_examples: list[Any] = field(default_factory=list)
    duplicate_examples: list[Any] = field(default_factory=list)
    kill_wall_times: list[float] = field(default_factory=list)
    #: duplicates whose first post came just before a SIGKILL: delivered, not yet committed
    in_flight_duplicates: int = 0

    @property
    def unexplained_duplicates(self) -> int:
        return self.webhook_duplicates - self.in_flight_duplicates

    def ok(self) -> bool:
        return (self.lost_valid == self.unexpected_valid == self.missing_deadletters
                == self.doubled_deadletters == self.doubled_valid == self.missing_alerts
                == self.tally_differences == self.unexplained_duplicates == 0)

    def line(self) -> str:
        return (f"events {self.events} (valid {self.valid}, invalid {self.invalid}), "
                f"SIGKILLs {self.kills}, {self.seconds:.0f} s; lost {self.lost_valid}, "
                f"doubled {self.doubled_valid}, dead-letters missing "
                f"{self.missing_deadletters}, doubled {self.doubled_deadletters}, tally "
                f"differences {self.tally_differences}; alerts {self.alerts}, missing at the "
                f"webhook {self.missing_alerts} {self.missing_by_team or ''}, webhook posts "
                f"{self.webhook_posts}, duplicates {self.webhook_duplicates} (of which "
                f"{self.in_flight_duplicates} posted in the {IN_FLIGHT_SECONDS} s before a "
                "SIGKILL, their commit cut off)")


def in_flight_reposts(received: list[Any], kill_wall_times: list[float]) -> int:
    """Posts of an alert already posted in the IN_FLIGHT_SECONDS before a SIGKILL: the
    kill cut off the webhook consumer's commit, so the next owner delivers it again (with
    the same webhook-id, for the receiver to drop)."""
    first_post: dict[str, float] = {}
    reposts = 0
    for item in received:
        alert_id = item.alert_id_header
        if alert_id not in first_post:
            first_post[alert_id] = item.received_at
        elif any(0 <= kill - first_post[alert_id] <= IN_FLIGHT_SECONDS
                 for kill in kill_wall_times):
            reposts += 1
    return reposts


def fault_records(events: int, seed: int) -> list[SimRecord]:
    """About ``events`` simulated records: a customer base, then live traffic, with the
    usual malformed share and incidents (so alerts fire), sent as fast as possible."""
    customers = max(200, events // 20)
    live = max(events - customers, 100)
    config = SimConfig(customers=customers, rate=live / 60, duration=60, seed=seed,
                       history_days=0)
    return list(simulate(config, datetime.now(UTC).replace(microsecond=0)).records())


def run_fault_test(settings_values: dict[str, str], env: dict[str, str], workdir: Path,
                   events: int, kill_every: tuple[float, float] = (5.0, 20.0),
                   seed: int = 11, timeout: float = 900.0) -> FaultReport:
    """Send ``events`` while killing and restarting one worker; return what was checked.

    ``settings_values`` are the CXSTREAM_* settings (without prefix) of the run; the
    webhook settings are added here."""
    records = fault_records(events, seed)
    # every event id must be checkable in its customer's state: the state remembers as
    # many ids as the busiest simulated customer sends (business accounts send more)
    busiest = max(Counter(r.key for r in records if r.kind != "customers").values())
    receiver = Receiver(free_port(), WEBHOOK_SECRET).start()
    values = {"rules_file": unbudgeted_rules(workdir),
              "seen_event_ids_kept": str(max(100, busiest)), **settings_values,
              "webhook_url": receiver.url,
              "webhook_secret": WEBHOOK_SECRET, "webhook_max_backoff_seconds": "1",
              "allowed_lateness_seconds": str(30 * 86_400)}
    settings = load_settings({}, **values)
    worker_env = {**env, **{f"CXSTREAM_{k.upper()}": v for k, v in values.items()}}
    report = FaultReport(events=len(records),
                         invalid=sum(1 for r in records if r.malformed))
    report.valid = report.events - report.invalid
    asyncio.run(ensure_topics(settings))
    worker = WorkerProcess(worker_env, workdir / "worker.log", settings.web_port).start()
    began = time.monotonic()
    stop_killing = threading.Event()
    rng = random.Random(seed)

    def killer() -> None:
        while True:
            time.sleep(rng.uniform(*kill_every))
            if stop_killing.is_set() and report.kills >= MIN_KILLS:
                return
            worker.stop(signal.SIGKILL)  # returns once the process is gone
            # the time the worker was dead by: a post the receiver got just before is one
            # the live worker sent (recorded before the signal, such a post looked later)
            report.kill_wall_times.append(time.time())
            report.kills += 1
            report.kill_times.append(round(time.monotonic() - began, 1))
            worker.start()

    thread = threading.Thread(target=killer, daemon=True)
    try:
        worker.wait_for("cxstream_partitions_assigned", settings.partitions, timeout=120)
        thread.start()
        async def profiles_read() -> None:  # answers count in their customer's segment
            if not await wait_for_group(settings, settings.topic_customers, timeout):
                raise TimeoutError("the worker did not read the profiles")

        asyncio.run(send_records(settings, records, speed=None, after_profiles=profiles_read))
        # keep killing a while after the last send: recovery under load is the point
        time.sleep(kill_every[1])
        stop_killing.set()
        thread.join()
        _wait_until_caught_up(settings, worker, timeout)
        report.seconds = time.monotonic() - began
        _check(settings, records, report, receiver)
    finally:
        stop_killing.set()
        if worker.process is not None and worker.running:
            worker.stop()
        receiver.stop()
    return report


def _wait_until_caught_up(settings: Settings, worker: WorkerProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for topic in settings.input_topics:
        remaining = max(deadline - time.monotonic(), 1.0)
        if not asyncio.run(wait_for_group(settings, topic, remaining)):
            raise TimeoutError(f"the worker did not commit {topic} to its end:\n"
                               f"{worker.log()}")
    worker.wait_for("cxstream_partitions_assigned", settings.partitions, timeout=120)


def _check(settings: Settings, records: list[SimRecord], report: FaultReport,
           receiver: Receiver, beyond_memory: frozenset[str] = frozenset(),
           retained_only: bool = False) -> None:
    """``beyond_memory``: customers sent more events than their state remembers ids of
    (checked by the caller): left out of the comparison of event ids. ``retained_only``:
    compare the tallies of the windows the workers still keep (a month of history
    outlives the hour windows), leaving out the oldest kept one of each size (the
    watermark of each partition is a little apart)."""
    sent_ids = {json.loads(r.value)["event_id"] for r in records
                if not r.malformed and r.kind != "customers"
                and r.key.decode() not in beyond_memory}
    seen, report.doubled_valid = _seen_event_ids(settings, beyond_memory)
    report.lost_valid = len(sent_ids - seen)
    report.unexpected_valid = len(seen - sent_ids)
    deadletters = asyncio.run(read_topic(settings, settings.topic_deadletter,
                                         timeout_seconds=300))
    sources = Counter((meta["source.topic"], meta["source.partition"], meta["source.offset"])
                      for meta in (read_headers(list(r.headers)) for r in deadletters))
    report.missing_deadletters = report.invalid - len(sources)
    report.doubled_deadletters = sum(count - 1 for count in sources.values())
    token = settings.api_token.get_secret_value() if settings.api_token else None
    expected = batch_tallies(settings)
    if retained_only:
        expected = _retained(settings, expected, records)
    found: list[Any] = ["not compared"]
    deadline = time.monotonic() + 60
    while found and time.monotonic() < deadline:
        try:
            actual = stream_tallies(f"http://127.0.0.1:{settings.web_port}", token)
            found = differences(expected, _retained(settings, actual, records)
                                if retained_only else actual)
        except Exception as exc:  # 503 while the last restart settles
            found = [repr(exc)]
            time.sleep(1)
    report.tally_differences = len(found)
    report.difference_examples = found[:3]
    teams = {alert.get("alert_id"): alert.get("team") or alert.get("owner")
             for r in asyncio.run(read_topic(settings, settings.topic_alerts))
             if (alert := json.loads(r.value or b"{}"))}
    alerts = set(teams)
    report.alerts = len(alerts)
    # a destination still working off its backlog (rate-limited) is waited for while it
    # makes progress; one that stalls for 60 s is not
    deadline, posts = time.monotonic() + 60, len(receiver.received)
    # (while any is missing: a post of an alert published after the read above is no
    # reason to stop waiting)
    while alerts - set(receiver.alert_ids()) and time.monotonic() < deadline:
        time.sleep(0.5)
        if len(receiver.received) > posts:
            deadline, posts = time.monotonic() + 60, len(receiver.received)
    missing = alerts - set(receiver.alert_ids())
    report.missing_alerts = len(missing)
    report.missing_by_team = dict(Counter(str(teams[alert_id]) for alert_id in missing))
    ids = receiver.delivery_ids()  # a follow-up (escalated, resolved) is a post of its own
    report.webhook_posts = len(ids)
    report.webhook_duplicates = len(ids) - len(set(ids))
    report.in_flight_duplicates = in_flight_reposts(receiver.received, report.kill_wall_times)
    twice = {item.alert["alert_id"] for item in receiver.received
             if ids.count(item.alert_id_header) > 1}
    if twice:  # where each was on the alerts topic: for the report
        report.duplicate_examples = [
            (r.partition, r.offset, alert["alert_id"], alert["occurrences"], alert["created_at"])
            for r in asyncio.run(read_topic(settings, settings.topic_alerts))
            if (alert := json.loads(r.value or b"{}")).get("alert_id") in sorted(twice)[:3]]
        report.duplicate_examples += [
            (item.alert["alert_id"], datetime.fromtimestamp(item.received_at, UTC).isoformat())
            for item in receiver.received if item.alert["alert_id"] in sorted(twice)[:3]]


def _retained(settings: Settings, tallies: GroupTallies, records: list[SimRecord]
              ) -> GroupTallies:
    """The slots of ``tallies`` in windows kept after the latest event of ``records``,
    but the oldest kept one of each size."""
    latest = max(datetime.fromisoformat(event["occurred_at"]).timestamp()
                 for r in records if not r.malformed and r.kind != "customers"
                 for event in [json.loads(r.value)])
    specs = {spec.name: spec for spec in window_specs(settings.long_window_days)}
    return {slot: tally for slot, tally in tallies.items()
            if slot[2] + specs[slot[1]].seconds * (specs[slot[1]].retained - 1) > latest}


def _seen_event_ids(settings: Settings, skip: frozenset[str] = frozenset()
                    ) -> tuple[set[str], int]:
    """Event ids in the latest state of every customer (the state changelog's last values),
    and how many events appear twice among a customer's recent scores or interactions."""
    latest: dict[bytes, bytes | None] = {}
    for record in asyncio.run(read_topic(settings, f"{settings.app_id}-customer_to_state"
                                         "-changelog", timeout_seconds=300)):
        latest[record.key or b""] = record.value
    table = {key: value for key, value in latest.items() if value is not None}
    seen: set[str] = set()
    doubled = 0
    for key, raw in table.items():
        if plain.is_history_key(key) or key.decode(errors="replace") in skip:
            continue  # read with the customer's state, as the worker reads it
        state = plain_models.to_model(codec.decode(raw, table.get, settings.seen_event_ids_kept),
                               with_seen=True)
        seen |= {name.split(":", 1)[1] for name in state.seen}
        for records in (state.recent_scores, state.recent_interactions):
            counts = Counter(record.event_id for record in records)
            doubled += sum(count - 1 for count in counts.values())
    return seen, doubled
