"""Static group membership (CXSTREAM_GROUP_INSTANCE_ID): a worker killed and started again
takes its partitions back in the same group generation, without a rebalance of the others
and without waiting for its old session to time out."""

from __future__ import annotations

import asyncio
import re
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cxstream.cli.processes import WorkerProcess
from cxstream.streams.kafka.plain_clients import Record, produce
from cxstream.streams.kafka.topic_admin import ensure_topics
from cxstream.streams.settings import load_settings
from testkit.support import (
    alerts_on_topic,
    base_env,
    configure,
    feedback,
    free_port,
    profile,
    to_bytes,
    wait_until,
)

pytestmark = pytest.mark.integration

#: far longer than the test waits: a dynamic member killed would hold its partitions
#: this long, or until the rebalance timeout (60 s) let the group go on without it
SESSION_SECONDS = "120"


def joins(worker: WorkerProcess, group: str) -> list[int]:
    """The generations the worker's consumer joined ``group`` in, in order (aiokafka's log)."""
    pattern = re.compile(rf"Joined group '{re.escape(group)}' \(generation (\d+)\)")
    return [int(found) for found in pattern.findall(worker.log_path.read_text(errors="replace"))]


def test_a_killed_static_member_comes_back_in_the_same_generation_and_serves(
        isolated: dict[str, str], tmp_path: Path) -> None:
    common = configure(isolated, session_timeout_seconds=SESSION_SECONDS)
    group = common["app_id"]
    settings = load_settings({}, **common)
    asyncio.run(ensure_topics(settings))
    first_values = {**common, "group_instance_id": "worker-a",
                    "data_dir": str(tmp_path / "a")}
    second_values = {**common, "group_instance_id": "worker-b",
                     "data_dir": str(tmp_path / "b"), "web_port": str(free_port())}
    first = WorkerProcess(base_env(**first_values), tmp_path / "a.log",
                          int(first_values["web_port"])).start()
    first.wait_for("cxstream_partitions_assigned", 3, timeout=120)
    second = WorkerProcess(base_env(**second_values), tmp_path / "b.log",
                           int(second_values["web_port"])).start()
    try:
        def both_own() -> bool:
            owned = [worker.wait_for("cxstream_partitions_assigned", 0)
                     for worker in (first, second)]
            return owned[0] >= 1 and owned[1] >= 1 and sum(owned) == 3
        assert wait_until(both_own, timeout=120), (first.log(), second.log())
        now = datetime.now(UTC).replace(microsecond=0)
        customers = [f"s{n}" for n in range(24)]
        asyncio.run(produce(settings, [
            Record(settings.topic_customers, c.encode(),
                   to_bytes(profile(customer_id=c, updated_at=(now - timedelta(hours=1))
                                    .isoformat()))) for c in customers]))
        assert wait_until(lambda: sum(worker.wait_for("cxstream_events_folded_total", 0)
                                      for worker in (first, second)) >= len(customers))
        generation = joins(first, group)[-1]
        assert joins(second, group)[-1] == generation
        seen_by_second = len(joins(second, group))

        assert first.stop(signal.SIGKILL) == -signal.SIGKILL
        first.start()
        first.wait_for("cxstream_partitions_assigned", 1, timeout=60)
        asyncio.run(produce(settings, [
            Record(settings.topic_feedback, c.encode(), to_bytes(feedback(
                event_id=f"static-{c}", customer_id=c, score=0,
                occurred_at=now.isoformat()))) for c in customers]))

        def alerted() -> set[str]:  # detractor, or high-value at risk (one per cause)
            return {alert.get("customer_id") for alert in alerts_on_topic(settings)}
        # every partition serves again, the killed worker's too, well inside its session
        assert wait_until(lambda: alerted() >= set(customers), timeout=60), (
            sorted(set(customers) - alerted()), first.log())
        # the restarted process joined in the group's generation: no rebalance at all,
        # and the other worker was never asked to join again
        assert joins(first, group)[-1] == generation, joins(first, group)
        assert len(joins(second, group)) == seen_by_second, joins(second, group)
        print(f"\ngeneration {generation} before the SIGKILL and after the restart; an "
              f"alert for each of the {len(customers)} customers across both workers")
    finally:
        for worker in (first, second):
            if worker.running:
                worker.stop()
