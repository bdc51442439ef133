"""Group alerts resolving themselves (an issue below its threshold for a whole window, a
segment's score back above its baseline minus the margin), and the webhook sink's
routing by team, budget holds and digests (no broker)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from cxstream.alerts.config import Notifications, RecurringIssueRule, load_rules
from cxstream.alerts.group_rules import IssueWindow, issue_recovered, segment_recovered
from cxstream.schemas.outputs import Alert
from cxstream.scoring.conventions import Conventions
from cxstream.scoring.tallies import Tally
from cxstream.streams.metrics import WorkerMetrics
from cxstream.streams.settings import load_settings
from cxstream.streams.webhook_sink import WebhookSink

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CONFIG = load_rules()


def test_an_issue_alert_resolves_after_a_whole_quiet_window() -> None:
    rule = RecurringIssueRule(min_customers=5, window_minutes=60)
    start = 0
    assert not issue_recovered(start, None, rule, 2 * 3600 - 1)  # next window not over
    assert issue_recovered(start, None, rule, 2 * 3600)  # nobody in the next window
    assert issue_recovered(start, IssueWindow(count=4), rule, 2 * 3600)
    assert not issue_recovered(start, IssueWindow(count=5), rule, 3 * 3600)  # still on


def tally(promoters: int, detractors: int, passives: int = 0) -> Tally:
    return Tally.model_validate({"promoters": promoters, "detractors": detractors,
                                 "passives": passives})


def test_a_segment_recovers_once_its_score_is_back_above_baseline_minus_margin() -> None:
    conventions = Conventions()
    baseline = tally(60, 20, 20)  # NPS 40
    assert segment_recovered("nps", tally(20, 20, 10), baseline, CONFIG,
                             conventions) is None  # NPS 20 (n=50), still down
    figures = segment_recovered("nps", tally(18, 6, 6), baseline, CONFIG, conventions)
    assert figures is not None and figures["current"] == 40 and figures["floor"] == 30
    assert segment_recovered("nps", tally(9, 3, 3), baseline, CONFIG,
                             conventions) is None  # n=15: too few answers to say


class Sender:
    body_format = "json"

    def __init__(self, url: str) -> None:
        self.url = url
        self.posted: list[str] = []

    async def post(self, webhook_id: str, body: bytes) -> None:
        self.posted.append(webhook_id)


class Consumer:
    def __init__(self, tps: set[TopicPartition], position: int) -> None:
        self.tps = tps
        self.at = position
        self.commits: list[dict[TopicPartition, int]] = []

    def assignment(self) -> set[TopicPartition]:
        return self.tps

    async def position(self, tp: TopicPartition) -> int:
        return self.at

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(offsets)


def alert(n: int, **overrides: Any) -> Alert:
    data: dict[str, Any] = {
        "alert_id": f"a-{n}", "rule": "detractor", "severity": "warning",
        "customer_id": f"c-{n}", "owner": "am.a", "team": "smb-support",
        "summary": f"NPS 3 from c-{n}", "reason": {}, "context": {},
        "event_time": T0, "created_at": T0, "act_by": T0 + timedelta(hours=24)}
    data.update(overrides)
    return Alert.model_validate(data)


def sink(clock: list[float]) -> tuple[WebhookSink, Sender, Sender]:
    default, team = Sender("http://default.test/"), Sender("http://smb.test/")
    config = CONFIG.model_copy(update={"notifications": Notifications(
        destinations={"smb-support": "http://smb.test/"},  # type: ignore[dict-item]
        budget_per_hour=2, digest_every_minutes=10)})
    settings = load_settings({}, webhook_url="http://default.test/",
                             webhook_secret="k" * 20)
    hook = WebhookSink(settings, default, WorkerMetrics(CollectorRegistry()),  # type: ignore[arg-type]
                       clock=lambda: clock[0], config=config,
                       senders={"http://smb.test/": team})  # type: ignore[dict-item]
    return hook, default, team


def test_alerts_go_to_their_teams_destination_else_the_default() -> None:
    hook, default, team = sink([0.0])
    assert hook.route(alert(1))[1] is team
    assert hook.route(alert(2, team="key-accounts"))[1] is default


def test_held_alerts_block_the_commit_until_their_digest_is_posted() -> None:
    clock = [1_000.0]
    hook, _, team = sink(clock)
    tp = TopicPartition("cx.alerts", 0)
    admitted = []
    for offset in range(4):  # two posted one by one, two held
        held = not hook.budget.admit("smb-support", "warning",
                                     _held(tp, offset, alert(offset)), clock[0])
        if held:
            hook.held_offsets.setdefault(tp, set()).add(offset)
        admitted.append(not held)
    assert admitted == [True, True, False, False]
    assert hook.commit_point(tp, 4) == 2  # not past the first held alert
    consumer = Consumer({tp}, 4)
    assert asyncio.run(hook.post_digests(consumer)) == 0  # not due yet
    clock[0] += 600
    assert asyncio.run(hook.post_digests(consumer)) == 2
    assert len(team.posted) == 1 and team.posted[0].startswith("digest-")
    assert consumer.commits == [{tp: 4}]  # now everything read is committed
    assert hook.commit_point(tp, 4) == 4


def test_a_revoked_partition_drops_its_held_alerts_for_the_next_owner() -> None:
    clock = [0.0]
    hook, _, _ = sink(clock)
    tp, other = TopicPartition("cx.alerts", 0), TopicPartition("cx.alerts", 1)
    for offset, where in enumerate([tp, tp, tp, other]):
        if not hook.budget.admit("smb-support", "warning", _held(where, offset,
                                                                  alert(offset)), 0.0):
            hook.held_offsets.setdefault(where, set()).add(offset)
    hook.forget_held({tp})
    assert hook.budget.held() == 1 and tp not in hook.held_offsets


def _held(tp: TopicPartition, offset: int, item: Alert) -> Any:
    from cxstream.streams.webhook_sink import Held

    return Held(tp, offset, item)
