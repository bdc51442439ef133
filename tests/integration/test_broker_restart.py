"""The broker goes away mid-run and comes back: the worker resumes by itself, nothing lost.

This test runs its own broker (stopping the session's would disturb the other tests).
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

import pytest

from cxstream.cli.consistency import batch_tallies, differences, stream_tallies
from cxstream.cli.kafka import local_broker
from cxstream.cli.processes import WorkerProcess
from cxstream.streams.kafka.plain_clients import Record, produce, read_topic
from cxstream.streams.kafka.topic_admin import ensure_topics
from cxstream.streams.settings import load_settings
from testkit.support import TOKEN, base_env, base_time, feedback, free_port, profile, to_bytes

pytestmark = pytest.mark.integration


def test_worker_resumes_by_itself_after_the_broker_restarts(tmp_path: Path) -> None:
    port, controller = free_port(), free_port()
    values = {"bootstrap_servers": f"127.0.0.1:{port}", "broker_dir": str(tmp_path / "broker"),
              "partitions": "3", "data_dir": str(tmp_path / "worker"),
              "web_port": str(free_port()), "api_token": TOKEN,
              "allowed_lateness_seconds": str(10 * 86_400), "session_timeout_seconds": "10"}
    settings = load_settings({}, **values)
    local_broker.start(settings, controller_port=controller)
    worker = None
    try:
        asyncio.run(ensure_topics(settings))
        worker = WorkerProcess(base_env(**values), tmp_path / "worker.log",
                               settings.web_port).start()
        worker.wait_for("cxstream_partitions_assigned", 3, timeout=120)
        t = base_time()
        customers = [f"b{n}" for n in range(30)]
        profiles = [Record(settings.topic_customers, c.encode(), to_bytes(profile(
            customer_id=c, segment=("smb", "enterprise")[n % 2], updated_at=t.isoformat())))
            for n, c in enumerate(customers)]
        answers = [Record(settings.topic_feedback, customers[n % 30].encode(), to_bytes(
            feedback(event_id=f"b-{n}", customer_id=customers[n % 30], score=n % 11,
                     occurred_at=(t + timedelta(seconds=n)).isoformat())))
            for n in range(600)]
        bad = [Record(settings.topic_feedback, b"b0", b"{broken") for _ in range(10)]
        asyncio.run(produce(settings, profiles))
        worker.wait_for("cxstream_events_folded_total", 30, kind="customer")
        asyncio.run(produce(settings, answers[:300] + bad[:5]))
        worker.wait_for("cxstream_events_consumed_total", 30 + 305, timeout=120)

        stopped_at = time.monotonic()
        assert local_broker.stop(settings)  # SIGTERM: a clean broker shutdown
        time.sleep(15)  # longer than the session timeout: the worker sees the broker gone
        assert worker.running, worker.log()
        local_broker.start(settings, controller_port=controller)
        down = time.monotonic() - stopped_at

        asyncio.run(produce(settings, answers[300:] + bad[5:]))
        worker.wait_for("cxstream_events_consumed_total", 30 + 610, timeout=180)
        worker.wait_for("cxstream_events_accepted_total", 30 + 600, timeout=60)
        assert worker.running
        deadletters = asyncio.run(read_topic(settings, settings.topic_deadletter))
        assert len(deadletters) == len(bad)
        expected = batch_tallies(settings)
        found: list[object] = ["not compared yet"]
        deadline = time.monotonic() + 60
        while found and time.monotonic() < deadline:
            try:
                found = list(differences(expected, stream_tallies(
                    f"http://127.0.0.1:{settings.web_port}", TOKEN)))
            except Exception as exc:  # 503 while partitions settle
                found = [repr(exc)]
            time.sleep(1)
        assert found == [], found[:3]
        print(f"\nbroker down {down:.0f} s; 630 valid and 10 invalid inputs, "
              f"{len(deadletters)} dead-lettered, 0 differences from the batch recomputation")
    finally:
        if worker is not None and worker.process is not None:
            assert worker.stop() == 0, worker.log()
        local_broker.stop(settings)
