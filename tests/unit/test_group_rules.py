"""Recurring issues and segment drops at their edges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cxstream.alerts.config import load_rules
from cxstream.alerts.group_rules import (
    IssueWindow,
    Signal,
    fold_signal,
    segment_drop_alerts,
    signals_of,
)
from cxstream.schemas.events import Feedback, Interaction
from cxstream.scoring.conventions import Conventions
from cxstream.scoring.customer import StateRules
from cxstream.scoring.tallies import Tally
from testkit.support import feedback, interaction

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CONFIG = load_rules()
CONVENTIONS = Conventions()


def signal(customer: str, minutes: float = 0) -> Signal:
    return Signal(kind="touchpoint", key="delivery", customer_id=customer, event_id=customer,
                  at=T0 + timedelta(minutes=minutes), detail="NPS 2")


def test_recurring_issue_fires_at_the_fifth_distinct_customer_once() -> None:
    window, raised = IssueWindow(), []
    for offset, customer in enumerate(["a", "b", "a", "c", "d", "d", "e", "f"]):
        window, alert = fold_signal(window, signal(customer), offset, CONFIG, T0)
        raised.append(alert)
    assert [offset for offset, alert in enumerate(raised) if alert] == [6]
    alert = raised[6]
    assert alert is not None and alert.reason["distinct_customers"] == 5
    assert alert.owner == "cx-managers" and alert.customer_id is None
    assert window.count == 6


def test_four_customers_are_not_enough() -> None:
    window = IssueWindow()
    for offset, customer in enumerate("abcd"):
        window, alert = fold_signal(window, signal(customer), offset, CONFIG, T0)
        assert alert is None


def test_redelivered_signals_change_nothing_and_resend_their_alert() -> None:
    window = IssueWindow()
    for offset, customer in enumerate("abcde"):
        window, alert = fold_signal(window, signal(customer), offset, CONFIG, T0)
    assert alert is not None
    again, resent = fold_signal(window, signal("e"), 4, CONFIG, T0)
    assert again == window and resent == alert
    assert fold_signal(window, signal("b"), 1, CONFIG, T0) == (window, None)


def test_signals_come_from_negative_answers_and_failed_interactions_with_topics() -> None:
    rules = StateRules()
    negative = Feedback.model_validate(feedback(score=2, touchpoint="checkout"))
    assert [(s.kind, s.key) for s in signals_of(negative, ["delivery", "complaint"], "smb",
                                                CONFIG, rules)] == [
        ("touchpoint", "checkout"), ("topic", "delivery")]
    # a topic named like the touchpoint is one issue, counted once
    at_delivery = Feedback.model_validate(feedback(score=2, touchpoint="delivery"))
    assert [(s.kind, s.key) for s in signals_of(at_delivery, ["delivery"], None, CONFIG,
                                                rules)] == [("touchpoint", "delivery")]
    assert signals_of(Feedback.model_validate(feedback(score=9)), [], None, CONFIG, rules) == []
    failed = Interaction.model_validate(interaction(outcome="failure", touchpoint="billing"))
    assert [s.key for s in signals_of(failed, [], None, CONFIG, rules)] == ["billing"]
    fine = Interaction.model_validate(interaction(outcome="success"))
    assert signals_of(fine, [], None, CONFIG, rules) == []


def tally(promoters: int, passives: int, detractors: int) -> Tally:
    return Tally(promoters=promoters, passives=passives, detractors=detractors)


def test_segment_drop_fires_when_large_and_beyond_the_margin_of_error() -> None:
    baseline = tally(600, 200, 200)     # NPS 40, n 1000
    current = tally(20, 20, 60)         # NPS -40, n 100
    [alert] = segment_drop_alerts("smb", current, baseline, "day", 0, CONFIG, CONVENTIONS, T0)
    assert alert.rule == "segment_drop" and alert.segment == "smb"
    assert alert.reason["drop"] == 80.0 and alert.reason["current_n"] == 100


def test_segment_drop_is_silent_with_small_samples() -> None:
    baseline = tally(600, 200, 200)
    current = tally(2, 2, 25)           # n 29 < 30
    assert segment_drop_alerts("smb", current, baseline, "day", 0, CONFIG, CONVENTIONS,
                               T0) == []


def test_segment_drop_is_silent_within_the_margin_of_error() -> None:
    baseline = tally(18, 6, 6)          # NPS 40, n 30
    current = tally(14, 8, 8)           # NPS 20, n 30: drop 20 > 10 but the error is ~ 40
    assert segment_drop_alerts("smb", current, baseline, "day", 0, CONFIG, CONVENTIONS,
                               T0) == []


def test_segment_drop_is_silent_below_the_set_margin() -> None:
    baseline = tally(5_000, 3_000, 2_000)  # NPS 30
    current = tally(4_600, 3_200, 2_200)   # NPS 24: beyond the error, below the margin 10
    assert segment_drop_alerts("smb", current, baseline, "day", 0, CONFIG, CONVENTIONS,
                               T0) == []


async def test_issue_windows_expire_after_their_retention_from_owned_partitions_only() -> None:
    from types import SimpleNamespace
    from typing import Any

    from cxstream.alerts.config import load_rules
    from cxstream.alerts.group_rules import issue_window_expired, issue_window_key
    from cxstream.streams.alerting.recurring_issues import IssueWindowExpiry
    from cxstream.streams.kafka.changelog import BulkChangelog

    config = load_rules()
    hour = config.recurring_issue.window_minutes * 60
    now = 1_800_000_000.0
    sent: list[tuple[str, int, list[Any]]] = []

    async def send(topic: str, partition: int, records: list[Any]) -> None:
        sent.append((topic, partition, records))

    table = SimpleNamespace(data={}, key_serializer="raw", value_serializer="raw",
                            changelog_topic=SimpleNamespace(get_topic_name=lambda: "cl"))
    table.keys = lambda: list(table.data)
    groups = [f"touchpoint:tp-{n}" for n in range(12)]
    old, recent = int(now - 3 * 86_400) // hour * hour, int(now) // hour * hour
    for group in groups:
        table.data[issue_window_key(group, old)] = b"{}"
        table.data[issue_window_key(group, recent)] = b"{}"
    expiry = IssueWindowExpiry(table, config, 86_400, 3, BulkChangelog(send), lambda: {0, 1})
    owned = [g for g in groups if expiry.partition_of(g) in {0, 1}]
    assert 0 < len(owned) < len(groups)
    assert await expiry.maybe_sweep(now) == len(owned)
    assert await expiry.maybe_sweep(now + 1) == 0  # once a minute at most
    remaining = set(table.data)
    assert all(issue_window_key(g, recent) in remaining for g in groups)
    assert {issue_window_key(g, old) for g in groups} - remaining == {
        issue_window_key(g, old) for g in owned}
    assert all(value is None for _, _, records in sent for _, value in records)  # tombstones
    assert issue_window_expired(old, config.recurring_issue, now, 86_400)
    assert not issue_window_expired(recent, config.recurring_issue, now, 86_400)


async def test_recovered_issue_windows_resolve_once_and_the_table_is_read_once() -> None:
    from types import SimpleNamespace
    from typing import Any

    from cxstream.alerts.config import load_rules
    from cxstream.alerts.group_rules import IssueWindow, issue_window_key
    from cxstream.streams.alerting.recurring_issues import IssueWindowExpiry
    from cxstream.streams.kafka.changelog import BulkChangelog

    config = load_rules()
    width = config.recurring_issue.window_minutes * 60
    now = 1_800_000_000.0
    start = int(now) // width * width - 3 * width  # its next window is over
    resolutions: list[str] = []

    async def send(topic: str, partition: int, records: list[Any]) -> None:
        return None

    async def acked() -> None:
        return None

    async def resolution(alert_id: str, reason: str, at: Any) -> Any:
        resolutions.append(alert_id)
        return acked()

    scans = []
    table = SimpleNamespace(data={}, key_serializer="raw", value_serializer="raw",
                            changelog_topic=SimpleNamespace(get_topic_name=lambda: "cl"))
    table.keys = lambda: scans.append(1) or list(table.data)
    table.get = table.data.get
    quiet = IssueWindow(count=1).model_dump_json().encode()
    alerted = IssueWindow(count=5, alert={"alert_id": "a-1"}).model_dump_json().encode()
    table.data[issue_window_key("touchpoint:delivery", start)] = alerted
    table.data[issue_window_key("touchpoint:web", start)] = quiet
    expiry = IssueWindowExpiry(table, config, 30 * 86_400, 1, BulkChangelog(send), lambda: {0})
    publisher = SimpleNamespace(resolution=resolution)
    assert await expiry.resolve_recovered(now, publisher) == 1  # type: ignore[arg-type]
    assert resolutions == ["a-1"]
    assert IssueWindow.model_validate_json(
        table.data[issue_window_key("touchpoint:delivery", start)]).resolved
    # a window alerted later is followed from its write, not found by a new scan
    later = IssueWindow(count=4, alert={"alert_id": "a-2"})
    key = issue_window_key("topic:billing", start)
    table.data[key] = later.model_dump_json().encode()
    expiry.note(key, later)
    assert await expiry.resolve_recovered(now, publisher) == 1  # type: ignore[arg-type]
    assert resolutions == ["a-1", "a-2"]
    assert await expiry.resolve_recovered(now, publisher) == 0  # type: ignore[arg-type]
    assert len(scans) == 1
    expiry.table_recovered()  # after a recovery the table is read again
    assert await expiry.resolve_recovered(now, publisher) == 0  # type: ignore[arg-type]
    assert len(scans) == 2


def test_issue_window_keys_are_capped_per_partition_and_window() -> None:
    """Random touchpoints past the group-key cap count in the partition's overflow window,
    which raises no alert; known groups keep counting and alerting."""
    from types import SimpleNamespace
    from typing import Any

    from prometheus_client import CollectorRegistry

    from cxstream.alerts.group_rules import parse_issue_window_key
    from cxstream.streams.alerting.recurring_issues import IssueWindowExpiry
    from cxstream.streams.alerting.recurring_issues import fold_signal_event as _fold_signal_event
    from cxstream.streams.metrics import WorkerMetrics

    async def send(topic: str, partition: int, records: list[Any]) -> None:
        return None

    from cxstream.streams.kafka.changelog import BulkChangelog

    table: dict[bytes, bytes] = {}
    metrics = WorkerMetrics(CollectorRegistry())
    expiry = IssueWindowExpiry(table, CONFIG, 86_400 * 365, 1, BulkChangelog(send),
                               lambda: {0}, max_keys=3, metrics=metrics)
    offset = 0

    def fold(key: str, customer: str) -> Any:
        nonlocal offset
        offset += 1
        found = Signal(kind="touchpoint", key=key, customer_id=customer, event_id=customer,
                       at=T0, detail="NPS 2")
        event = SimpleNamespace(message=SimpleNamespace(
            value=found.model_dump_json().encode(), offset=offset, partition=0))
        return _fold_signal_event(event, table, CONFIG, 86_400 * 365, expiry)

    raised = [fold(f"random-{n}", f"c{n}") for n in range(50)]
    raised += [fold("random-0", f"d{n}") for n in range(CONFIG.recurring_issue.min_customers)]
    groups = {parse_issue_window_key(key)[0] for key in table}
    assert groups == {"touchpoint:random-0", "touchpoint:random-1", "touchpoint:random-2",
                      "(other)#0:touchpoint"}
    overflow = [key for key in table if key.startswith(b"(other)#0")]
    assert IssueWindow.model_validate_json(table[overflow[0]]).count == 47
    assert [alert.reason["key"] for alert in raised if alert is not None] == ["random-0"]
    assert expiry.partition_of("(other)#0:touchpoint") == 0
    assert metrics.registry.get_sample_value("cxstream_group_keys_overflow_total",
                                             {"dimension": "issue_touchpoint"}) == 47
