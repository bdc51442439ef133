"""The alert cases as a worker keeps them (plain dicts as tables, no Faust, no broker):
events fold into cases, deadlines escalate, commands act as their user, follow-ups are
published before the case is written, and a worker killed between the two publishes the
same follow-ups again after recovering from the changelog."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from cxstream.alerts.config import Lifecycle, load_rules
from cxstream.alerts.lifecycle import InvalidCommand, TransitionRefused
from cxstream.alerts.receivers import delivery_id
from cxstream.schemas.outputs import Alert
from cxstream.streams.alerting.cases import AlertCases, AlertEvent, CaseNotFound, case_row
from cxstream.streams.kafka.changelog import BulkChangelog
from cxstream.streams.metrics import WorkerMetrics
from cxstream.streams.users import MACHINE, Principal
from cxstream.streams.web.alert_lists import filter_rows
from cxstream.streams.web.queries import page
from testkit.support import CasesTable

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CONFIG = load_rules().model_copy(update={"lifecycle": Lifecycle(
    escalation_targets={"smb-support": "smb-leads"})})
ALICE = Principal("alice", ("smb-support",))
BOB = Principal("bob", ("key-accounts",))
TOPIC = "cx.alert-lifecycle"


class Killed(Exception):
    pass


class Kafka:
    def __init__(self) -> None:
        self.changelog: dict[bytes, bytes | None] = {}
        self.follow_ups: list[str] = []
        self.order: list[str] = []
        self.kill_at_changelog = False

    async def follow_up(self, alert: Alert) -> Any:
        self.order.append("follow_up")
        self.follow_ups.append(delivery_id(alert))
        return asyncio.sleep(0)

    async def send(self, topic: str, partition: int, records: list[Any]) -> None:
        self.order.append("changelog")
        if self.kill_at_changelog:
            raise Killed
        assert topic == TOPIC
        self.changelog.update(records)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def cases_of(kafka: Kafka, clock: Clock) -> tuple[AlertCases, WorkerMetrics]:
    """A worker whose table is recovered from what the changelog holds."""
    table = CasesTable(TOPIC)
    table.update({k: v for k, v in kafka.changelog.items() if v is not None})
    metrics = WorkerMetrics(CollectorRegistry())
    return AlertCases(table, CONFIG, metrics, 3, BulkChangelog(kafka.send),
                      lambda: {0, 1, 2}, kafka.follow_up, clock), metrics


def alert(**overrides: Any) -> Alert:
    data: dict[str, Any] = {
        "alert_id": "detractor-1", "rule": "detractor", "severity": "warning",
        "customer_id": "c-1", "segment": "smb", "owner": "smb-support", "team": "smb-support",
        "summary": "NPS 3 from c-1", "reason": {"score": 3},
        "context": {"customer_value": 500.0}, "event_time": T0, "created_at": T0,
        "act_by": T0 + timedelta(hours=24)}
    data.update(overrides)
    return Alert.model_validate(data)


def raised(item: Alert) -> bytes:
    return AlertEvent(alert=item).model_dump_json(exclude_none=True).encode()


def resolution(alert_id: str, reason: str = "later NPS answer of 10") -> bytes:
    return AlertEvent(resolve=alert_id, reason=reason, at=T0).model_dump_json(
        exclude_none=True).encode()


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_alert_messages_open_a_case_once_and_a_fold_updates_it() -> None:
    kafka, clock = Kafka(), Clock()
    cases, metrics = cases_of(kafka, clock)
    assert run(cases.take_events([raised(alert()), raised(alert())])) == 1
    assert run(cases.take_events([raised(alert(occurrences=2))])) == 1
    case = cases.get("detractor-1")
    assert case is not None and [c.action for c in case.history] == ["raised", "updated"]
    assert kafka.changelog[b"detractor-1"] is not None
    assert metrics.alert_changes.labels("raised")._value.get() == 1


def test_a_resolution_publishes_its_follow_up_before_the_case_is_written() -> None:
    kafka, clock = Kafka(), Clock()
    cases, _ = cases_of(kafka, clock)
    run(cases.take_events([raised(alert())]))
    kafka.order.clear()
    run(cases.take_events([resolution("detractor-1")]))
    assert kafka.order == ["follow_up", "changelog"]
    assert kafka.follow_ups == ["detractor-1.resolved"]
    assert cases.get("detractor-1").status == "resolved"  # type: ignore[union-attr]
    # a resolution of an unknown or resolved alert changes nothing
    assert run(cases.take_events([resolution("detractor-1"), resolution("nope")])) == 0


def test_a_missed_deadline_escalates_once_with_a_follow_up_and_a_breach_counted() -> None:
    kafka, clock = Kafka(), Clock()
    cases, metrics = cases_of(kafka, clock)
    run(cases.take_events([raised(alert())]))
    clock.now = T0 + timedelta(hours=23)
    assert run(cases.check_deadlines()) == 0
    clock.now = T0 + timedelta(hours=24)
    assert run(cases.check_deadlines()) == 1
    case = cases.get("detractor-1")
    assert case is not None and case.owner == "smb-leads" and case.severity == "critical"
    assert kafka.follow_ups == ["detractor-1.escalated.1"]
    assert metrics.alert_sla_breaches.labels("detractor", "acknowledged")._value.get() == 1
    assert run(cases.check_deadlines()) == 0  # the new deadline is hours away


def test_commands_act_as_their_user_and_refuse_what_they_may_not_do() -> None:
    kafka, clock = Kafka(), Clock()
    cases, metrics = cases_of(kafka, clock)
    run(cases.take_events([raised(alert())]))
    with pytest.raises(CaseNotFound):
        run(cases.command("detractor-1", "ack", BOB, {}))  # not bob's team: not found
    clock.now = T0 + timedelta(minutes=30)
    case = run(cases.command("detractor-1", "ack", ALICE, {}))
    assert case.status == "acknowledged" and case.last_change.actor == "alice"
    assert metrics.alert_time_to_acknowledge.labels(
        "detractor", "warning")._sum.get() == 1_800
    with pytest.raises(TransitionRefused):
        run(cases.command("detractor-1", "ack", ALICE, {}))
    with pytest.raises(InvalidCommand):
        run(cases.command("detractor-1", "snooze", ALICE, {"until": "tomorrow"}))
    with pytest.raises(InvalidCommand):
        run(cases.command("detractor-1", "dance", ALICE, {}))
    case = run(cases.command("detractor-1", "resolve", MACHINE,
                             {"category": "fixed", "note": "refund sent"}))
    assert case.status == "resolved" and case.last_change.actor == "api"
    assert kafka.follow_ups == ["detractor-1.resolved"]


def test_a_worker_killed_before_the_case_is_written_publishes_the_same_follow_up_again(
        ) -> None:
    kafka, clock = Kafka(), Clock()
    cases, _ = cases_of(kafka, clock)
    run(cases.take_events([raised(alert())]))
    kafka.kill_at_changelog = True
    with pytest.raises(Killed):
        run(cases.take_events([resolution("detractor-1")]))
    kafka.kill_at_changelog = False
    recovered, _ = cases_of(kafka, clock)  # the next owner: the case as the changelog has it
    assert recovered.get("detractor-1").status == "open"  # type: ignore[union-attr]
    run(recovered.take_events([resolution("detractor-1")]))  # the same event, read again
    assert kafka.follow_ups == ["detractor-1.resolved", "detractor-1.resolved"]  # one id
    assert recovered.get("detractor-1").status == "resolved"  # type: ignore[union-attr]


def test_the_list_shows_each_user_what_they_may_see_sorted_and_paged() -> None:
    kafka, clock = Kafka(), Clock()
    cases, _ = cases_of(kafka, clock)
    run(cases.take_events([
        raised(alert(alert_id="a-late", act_by=T0 + timedelta(hours=24))),
        raised(alert(alert_id="a-soon", act_by=T0 + timedelta(hours=1))),
        raised(alert(alert_id="a-soon-critical", severity="critical",
                     act_by=T0 + timedelta(hours=1))),
        raised(alert(alert_id="b-keyacc", owner="am.b", team="key-accounts",
                     customer_id="c-2")),
    ]))
    rows = [case_row(case, T0) for case in cases.local()]
    mine = filter_rows(rows, {}, ALICE)
    assert [row["alert_id"] for row in mine] == ["a-soon-critical", "a-soon", "a-late"]
    assert [row["alert_id"] for row in filter_rows(rows, {}, BOB)] == ["b-keyacc"]
    assert len(filter_rows(rows, {}, Principal("lead", role="lead"))) == 4
    assert [r["alert_id"] for r in filter_rows(rows, {"severity": "critical"}, MACHINE)] == [
        "a-soon-critical"]
    assert filter_rows(rows, {"status": "resolved"}, MACHINE) == []
    assert len(filter_rows(rows, {"status": "unresolved"}, MACHINE)) == 4
    first = page(mine, {"limit": "2"})
    assert first["total"] == 3 and first["next_offset"] == 2 and len(first["alerts"]) == 2
    assert page(mine, {"limit": "2", "offset": "2"})["next_offset"] is None


def test_the_open_cases_for_the_metrics_follow_each_change_without_reading_the_table(
        ) -> None:
    from prometheus_client import CollectorRegistry as Registry

    from cxstream.streams.health.collectors import OpenAlertsCollector

    kafka, clock = Kafka(), Clock()
    cases, _ = cases_of(kafka, clock)
    run(cases.take_events([raised(alert(alert_id="a-1")), raised(alert(alert_id="a-2"))]))
    assert sorted(c.status for c in cases.index().open.values()) == ["open", "open"]  # read
    reads = []
    cases.stored = lambda owned: reads.append(1) or iter(())  # type: ignore[method-assign]
    run(cases.take_events([resolution("a-1"), raised(alert(alert_id="a-3",
                                                           severity="critical"))]))
    assert sorted(c.severity for c in cases.index().open.values()) == ["critical", "warning"]
    registry = Registry()
    registry.register(OpenAlertsCollector(cases.open_counts, lambda: T0 + timedelta(days=2)))
    assert registry.get_sample_value("cxstream_alerts_open", {
        "severity": "critical", "status": "open", "age_band": "gt_24h"}) == 1
    assert registry.get_sample_value("cxstream_alerts_overdue",
                                     {"severity": "warning"}) == 1
    assert reads == []  # no scrape and no change read the whole table
    cases.table_recovered()  # restored from the changelog: read once more
    assert list(cases.index().open.values()) == [] and reads == [1]


# -- at any volume ------------------------------------------------------------------------

def test_the_deadline_check_reads_only_the_cases_due() -> None:
    kafka, clock = Kafka(), Clock()
    cases, _ = cases_of(kafka, clock)
    run(cases.take_events([raised(alert(alert_id=f"a-{n}", act_by=T0 + timedelta(
        hours=1 if n < 3 else 48))) for n in range(3_000)]))
    cases.index()  # read at once, outside a loop (in a worker's loop: a slice at a time)
    reads: list[str] = []
    get = cases.get
    cases.get = lambda alert_id: reads.append(alert_id) or get(alert_id)  # type: ignore[method-assign]
    assert run(cases.check_deadlines()) == 0 and reads == []  # nothing due yet
    clock.now = T0 + timedelta(hours=2)
    assert run(cases.check_deadlines()) == 3
    assert sorted(reads) == ["a-0", "a-1", "a-2"]  # not 3,000
    escalated = cases.get("a-0")
    assert escalated is not None and escalated.escalations == 1
    reads.clear()
    clock.now = T0 + timedelta(hours=3)
    run(cases.check_deadlines())
    assert reads == []  # their new deadlines are later


def test_an_unresolved_list_reads_no_resolved_case() -> None:
    from cxstream.streams.web.alert_lists import local_rows

    kafka, clock = Kafka(), Clock()
    cases, _ = cases_of(kafka, clock)
    run(cases.take_events([raised(alert(alert_id=f"a-{n}")) for n in range(50)]))
    run(cases.take_events([resolution(f"a-{n}") for n in range(45)]))
    cases.local = lambda: pytest.fail("read every case")  # type: ignore[method-assign]
    share = local_rows(cases, {"status": "unresolved"})
    assert sorted(row["alert_id"] for row in share["alerts"]) == [f"a-{n}" for n in range(45, 50)]
    assert share["partitions"] == [0, 1, 2]


def test_resolved_cases_leave_after_the_retention_a_slice_at_a_time() -> None:
    kafka, clock = Kafka(), Clock()
    cases, metrics = cases_of(kafka, clock)
    run(cases.take_events([raised(alert(alert_id=f"a-{n}")) for n in range(30)]))
    run(cases.take_events([resolution(f"a-{n}") for n in range(20)]))
    clock.now = T0 + timedelta(days=29)
    assert run(cases.forget_resolved(30, slice_size=100)) == 0  # not yet
    clock.now = T0 + timedelta(days=31)
    deleted = 0
    for _ in range(4):  # 30 cases, 10 looked at per call: a whole walk in 3 calls
        deleted += run(cases.forget_resolved(30, slice_size=10))
    assert deleted == 20
    assert sorted(key for key, value in kafka.changelog.items() if value is None) == sorted(
        f"a-{n}".encode() for n in range(20))  # tombstones on the lifecycle topic
    assert len(cases.table) == 10 and all(cases.get(f"a-{n}") for n in range(20, 30))
    assert metrics.registry.get_sample_value("cxstream_alert_lifecycle_changes_total",
                                             {"action": "forgotten"}) == 20


def test_an_erased_customers_cases_are_redacted_open_or_resolved_and_others_kept() -> None:
    kafka, clock = Kafka(), Clock()
    cases, _ = cases_of(kafka, clock)
    run(cases.take_events([raised(alert(alert_id=f"a-{n}", customer_id=f"c-{n % 3}",
                                        context={"comment": f"secret of c-{n % 3}"}))
                           for n in range(9)]))
    run(cases.take_events([resolution("a-0")]))  # one of c-0's cases is resolved
    assert run(cases.redact_customer("c-0", "ada", slice_size=2)) == 3
    for n in range(9):
        raw = kafka.changelog[f"a-{n}".encode()] or b""
        assert (b"secret of c-0" in raw) is False
        assert (b"secret of c-1" in raw) is (n % 3 == 1)  # the others' cases untouched
    assert run(cases.redact_customer("c-0", "ada")) == 0  # nothing of c-0 is left
    assert [case.alert_id for case in cases.unresolved()
            if case.customer_id == "c-0"] == []


def test_the_index_keeps_a_summary_of_each_unresolved_case_not_the_case() -> None:
    """An open case with its alert's context takes kilobytes; the index (what the list,
    the inbox and the metrics read, for every unresolved case in memory) keeps a few
    hundred bytes of it, and a row built from either is the same."""
    import tracemalloc

    from cxstream.alerts import lifecycle as lc
    from cxstream.streams.alerting.case_index import CaseIndex

    now = datetime(2026, 12, 6, tzinfo=UTC)
    history = [{"event_id": f"e-{n}", "at": now.isoformat(), "channel": "phone",
                "touchpoint": "support", "text": "the parcel never came " * 12}
               for n in range(10)]
    index = CaseIndex()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    sizes = []
    for n in range(1_000):
        case = lc.open_case(alert(alert_id=f"a-{n}", context={
            "customer_value": 1234.5, "high_value": True, "recent_interactions": history,
            "comment": "nothing works " * 50}), "smb-support", now, CONFIG)
        sizes.append(len(case.model_dump_json()))
        index.update(case)
        assert case_row(case, now) == case_row(index.open[case.alert_id], now)
        del case
    per_case = (tracemalloc.get_traced_memory()[0] - before) / 1_000
    tracemalloc.stop()
    print(f"index: {per_case:.0f} bytes per open case, the case {min(sizes)} bytes of JSON")
    assert min(sizes) > 3_000 and per_case < 1_000, per_case


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(
    st.integers(0, 7),  # which alert
    st.sampled_from(["critical", "warning", "info"]),
    st.sampled_from(["open", "acknowledged", "snoozed", "resolved"]),
    st.integers(0, 3 * 86_400),  # created this many seconds before now
    st.one_of(st.none(), st.integers(-86_400, 86_400))), max_size=40))  # deadline from now
def test_the_metrics_counts_of_the_index_are_those_of_its_cases(
        changes: list[tuple[int, str, str, int, int | None]]) -> None:
    """Whatever changes the cases go through, the counts by age band and overdue that a
    scrape reads (bisections of the index's ordered times) are those of counting every
    unresolved case."""
    from cxstream.alerts import lifecycle as lc
    from cxstream.streams.alerting.case_index import CaseIndex

    now = datetime(2026, 12, 6, tzinfo=UTC)
    index = CaseIndex()
    for n, severity, status, age, due in changes:
        created = now - timedelta(seconds=age)
        deadline = None if due is None else now + timedelta(seconds=due)
        case = lc.open_case(alert(alert_id=f"a-{n}", created_at=created), "smb-support",
                            created, CONFIG).model_copy(update={
                                "severity": severity, "status": status,
                                "act_by": deadline, "resolve_by": deadline,
                                "snoozed_until": now + timedelta(hours=1)})
        index.update(case)
    expected: dict[tuple[str, str, str], int] = {}
    overdue: dict[str, int] = {}
    for summary in index.open.values():
        band = lc.band_of_age((now - summary.created_at).total_seconds())
        key = (summary.severity, summary.status, band)
        expected[key] = expected.get(key, 0) + 1
        if summary.deadline is not None and summary.deadline <= now:
            overdue[summary.severity] = overdue.get(summary.severity, 0) + 1
    counts, late = index.counts(now)
    assert {key: count for key, count in counts.items() if count} == expected
    assert {key: count for key, count in late.items() if count} == overdue


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["critical", "warning", "info"]),
                          st.sampled_from(["smb-support", "key-accounts", "am.a"]),
                          st.integers(0, 5), st.integers(0, 3)), max_size=30),
       st.integers(0, 12), st.integers(1, 8), st.sampled_from([ALICE, BOB, MACHINE]))
def test_a_share_of_the_first_rows_pages_as_the_whole_list_does(
        specs: list[tuple[str, str, int, int]], offset: int, limit: int,
        viewer: Principal) -> None:
    """A worker answers with the first offset + limit rows its viewer may see (and how
    many match in all): the page made of them is the page of the whole list."""
    from cxstream.streams.web.alert_lists import local_rows

    cases, _ = cases_of(Kafka(), Clock())
    run(cases.take_events([raised(alert(
        alert_id=f"a-{n}", severity=severity, team=team, owner=team,
        customer_id=f"c-{n}", context={"customer_value": 100.0 * value},
        act_by=T0 + timedelta(hours=hours))) for n, (severity, team, hours, value)
        in enumerate(specs)]))
    query = {"status": "unresolved", "offset": str(offset), "limit": str(limit)}
    whole = page(filter_rows(local_rows(cases, {"status": "unresolved"})["alerts"], query,
                             viewer), query)
    share = local_rows(cases, {"status": "unresolved"}, viewer, offset + limit)
    assert len(share["alerts"]) == min(offset + limit, whole["total"])
    paged = page(filter_rows(share["alerts"], query, viewer), query, share["matched"])
    assert [row["alert_id"] for row in paged["alerts"]] == [
        row["alert_id"] for row in whole["alerts"]]
    assert (paged["total"], paged["next_offset"]) == (whole["total"], whole["next_offset"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(
    st.integers(0, 9),  # which alert
    st.sampled_from(["smb-support", "key-accounts"]),  # team
    st.sampled_from(["smb-support", "alice", "bob"]),  # owner
    st.sampled_from(["open", "acknowledged", "snoozed", "resolved"]),
    st.sampled_from(["critical", "warning", "info"]),
    st.sampled_from(["detractor", "high_value_at_risk"]),
    st.sampled_from(["c-1", "c-2", "c-3"]),
    st.one_of(st.none(), st.integers(-7_200, 7_200)),  # deadline from now, seconds
    st.integers(0, 3)), max_size=40),  # customer value, hundreds
    st.sets(st.sampled_from(["smb-support", "key-accounts"])),
    st.sets(st.sampled_from(["open", "acknowledged", "snoozed"]), min_size=1),
    st.one_of(st.none(), st.sampled_from(["c-1", "c-2", "c-3"])),
    st.one_of(st.none(), st.integers(0, 12)))
def test_the_index_selects_the_first_matching_cases_as_sorting_them_all_would(
        changes: list[tuple[int, str, str, str, str, str, str, int | None, int]],
        teams: set[str], statuses: set[str], customer: str | None,
        first: int | None) -> None:
    """Whatever the cases went through (owners, teams, statuses and deadlines changed,
    cases resolved), the index's first matching cases and their count are those of
    filtering and sorting every unresolved case."""
    from cxstream.alerts import lifecycle as lc
    from cxstream.streams.alerting.case_index import CaseIndex, summary_list_order

    now = datetime(2026, 12, 6, tzinfo=UTC)
    index = CaseIndex()
    for n, team, owner, status, severity, rule, customer_id, due, value in changes:
        deadline = None if due is None else now + timedelta(seconds=due, milliseconds=n)
        case = lc.open_case(alert(alert_id=f"a-{n}", rule=rule, customer_id=customer_id,
                                  context={"customer_value": 100.0 * value}),
                            team, now, CONFIG).model_copy(update={
                                "severity": severity, "status": status, "team": team,
                                "owner": owner, "act_by": deadline, "resolve_by": deadline,
                                "snoozed_until": now + timedelta(hours=1)})
        index.update(case)

    def wanted(bucket: tuple[str, str, str, str, str]) -> bool:
        return bucket[0] in teams and bucket[2] in statuses

    expected = sorted((summary for summary in index.open.values()
                       if summary.team in teams and summary.status in statuses
                       and (customer is None or summary.customer_id == customer)),
                      key=summary_list_order)
    matched, chosen = index.select(wanted, first, customer)
    assert matched == len(expected)
    assert [s.alert_id for s in chosen] == [
        s.alert_id for s in (expected if first is None else expected[:first])]


def test_a_critical_alert_comes_before_a_warning_due_at_the_same_minute() -> None:
    from cxstream.streams.alerting.case_index import list_order

    due = datetime(2026, 12, 6, 10, 0, tzinfo=UTC).timestamp()
    warning = list_order(due + 10, "warning", 5_000.0, "w")
    critical = list_order(due + 30, "critical", 10.0, "c")
    later_critical = list_order(due + 3_600, "critical", 10.0, "c2")
    assert sorted([warning, later_critical, critical]) == [critical, later_critical, warning]


def test_a_page_of_the_index_looks_at_its_buckets_and_its_rows_not_every_case() -> None:
    """20,000 unresolved cases in six buckets: the first 50 cost six bucket checks and
    50 rows, and the count is the buckets' sizes."""
    from cxstream.alerts import lifecycle as lc
    from cxstream.streams.alerting.case_index import CaseIndex

    now = datetime(2026, 12, 6, tzinfo=UTC)
    index = CaseIndex()
    for n in range(20_000):
        team = ("smb-support", "key-accounts")[n % 2]
        case = lc.open_case(alert(alert_id=f"a-{n}", severity=("critical", "warning",
                                                                 "info")[n % 3]),
                            team, now, CONFIG).model_copy(update={
                                "team": team, "owner": team,
                                "act_by": now + timedelta(seconds=n)})
        index.update(case)
    looked: list[Any] = []

    def wanted(bucket: tuple[str, str, str, str, str]) -> bool:
        looked.append(bucket)
        return bucket[0] == "smb-support"

    built = 0
    original = index.open.__class__.__getitem__

    class Counting(dict):  # type: ignore[type-arg]
        def __getitem__(self, key: str) -> Any:
            nonlocal built
            built += 1
            return original(self, key)

    index.open = Counting(index.open)
    matched, chosen = index.select(wanted, 50)
    assert matched == 10_000 and len(looked) == 6 and built == 50
    # the most severe first (critical: every sixth case of the team), then the soonest due
    assert [s.alert_id for s in chosen] == [f"a-{n}" for n in range(0, 300, 6)]


def test_after_a_recovery_the_open_cases_are_read_a_slice_at_a_time_in_a_running_loop(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker reading a million stored cases must not block its loop for 16 s: in a
    running loop the index is read a slice at a time in a task; meanwhile the
    list answers IndexNotReady (503), the deadline check waits, the open-alert gauges are
    left out, and a case changed meanwhile keeps its change. The index it ends with is
    the one read at once."""
    from cxstream.streams.alerting import case_index
    from cxstream.streams.alerting import cases as module
    from cxstream.streams.alerting.case_index import IndexNotReady
    from cxstream.streams.health.collectors import OpenAlertsCollector

    monkeypatch.setattr(module, "INDEX_SLICE_SECONDS", 0.0)  # a slice: CLOCK_EVERY cases
    monkeypatch.setattr(case_index, "CLOCK_EVERY", 4)
    kafka = Kafka()
    first, _ = cases_of(kafka, Clock())
    run(first.take_events([raised(alert(alert_id=f"a-{n}", customer_id=f"c-{n}",
                                        act_by=T0 + timedelta(minutes=n + 1)))
                           for n in range(30)]))
    run(first.take_events([resolution(f"a-{n}") for n in range(0, 30, 3)]))
    clock = Clock()
    recovered, _ = cases_of(kafka, clock)  # a new worker: the table from the changelog
    at_once, _ = cases_of(kafka, Clock())
    expected = sorted(at_once.index().open)  # no loop: read at once

    async def scenario() -> tuple[int, int, list[str]]:
        with pytest.raises(IndexNotReady):
            recovered.index()
        assert list(OpenAlertsCollector(recovered.open_counts, clock).collect()) == []
        clock.now = T0 + timedelta(hours=2)  # every deadline has passed
        escalated_while_reading = await recovered.check_deadlines()
        await recovered.take_events([resolution("a-29")])  # a change while reading
        slices = 0
        while True:
            try:
                index = recovered.index()
                break
            except IndexNotReady:
                slices += 1
                await asyncio.sleep(0)
        return escalated_while_reading, slices, sorted(index.open)

    escalated, slices, found = run(scenario())
    assert escalated == 0 and slices >= 2
    assert found == [alert_id for alert_id in expected if alert_id != "a-29"]
    assert "a-29" in at_once.index().open  # the stored value the walk skipped was open


def test_the_index_keeps_nothing_for_cases_resolved_or_moved_away() -> None:
    """What the index holds is bounded by the unresolved cases: once every case is
    resolved (after moving between owners and teams), no bucket, customer entry, count
    or due time is left behind."""
    from cxstream.alerts import lifecycle as lc
    from cxstream.streams.alerting.case_index import CaseIndex

    now = datetime(2026, 12, 6, tzinfo=UTC)
    index = CaseIndex()
    cases = []
    for n in range(300):
        case = lc.open_case(alert(alert_id=f"a-{n}", customer_id=f"c-{n % 7}"),
                            "smb-support", now, CONFIG)
        for owner in ("alice", "bob", f"agent-{n}"):  # reassigned: a bucket per owner
            case = case.model_copy(update={"owner": owner})
            index.update(case)
        cases.append(case)
    assert len(index) == 300 and len(index._buckets) == 300  # one per agent-n owner
    for case in cases:
        index.update(case.model_copy(update={"status": "resolved"}))
    assert len(index) == 0 and index._buckets == {} and index._by_customer == {}
    by_band, overdue = index.counts(now)  # keyed by severity and status only: bounded
    assert set(by_band.values()) == {0} and set(overdue.values()) <= {0}
    assert index.due(now.timestamp() + 10**9) == []


WORDS = ["courier", "refund", "billing", "late", "app", "c-7", "smb", "consumer"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.lists(st.sampled_from(WORDS), min_size=1, max_size=4),
                          st.booleans()), min_size=1, max_size=40),
       st.lists(st.sampled_from(WORDS), min_size=1, max_size=3))
def test_a_text_search_finds_the_cases_holding_every_word_and_forgets_resolved_ones(
        cases: list[tuple[list[str], bool]], query: list[str]) -> None:
    """The index's search equals a scan of the open cases, and a resolved case leaves
    no word behind (the word index holds only what is open)."""
    from cxstream.alerts import lifecycle as lc
    from cxstream.streams.alerting.case_index import CaseIndex, summary_words

    index = CaseIndex()
    for n, (words, resolve) in enumerate(cases):
        case = lc.open_case(alert(alert_id=f"a-{n}", summary=" ".join(words)),
                            "smb-support", T0, CONFIG)
        index.update(case)
        if resolve:
            index.remove(f"a-{n}")
    wanted = {word.lower() for word in query}
    expected = {alert_id for alert_id, summary in index.open.items()
                if wanted <= summary_words(summary)}
    assert index.search(" ".join(query)) == expected
    for n in range(len(cases)):
        index.remove(f"a-{n}")
    assert index._by_word == {}  # the bound: nothing of a closed case stays
    assert index.search("!!!") == set()  # no word: nothing, not everything


def test_a_search_finds_the_few_cases_of_a_rare_word_among_thousands() -> None:
    from cxstream.alerts import lifecycle as lc
    from cxstream.streams.alerting.case_index import CaseIndex

    index = CaseIndex()
    for n in range(5_000):
        words = "NPS 3 about delivery" + (" courier" if n % 1_000 == 0 else "")
        index.update(lc.open_case(alert(alert_id=f"a-{n}", summary=words), "smb-support",
                                  T0, CONFIG))
    assert index.search("Courier delivery") == {f"a-{n}" for n in range(0, 5_000, 1_000)}
    assert len(index._by_word["courier"]) == 5


def test_a_case_indexes_at_most_32_words_of_at_most_64_characters() -> None:
    from cxstream.streams.alerting.case_index import MAX_WORD_CHARS, MAX_WORDS, words_of

    text = " ".join(f"word{n}" for n in range(500)) + " " + "x" * 1_000
    assert len(words_of(text)) == MAX_WORDS == 32
    assert max(len(word) for word in words_of("x" * 1_000)) == MAX_WORD_CHARS == 64
