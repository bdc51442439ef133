"""The one helper module of the tests: event builders, ports, environments, and what the
integration tests share (a worker started on the test broker, its API, the alerts topic)."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import orjson
import yaml

from cxstream.alerts.comment_tags import load_tagger
from cxstream.alerts.config import load_rules
from cxstream.alerts.customer_alerts import CustomerAlerts
from cxstream.cli.processes import WorkerProcess, free_port
from cxstream.schemas.events import CustomerProfile, Feedback, Interaction
from cxstream.scoring.customer import (
    CustomerState,
    StateRules,
    apply_feedback,
    apply_profile,
    quadrant,
)
from cxstream.streams.kafka.plain_clients import Record, produce, read_topic
from cxstream.streams.kafka.topic_admin import ensure_topics
from cxstream.streams.settings import Settings, load_settings

NOW = "2026-11-23T10:00:00+00:00"


def feedback(**overrides: Any) -> dict[str, Any]:
    event = {"event_id": "f-1", "customer_id": "c-1", "occurred_at": NOW, "survey": "nps",
             "score": 9, "channel": "web", "touchpoint": "checkout"}
    event.update(overrides)
    return event


def interaction(**overrides: Any) -> dict[str, Any]:
    event = {"event_id": "i-1", "customer_id": "c-1", "occurred_at": NOW, "channel": "phone",
             "touchpoint": "support"}
    event.update(overrides)
    return event


def profile(**overrides: Any) -> dict[str, Any]:
    event = {"customer_id": "c-1", "segment": "smb", "value": 100.0, "updated_at": NOW}
    event.update(overrides)
    return event


def to_bytes(event: dict[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False).encode("utf-8")




def base_env(**settings: str) -> dict[str, str]:
    """The parent environment without CXSTREAM_/Faust variables, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXSTREAM_")}
    env.update({f"CXSTREAM_{k.upper()}": v for k, v in settings.items()})
    return env


def fake_consumer(batch: dict[Any, list[int]], committed: dict[Any, int]) -> Any:
    """Just what Faust's getmany and perform_seek use of a Faust consumer: one fetch
    returns ``batch`` (offsets per partition), a seek finds ``committed``; input topic "in"."""
    from types import SimpleNamespace

    from faust.transport.consumer import Consumer

    async def wait_next_records(timeout: float) -> tuple[dict[Any, list[int]], set[Any]]:
        return batch, set(batch)

    async def seek_to_committed() -> dict[Any, int]:
        fake.sought += 1
        return committed

    def iterate(records: dict[Any, list[int]]) -> Any:
        return ((tp, offset) for tp, offsets in records.items() for offset in offsets)

    fake = SimpleNamespace(
        sought=0, flow_active=True, should_stop=False, _buffered_partitions=set(),
        _read_offset={}, _committed_offset={},
        app=SimpleNamespace(consumer_generation_id=1,
                            topics=SimpleNamespace(acking_topics={"in"}),
                            monitor=SimpleNamespace(track_tp_end_offset=lambda tp, hw: None)),
        scheduler=SimpleNamespace(iterate=iterate), highwater=lambda tp: None,
        log=SimpleNamespace(dev=lambda *args: None), _wait_next_records=wait_next_records,
        _to_message=lambda tp, offset: SimpleNamespace(offset=offset),
        seek_to_committed=seek_to_committed)
    fake.perform_seek = lambda: Consumer.perform_seek(fake)  # type: ignore[arg-type]
    return fake


def settled_differences(base_url: str, token: str | None, expected: Any,
                        timeout: float = 60) -> list[Any]:
    """The workers' tallies against ``expected`` (the batch recomputation), asked again
    while partitions settle (503) or differ, until they agree or ``timeout`` passes."""
    import time

    from cxstream.cli.consistency import differences, stream_tallies

    found: list[Any] = ["not compared yet"]
    deadline = time.monotonic() + timeout
    while found and time.monotonic() < deadline:
        try:
            found = list(differences(expected, stream_tallies(base_url, token)))
        except Exception as exc:  # 503 while partitions settle
            found = [repr(exc)]
        if found:
            time.sleep(0.5)
    return found


SECRET = "webhook-secret"


def alerts_on_topic(settings: Settings) -> list[dict[str, Any]]:
    records = asyncio.run(read_topic(settings, settings.topic_alerts))
    return [orjson.loads(record.value) for record in records if record.value]


