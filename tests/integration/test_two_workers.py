"""Two workers share the partitions; either answers for any customer and any group."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cxstream.processes import WorkerProcess
from cxstream.scrape import total
from cxstream.settings import load_settings
from tests.integration.test_scores import (
    Api,
    base_time,
    configure,
    known_events,
    send,
    start,
)
from tests.support import free_port

pytestmark = pytest.mark.integration


def wait_until_both_own_partitions(first: WorkerProcess, second: WorkerProcess,
                                   partitions: int) -> None:
    deadline = time.monotonic() + 90
    owned = [0.0, 0.0]
    while time.monotonic() < deadline:
        owned = [w.wait_for("cxstream_partitions_assigned", 0) for w in (first, second)]
        if min(owned) >= 1 and sum(owned) == partitions:
            return
        time.sleep(0.5)
    raise AssertionError(f"partitions owned: {owned}")


def wait_for_sum(workers: list[WorkerProcess], name: str, expected: float,
                 **labels: str) -> None:
    deadline = time.monotonic() + 90
    reached = 0.0
    while time.monotonic() < deadline:
        reached = sum(total(w.metrics(), name, **labels) for w in workers)
        if reached >= expected:
            return
        time.sleep(0.3)
    raise AssertionError(f"{name}{labels}: {reached} of {expected}")


def test_queries_are_answered_by_either_worker(isolated: dict[str, str], tmp_path: Path) -> None:
    first_map = configure(isolated, partitions="4", session_timeout_seconds="8")
    second_map = {**first_map, "web_port": str(free_port()),
                  "data_dir": str(tmp_path / "second")}
    settings = load_settings({}, **first_map)
    # started together, the two form the group in one rebalance (the broker waits 3 s
    # for members); a rebalance of a worker already consuming has left it idle (README)
    first = start(first_map, tmp_path, "first")
    second = start(second_map, tmp_path, "second")
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
            for customer_id in ("c1", "c2", "c3", "c4"):
                assert api.get(f"/api/customers/{customer_id}")["customer_id"] == customer_id
            assert api.get("/api/customers/c1")["last_scores"]["nps"]["event_id"] == "f2"
    finally:
        assert first.stop() == 0
        assert second.stop() == 0
