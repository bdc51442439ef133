"""Two workers share the partitions; either answers for any customer and any group."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from cxstream.cli.processes import WorkerProcess
from cxstream.cli.scrape import total
from cxstream.streams.settings import load_settings
from testkit.support import (
    TOKEN,
    Api,
    alerts_on_topic,
    base_time,
    configure,
    free_port,
    known_events,
    send,
    start,
    wait_until,
)

pytestmark = pytest.mark.integration


def poll(check: Callable[[], tuple[bool, object]], what: str, timeout: float = 90) -> None:
    """Call ``check`` until its first value is true; fail with its second otherwise."""
    def attempt() -> tuple[bool, object]:
        try:
            return check()
        except httpx.HTTPError as exc:  # a worker's web server is not up yet
            return False, repr(exc)

    deadline = time.monotonic() + timeout
    done, seen = attempt()
    while not done and time.monotonic() < deadline:
        time.sleep(0.3)
        done, seen = attempt()
    assert done, f"{what}: {seen}"


def wait_until_both_own_partitions(first: WorkerProcess, second: WorkerProcess,
                                   partitions: int) -> None:
    def owned() -> tuple[bool, object]:
        counts = [total(w.metrics(), "cxstream_partitions_assigned") for w in (first, second)]
        return min(counts) >= 1 and sum(counts) == partitions, counts

    poll(owned, "partitions owned")


def wait_for_sum(workers: list[WorkerProcess], name: str, expected: float,
                 **labels: str) -> None:
    def reached() -> tuple[bool, object]:
        value = sum(total(w.metrics(), name, **labels) for w in workers)
        return value >= expected, f"{value} of {expected}"

    poll(reached, f"{name}{labels}")


def start_two(first_map: dict[str, str], tmp_path: Path
              ) -> tuple[Any, WorkerProcess, WorkerProcess]:
    """Settings and two workers of one group, each with its own web port and data folder.

    Started together, the two form the group in one rebalance (the broker waits 3 s for
    members); a rebalance of a worker already consuming lost messages before the Faust
    fix (README, Known Faust risks)."""
    second_map = {**first_map, "web_port": str(free_port()),
                  "data_dir": str(tmp_path / "second")}
    return (load_settings({}, **first_map), start(first_map, tmp_path, "first"),
            start(second_map, tmp_path, "second"))


def test_queries_are_answered_by_either_worker(isolated: dict[str, str], tmp_path: Path) -> None:
    settings, first, second = start_two(
        configure(isolated, partitions="4", session_timeout_seconds="8"), tmp_path)
    t = base_time()
    profiles, answers, interactions = known_events(t)
    try:
        wait_until_both_own_partitions(first, second, 4)
        send(settings, settings.topic_customers, profiles)
        wait_for_sum([first, second], "cxstream_events_folded_total", len(profiles),
                     kind="customer")  # profiles first: answers count in their segment
        send(settings, settings.topic_feedback, answers)
        send(settings, settings.topic_interactions, interactions)
        wait_for_sum([first, second], "cxstream_events_consumed_total",
                     len(profiles) + len(answers) + len(interactions))
        owners = [worker.wait_for("cxstream_events_consumed_total", 0) > 0
                  for worker in (first, second)]
        assert all(owners), "both workers should own some of the partitions"
        at = t.isoformat()
        for port in (first.web_port, second.web_port):
            api = Api(port)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                response = api.client.get("/api/scores/segment/enterprise", params={"at": at})
                if response.status_code == 200:
                    break
                assert response.status_code == 503  # rebalancing: say so, never a wrong sum
                time.sleep(1)
            day = response.json()["windows"]["day"]["current"]["nps"]
            assert (day["score"], day["n"]) == (25.0, 4)
            # the answers behind the score, from both workers' partitions, newest first
            recent = api.get("/api/scores/segment/enterprise/answers", survey="nps")
            assert [a["event_id"] for a in recent["answers"]] == ["f2", "f1", "f5", "f10"]
            assert recent["total"] == 4 and recent["answers"][0]["customer_id"] == "c1"
            two = api.get("/api/scores/segment/enterprise/answers", survey="nps", limit="2")
            assert [a["event_id"] for a in two["answers"]] == ["f2", "f1"]
            for customer_id in ("c1", "c2", "c3", "c4"):
                assert api.get(f"/api/customers/{customer_id}")["customer_id"] == customer_id
            assert api.get("/api/customers/c1")["last_scores"]["nps"]["event_id"] == "f2"
            # each worker adds its partitions' issue counts to the other's
            issues = api.get("/api/priorities", at=at)["issues"]
            assert [(i["issue"], i["customers"], i["silent"], i["value"]) for i in issues] \
                == [("touchpoint:support", 2, 0, 100_000.0), ("touchpoint:checkout", 1, 0,
                                                              500.0)]
        # the alert list pages the merge of both workers' first rows: every alert on the
        # topic once, the same total and order from either worker, one row per page
        raised = {alert["alert_id"] for alert in alerts_on_topic(settings)}
        lists = []
        for port in (first.web_port, second.web_port):
            api = Api(port)

            def all_listed() -> bool:
                response = api.client.get("/api/alerts", params={"limit": "100"})  # noqa: B023
                return response.status_code == 200 and response.json()["total"] == len(raised)
            assert wait_until(all_listed, 60)  # 503 while partitions settle
            whole = api.get("/api/alerts", limit="100")["alerts"]
            paged: list[str] = []
            offset: int | None = 0
            while offset is not None:
                one = api.get("/api/alerts", limit="1", offset=str(offset))
                assert one["total"] == len(raised)
                paged += [row["alert_id"] for row in one["alerts"]]
                offset = one["next_offset"]
            assert paged == [row["alert_id"] for row in whole]
            lists.append(paged)
        assert lists[0] == lists[1] and set(lists[0]) == raised and raised
    finally:
        assert first.stop() == 0
        assert second.stop() == 0


@pytest.mark.parametrize("how", ["stopped", "killed"])
def test_one_of_two_workers_leaving_mid_stream_loses_nothing_and_duplicates_no_alert(
    how: str, isolated: dict[str, str], tmp_path: Path
) -> None:
    """Stopped: it drains and commits before leaving. Killed (SIGKILL): it commits nothing
    more, the survivor takes over after the session timeout and reads again what the
    killed worker processed since its last commit."""
    from cxstream.cli.consistency import batch_tallies, differences, stream_tallies
    from testkit.faults import in_flight_reposts
    from testkit.support import (
        SECRET,
        alerts_on_topic,
        feedback,
        profile,
        unbudgeted_rules,
        wait_until,
    )
    from tests.receiver import Receiver

    receiver = Receiver(free_port(), SECRET).start()
    settings, first, second = start_two(
        configure(isolated, partitions="4", session_timeout_seconds="8",
                  webhook_url=receiver.url, webhook_secret=SECRET,
                  # one alert per customer, as the cooldown makes it: the promoter answers
                  # among these must not resolve it (a later detractor would raise a new one)
                  rules_file=unbudgeted_rules(tmp_path, {
                      "detractor": {"auto_resolve": False},
                      "high_value_at_risk": {"auto_resolve": False}}),
                  allowed_lateness_seconds=str(10 * 86_400)), tmp_path)
    t = base_time()
    customers = [f"m{n}" for n in range(40)]
    profiles = [profile(customer_id=c, segment=("smb", "enterprise")[n % 2], value=10 + n,
                        updated_at=t.isoformat()) for n, c in enumerate(customers)]
    answers = [feedback(event_id=f"e{n}", customer_id=customers[n % 40], score=n % 11,
                        occurred_at=(t + timedelta(seconds=n)).isoformat())
               for n in range(800)]
    try:
        wait_until_both_own_partitions(first, second, 4)
        send(settings, settings.topic_customers, profiles)
        wait_for_sum([first, second], "cxstream_events_folded_total", len(profiles),
                     kind="customer")
        send(settings, settings.topic_feedback, answers[:400])
        wait_for_sum([first, second], "cxstream_events_consumed_total", len(profiles) + 100)
        folded_by_first = {key: value for key, value in first.metrics().items()
                           if key[0] == "cxstream_events_folded_total"}  # just before
        killed_at = time.time()
        if how == "stopped":
            assert first.stop() == 0  # mid-stream: its partitions move to the second worker
        else:
            assert first.stop(signal.SIGKILL) == -signal.SIGKILL
        send(settings, settings.topic_feedback, answers[400:])
        survivor = Api(second.web_port)
        expected = batch_tallies(settings)
        found: list[object] = ["not compared yet"]
        deadline = time.monotonic() + 120
        while found and time.monotonic() < deadline:
            time.sleep(2)
            try:
                found = differences(expected, stream_tallies(
                    f"http://127.0.0.1:{second.web_port}", TOKEN))
            except Exception as exc:
                found = [repr(exc)]
        if found:  # printed whole: pytest shows a failed test's output, not a long message
            print("differing tallies:", found[:3])
            print("missing offsets per partition:",
                  missing_by_partition(settings, survivor, customers))
            print("answers per partition:", answers_per_partition(settings, survivor))
            print("folded by the first worker before its stop:", folded_by_first)
            print("folded by the survivor:", {key: value for key, value in
                                              second.metrics().items()
                                              if key[0] == "cxstream_events_folded_total"})
        assert found == [], "the survivor's tallies differ from the batch recomputation"
        assert survivor.get("/api/customers/m0")["customer_id"] == "m0"
        detractor_customers = {a["customer_id"] for a in answers if a["score"] <= 6}
        on_topic = alerts_on_topic(settings)
        first_messages = {a["alert_id"]: a for a in on_topic if a["occurrences"] == 1}
        # a high-value detractor's one alert is high_value_at_risk, with detractor fired too
        customer_alerts = [a for a in first_messages.values() if a["customer_id"]]
        assert {a["customer_id"] for a in customer_alerts
                if "detractor" in a["reason"]["rules_fired"]} == detractor_customers
        assert len(customer_alerts) == len(detractor_customers)  # one alert per customer
        assert wait_until(lambda: set(receiver.alert_ids()) >= set(first_messages), 60)
        reposts = len(receiver.received) - len(set(receiver.delivery_ids()))
        # a SIGKILL can cut off the webhook consumer's commit of an alert it had just
        # posted: posted again, with the same webhook-id; any other repost is a defect
        explained = in_flight_reposts(receiver.received, [killed_at]) if how == "killed" else 0
        assert reposts == explained, "posted twice"
    finally:
        assert second.stop() == 0
        receiver.stop()


def missing_by_partition(settings: Any, api: Api, customers: list[str]) -> dict[int, list[int]]:
    """Offsets of the feedback messages no customer state shows (each customer keeps its
    20 answers), per partition: what a failure report needs."""
    import asyncio
    import json

    from cxstream.streams.kafka.plain_clients import read_topic

    where = {json.loads(record.value)["event_id"]: (record.partition, record.offset)
             for record in asyncio.run(read_topic(settings, settings.topic_feedback))}
    applied = {score["event_id"] for customer in customers
               for score in api.get(f"/api/customers/{customer}")["recent_scores"]}
    missing: dict[int, list[int]] = {}
    for event_id, (partition, offset) in sorted(where.items(), key=lambda kv: kv[1]):
        if event_id not in applied:
            missing.setdefault(partition, []).append(offset)
    return missing


def answers_per_partition(settings: Any, api: Api) -> dict[str, dict[int, Any]]:
    """Where the NPS answers of one slot (channel web, long window) went, per input
    partition: on the topic, the group's committed offset, the last changelog value of
    the slot's partial tally (count and offset) and the survivor's memory of it."""
    import asyncio
    import json

    from aiokafka import AIOKafkaConsumer, TopicPartition

    from cxstream.streams.kafka.clients import aiokafka_options
    from cxstream.streams.kafka.plain_clients import read_topic

    report: dict[str, dict[int, Any]] = {"on_topic": {}, "committed": {}, "in_changelog": {},
                                         "changelog_records": {}, "in_memory": {}}
    for record in asyncio.run(read_topic(settings, settings.topic_feedback)):
        report["on_topic"][record.partition] = report["on_topic"].get(record.partition, 0) + 1

    async def committed() -> dict[int, Any]:
        consumer = AIOKafkaConsumer(**aiokafka_options(settings), group_id=settings.app_id,
                                    enable_auto_commit=False)
        await consumer.start()
        try:
            return {p: await consumer.committed(TopicPartition(settings.topic_feedback, p))
                    for p in report["on_topic"]}
        finally:
            await consumer.stop()

    report["committed"] = asyncio.run(committed())
    latest: dict[str, Any] = {}
    changelog = f"{settings.app_id}-group_partials-changelog"
    for record in asyncio.run(read_topic(settings, changelog)):
        latest[(record.key or b"").decode()] = record.value
        report["changelog_records"][record.partition] = (
            report["changelog_records"].get(record.partition, 0) + 1)
    slot = None
    for key, value in latest.items():
        parts = key.split("|")
        if value and len(parts) == 5 and parts[1:3] == ["channel", "7d"] and parts[4] == "web":
            partial = json.loads(value)
            report["in_changelog"][int(parts[0])] = (partial["tally"]["promoters"]
                                                     + partial["tally"]["passives"]
                                                     + partial["tally"]["detractors"],
                                                     partial["offset"])
            slot = f"7d:{parts[3]}"
    for partition in report["on_topic"]:
        if slot is None:
            break
        share = api.get("/internal/partials", dimension="channel", key="web", slices=slot,
                        partition=str(partition))
        report["in_memory"][partition] = [
            row[3]["promoters"] + row[3]["passives"] + row[3]["detractors"]
            for row in share["rows"]]
    return report


def test_a_segment_drop_spread_over_both_workers_is_raised_once_with_every_answer(
        isolated: dict[str, str], tmp_path: Path) -> None:
    """The segment's answers sit on all four partitions, two per worker: the drop needs
    every partition's share, and only the owner of the segment's share partition raises it."""
    from datetime import UTC, datetime

    import yaml

    from testkit.support import alerts_on_topic, feedback, profile, wait_until

    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"segment_drop": {
        "metrics": ["ces"], "window": "day", "baseline_windows": 3, "min_sample": 20,
        "margins": {"ces": 0.5}, "evaluate_every_seconds": 1, "dimensions": ["segment"]}}))
    settings, first, second = start_two(
        configure(isolated, partitions="4", session_timeout_seconds="8",
                  rules_file=str(rules), allowed_lateness_seconds=str(10 * 86_400)), tmp_path)
    now = datetime.now(UTC)
    now = max(now - timedelta(seconds=1), now.replace(hour=0, minute=0, second=0, microsecond=0))
    customers = [f"sd{n}" for n in range(24)]
    profiles = [profile(customer_id=c, segment="spread", value=5, updated_at=now.isoformat())
                for c in customers]
    baseline = [feedback(event_id=f"b{day}-{c}", customer_id=c, survey="ces", score=7,
                         occurred_at=(now - timedelta(days=day)).isoformat())
                for day in (1, 2, 3) for c in customers]
    today = [feedback(event_id=f"t-{c}", customer_id=c, survey="ces", score=4,
                      occurred_at=now.isoformat()) for c in customers]
    try:
        wait_until_both_own_partitions(first, second, 4)
        send(settings, settings.topic_customers, profiles)
        wait_for_sum([first, second], "cxstream_events_folded_total", len(profiles),
                     kind="customer")
        send(settings, settings.topic_feedback, baseline + today)

        def drops() -> list[dict[str, Any]]:
            return [a for a in alerts_on_topic(settings)
                    if a["rule"] == "segment_drop" and a["occurrences"] == 1]

        assert wait_until(lambda: len(drops()) >= 1, timeout=90)
        partitions = {partition_of_customer(c) for c in customers}
        assert partitions == {0, 1, 2, 3}  # the segment spans every partition
        [drop] = drops()
        assert drop["segment"] == "spread" and drop["reason"]["current_n"] == len(today)
        assert (drop["reason"]["current"], drop["reason"]["baseline"]) == (4.0, 7.0)
        raised = [total(w.metrics(), "cxstream_alerts_raised_total", rule="segment_drop")
                  for w in (first, second)]
        assert sorted(raised) == [0, 1]  # one worker evaluated the segment
        [owner] = [w for w, count in zip((first, second), raised, strict=True) if count]
        looked = total(owner.metrics(), "cxstream_segment_evaluations_total", what="segments")
        wait_for_sum([owner], "cxstream_segment_evaluations_total", looked + 3,
                     what="segments")  # three more evaluations of the segment ...
        assert len(drops()) == 1  # ... and still one alert
        assert sum(total(w.metrics(), "cxstream_alerts_raised_total", rule="segment_drop")
                   for w in (first, second)) == 1
    finally:
        assert first.stop() == 0
        assert second.stop() == 0


def partition_of_customer(customer_id: str) -> int:
    """The input partition of a customer's events (the producers' partitioner)."""
    from aiokafka.partitioner import DefaultPartitioner

    return int(DefaultPartitioner()(customer_id.encode(), [0, 1, 2, 3], [0, 1, 2, 3]))