def wait_until(check: Any, timeout: float = 90, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    value = check()
    while not value and time.monotonic() < deadline:
        time.sleep(every)
        value = check()
    return value


TOKEN = "test-token-for-the-api-of-32-chars-or-more"


def outputs_of_core(settings: Settings, records: list[Any]) -> list[Any]:
    """What a worker's core (build_core, in process, tables in memory) emits for
    ``records`` (objects with kind, key and value, as the simulator's), in one batch."""
    from cxstream.streams.ingest.batches import Ingest, IngestLimits
    from cxstream.streams.kafka.changelog import BulkChangelog
    from testkit.in_process import in_process_core, in_process_messages

    outputs: list[Any] = []

    async def keep(batch: list[Any]) -> None:
        outputs.extend(batch)

    async def drop(topic: str, partition: int, changelog: list[Any]) -> None:
        pass

    class NoDeadLetters:
        async def write(self, topic: str, partition: int, rejected: Any) -> list[int]:
            raise AssertionError(f"dead-lettered: {rejected}")

    core = in_process_core(settings, keep, BulkChangelog(drop))
    ingest = Ingest(settings.input_kinds(), IngestLimits(settings.max_event_bytes, None,
                                                         settings.max_clock_skew_seconds),
                    core.writer.metrics, NoDeadLetters(), core.writer.handle,
                    core.writer.finish)
    asyncio.run(ingest.process(in_process_messages(settings, records, {})))
    return outputs


def flat_model_file(path: Path, probability: float = 0.2) -> Path:
    """A prediction model file of this version's features that gives everyone
    ``probability`` (for tests that need a model, not a good one)."""
    from cxstream.scoring.features import FEATURE_VERSION, Vocabulary, feature_names
    from cxstream.scoring.journey import Journey
    from cxstream.scoring.prediction import MODEL_FORMAT, ModelFile

    vocabulary = Vocabulary(("smb",), ("web",), tuple(Journey().order()))
    names = feature_names(vocabulary)
    file = ModelFile(format=MODEL_FORMAT, feature_version=FEATURE_VERSION, features=names,
                     vocabulary=vocabulary.as_json(), weights=[0.0] * len(names),
                     intercept=0.0, means=[0.0] * len(names), calibration_x=[0.0, 1.0],
                     calibration_y=[probability, probability], evaluation={}, trained={})
    path.write_text(file.model_dump_json())
    return path


def base_time() -> datetime:
    """hh:30 some hours ago, away from day and week boundaries."""
    at = (datetime.now(UTC) - timedelta(hours=10)).replace(minute=30, second=0, microsecond=0)
    while at.hour < 3 or at.hour > 21:
        at -= timedelta(hours=4)
    return at


def unbudgeted_rules(folder: Path, rules: dict[str, Any] | None = None) -> str:
    """A rules file (the shipped rules, plus ``rules``) with no alert budget: tests that
    count webhook deliveries see every alert posted on its own, none held for a digest."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "unbudgeted-rules.yaml"
    path.write_text(yaml.safe_dump({**(rules or {}),
                                    "notifications": {"budget_per_hour": 1_000_000}}))
    return str(path)


def configure(isolated: dict[str, str], **extra: str) -> dict[str, str]:
    return {**isolated, "api_token": TOKEN, "value_band_refresh_seconds": "1",
            "allowed_lateness_seconds": "3600", **extra}


class Api:
    def __init__(self, port: int) -> None:
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                                   headers={"Authorization": f"Bearer {TOKEN}"})

    def get(self, path: str, **params: str) -> Any:
        response = self.client.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()


def start(settings: dict[str, str], tmp_path: Path, name: str) -> WorkerProcess:
    asyncio.run(ensure_topics(load_settings({}, **settings)))
    return WorkerProcess(base_env(**settings), tmp_path / f"{name}.log",
                         int(settings["web_port"])).start()


def send(settings: Settings, topic: str, events: list[dict[str, Any]]) -> None:
    asyncio.run(produce(settings, [Record(topic, e["customer_id"].encode(), to_bytes(e))
                                   for e in events]))


def known_events(t: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                       list[dict[str, Any]]]:
    def at(minutes: int) -> str:
        return (t + timedelta(minutes=minutes)).isoformat()

    profiles = [
        profile(customer_id="c1", segment="enterprise", value=100_000, owner="am.a",
                updated_at=at(-600)),
        profile(customer_id="c2", segment="smb", value=500, updated_at=at(-600)),
        profile(customer_id="c4", segment="enterprise", value=200, updated_at=at(-600)),
    ]
    answers = [
        # first: an hour behind what follows, within the allowed lateness of 1 h
        feedback(event_id="f10", customer_id="c1", score=10, occurred_at=at(-60),
                 touchpoint="support"),  # previous hour
        feedback(event_id="f1", customer_id="c1", score=9, occurred_at=at(0)),
        feedback(event_id="f2", customer_id="c1", score=3, occurred_at=at(5), channel="phone",
                 touchpoint="support"),
        feedback(event_id="f1", customer_id="c1", score=9, occurred_at=at(0)),  # resent
        feedback(event_id="f3", customer_id="c2", score=10, occurred_at=at(1)),
        feedback(event_id="f4", customer_id="c3", score=0, occurred_at=at(2),
                 touchpoint="support"),
        feedback(event_id="f5", customer_id="c4", score=8, occurred_at=at(-10),
                 touchpoint="support"),  # out of order
        feedback(event_id="f6", customer_id="c2", survey="csat", score=5, occurred_at=at(0)),
        feedback(event_id="f7", customer_id="c2", survey="csat", score=2, occurred_at=at(3)),
        feedback(event_id="f8", customer_id="c4", survey="ces", score=6, occurred_at=at(0),
                 touchpoint="support"),
        feedback(event_id="f9", customer_id="c1", survey="ces", score=2, occurred_at=at(1),
                 channel="phone", touchpoint="support"),
        feedback(event_id="f11", customer_id="c3", score=1, occurred_at=at(-180),
                 touchpoint="support"),  # 3 h behind c3's partition: late
    ]
    for answer in answers:
        if answer["event_id"] in {"f1", "f2"}:
            answer["touchpoint"] = "support"
    interactions = [
        interaction(event_id=f"i{n}", customer_id="c1", occurred_at=at(n), outcome="escalated")
        for n in range(3)
    ]
    return profiles, answers, interactions


# -- customer rules: events at a fixed time, high value by a set of ids ---------------------

RULES_T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
STATE_RULES = StateRules()
RULES_CONFIG = load_rules()
TAGGER = load_tagger()


def fb(minutes: float = 0, **overrides: Any) -> Feedback:
    return Feedback.model_validate(
        feedback(occurred_at=(RULES_T0 + timedelta(minutes=minutes)).isoformat(), **overrides))


def ix(minutes: float = 0, **overrides: Any) -> Interaction:
    return Interaction.model_validate(
        interaction(occurred_at=(RULES_T0 + timedelta(minutes=minutes)).isoformat(), **overrides))


class Bands:
    """High-value decided by a fixed set of customer ids."""

    def __init__(self, high: set[str]) -> None:
        self.high = high

    def report(self, state: CustomerState) -> dict[str, Any]:
        from cxstream.scoring.customer import low_score_reasons, negative_signal_count

        high = state.customer_id in self.high if state.profile else None
        return {"high_value": high, "quadrant": quadrant(state, high, STATE_RULES),
                "low_experience_reasons": low_score_reasons(state, STATE_RULES),
                "negative_signals_in_window": negative_signal_count(state, STATE_RULES)}


def alerts_for(high: set[str]) -> CustomerAlerts:
    return CustomerAlerts(RULES_CONFIG, TAGGER, Bands(high).report, lambda: RULES_T0)


def with_profile(customer_id: str = "c-1", owner: str | None = "am.a") -> CustomerState:
    return apply_profile(CustomerState(customer_id=customer_id), CustomerProfile.model_validate(
        profile(customer_id=customer_id, segment="enterprise", owner=owner,
                updated_at=RULES_T0.isoformat())))


def answer(engine: CustomerAlerts, state: CustomerState,
           event: Feedback) -> tuple[CustomerState, list[tuple[str, Any]]]:
    after = apply_feedback(state, event, STATE_RULES)
    return engine.react(event, state, after, TAGGER.tag(event.comment, "en"))


class AlertsClient:
    """The alerts API as one token sees it."""

    def __init__(self, port: int, token: str) -> None:
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                                 headers={"Authorization": f"Bearer {token}"})

    def alerts(self, **params: str) -> list[dict[str, Any]]:
        response = self.http.get("/api/alerts", params=params)
        if response.status_code == 503:  # partitions settling after a start
            return []
        assert response.status_code == 200, response.text
        rows: list[dict[str, Any]] = response.json()["alerts"]
        return rows

    def act(self, alert_id: str, action: str, **body: str) -> httpx.Response:
        """An action, asked again while the worker answers 503 with Retry-After (as the
        CLI does: it is restoring its tables or taking over partitions)."""
        from cxstream.streams.web.client import busy_retrying

        answer: httpx.Response = busy_retrying(
            lambda: self.http.post(f"/api/alerts/{alert_id}/{action}", json=body))
        return answer


def lifecycle_records(settings: Any, alert_id: str) -> list[dict[str, Any]]:
    records = asyncio.run(read_topic(settings, settings.topic_alert_lifecycle))
    return [orjson.loads(r.value) for r in records if r.key == alert_id.encode() and r.value]


class CasesTable(dict[bytes, Any]):
    """A plain dict standing for the alert_cases table (its own store, raw codecs)."""

    def __init__(self, changelog_topic: str = "cx.alert-lifecycle") -> None:
        super().__init__()
        self.data = self
        self.name = "alert_cases"
        self.key_serializer = self.value_serializer = "raw"
        self.changelog_topic = SimpleNamespace(get_topic_name=lambda: changelog_topic)


#: a customer's context as an alert carries it: a few recent interactions (about 1.6 KB
#: of case JSON in all)
CASE_CONTEXT = {"customer_value": 1840.0, "segment": "smb", "recent_interactions": [
    {"event_id": f"i-{k}", "channel": "phone", "touchpoint": "delivery",
     "outcome": "failure", "text": "The parcel never came"} for k in range(5)]}
CASE_TEAMS = ("smb-support", "key-accounts", "customer-care")


@functools.cache
def _shipped_rules() -> Any:
    return load_rules()


def stored_case(alert_id: str, n: int, created: datetime, act_by: datetime,
                resolved_at: datetime | None) -> Any:
    """An alert case as the lifecycle topic holds it: a detractor alert of customer
    ``c-<n>`` with a customer context, open (due at ``act_by``) or resolved at
    ``resolved_at``; teams in turn."""
    from cxstream.alerts import lifecycle as lc
    from cxstream.schemas.outputs import Alert

    config = _shipped_rules()
    alert = Alert(alert_id=alert_id, rule="detractor", severity="warning",
                  customer_id=f"c-{n}", segment="smb", owner="smb-support",
                  team=CASE_TEAMS[n % 3], summary=f"NPS 3 from c-{n} about delivery (phone)",
                  reason={"score": 3}, context=CASE_CONTEXT, event_time=created,
                  created_at=created, act_by=act_by)
    case = lc.open_case(alert, alert.team or alert.owner, created, config)
    if resolved_at is not None:
        return lc.resolve(case, "alice", "contacted", None, resolved_at, config)
    return case


async def local_server(method: str, path: str, handler: Any) -> tuple[Any, int]:
    """An aiohttp server on a free loopback port answering ``method path`` with
    ``handler`` (a stand-in for another worker); its runner (``cleanup()`` it) and port."""
    from aiohttp import web

    server = web.Application()
    server.router.add_route(method, path, handler)
    runner = web.AppRunner(server)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port


def clear_of_midnight(moment: datetime, span: timedelta = timedelta(minutes=12)
                      ) -> datetime:
    """``moment``, or earlier, so that no midnight (UTC) falls within ``span`` after it:
    one day window of the priorities and one week of the live evaluation then hold every
    event a test sends from it, whatever the hour it runs (test_prediction failed from
    00:00 to 00:30 UTC, when its failures fell in the day before the wall clock's)."""
    midnight = (moment + span).replace(hour=0, minute=0, second=0, microsecond=0)
    return moment if midnight <= moment else midnight - span


def without_times(batch: list[Any]) -> list[tuple[str, bytes, str]]:
    """Simulated records (SimRecord) with their timestamps taken out, to compare runs."""
    out: list[tuple[str, bytes, str]] = []
    for record in batch:
        try:
            value = json.loads(record.value)
        except ValueError:  # a malformed one: blank its timestamps textually
            out.append((record.kind, record.key, re.sub(
                rb"\d{4}-\d\d-\d\dT[\d:.]+(\+00:00)?", b"T", record.value).decode(
                    "latin-1")))
            continue
        for name in ("occurred_at", "updated_at"):
            value.pop(name, None)
        out.append((record.kind, record.key, json.dumps(value, sort_keys=True)))
    return out


def console_worker(isolated: dict[str, str], tmp_path: Path, users: list[dict[str, Any]],
                   rules: dict[str, Any]) -> tuple[Settings, str, WorkerProcess]:
    """A worker with a users file and a rules file, for the console's browser tests:
    its settings, its base URL and the process."""
    users_file, rules_file = tmp_path / "users.yaml", tmp_path / "rules.yaml"
    users_file.write_text(yaml.safe_dump({"users": users}))
    rules_file.write_text(yaml.safe_dump(rules))
    values = configure(isolated, users_file=str(users_file), rules_file=str(rules_file))
    return (load_settings({}, **values), f"http://127.0.0.1:{values['web_port']}",
            start(values, tmp_path, "worker"))


#: Debian's Chromium, for the console's browser tests (None: not installed), and where
#: their screenshots go
CHROMIUM = shutil.which("chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def signed_in_page(browser: Any, base: str, token: str, **options: Any) -> Any:
    """A new Chromium page of the console at ``base``, signed in with ``token``, on the
    inbox (a wide desktop window unless ``options`` say otherwise)."""
    page = browser.new_page(**{"viewport": {"width": 1280, "height": 900}, "locale": "en-GB",
                               **options})
    page.goto(f"{base}/console/login")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Inbox')")
    return page
