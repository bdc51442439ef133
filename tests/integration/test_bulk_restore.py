"""Workers started on empty data directories restore the tables from the changelogs in
bulk (faust_compat fix 11), alone and when a second worker joins and takes its share,
and hold exactly what the worker that wrote them held. (A rebalance in the middle of a
bulk read is tested in tests/unit/test_bulk_restore.py: at these sizes the read takes
a tenth of a second, too short to be interrupted on purpose.)"""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from cxstream.cli.consistency import batch_tallies, differences, stream_tallies
from cxstream.cli.processes import WorkerProcess
from cxstream.streams.kafka.plain_clients import Record, produce
from cxstream.streams.kafka.topic_admin import ensure_topics
from cxstream.streams.settings import load_settings
from testkit.support import (
    TOKEN,
    alerts_on_topic,
    base_env,
    base_time,
    configure,
    feedback,
    free_port,
    interaction,
    profile,
    to_bytes,
    wait_until,
)

pytestmark = pytest.mark.integration

CUSTOMERS = 400


def bulk_records(worker: WorkerProcess) -> int:
    """Changelog records the worker's bulk restores wrote, from its log."""
    text = worker.log_path.read_text(errors="replace")
    return sum(int(n) for n in re.findall(r"bulk restore: (\d+) changelog records", text))


#: what the API derives from the value bands of the moment, not from the stored state: a
#: worker's bands follow the customers it holds, so they move when a second one joins
FROM_THE_BANDS = {"high_value", "high_value_in_segment", "quadrant"}


def customer(port: int, customer_id: str) -> dict[str, object]:
    """The customer's stored state as the API serves it (without FROM_THE_BANDS)."""
    answer = httpx.get(f"http://127.0.0.1:{port}/api/customers/{customer_id}",
                       headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert answer.status_code == 200, (customer_id, answer.text)
    state: dict[str, object] = answer.json()
    return {key: value for key, value in state.items() if key not in FROM_THE_BANDS}


def agreed(port: int, settings: object) -> list[object]:
    try:
        return list(differences(batch_tallies(settings),  # type: ignore[arg-type]
                                stream_tallies(f"http://127.0.0.1:{port}", TOKEN)))
    except Exception as exc:  # 503 while partitions settle
        return [repr(exc)]


@pytest.mark.parametrize("joined", [False, True], ids=["alone", "with-a-second-joining"])
def test_a_worker_on_an_empty_directory_restores_in_bulk_what_the_first_held(
        isolated: dict[str, str], tmp_path: Path, joined: bool) -> None:
    common = configure(isolated, bulk_restore_min_records="100",
                       allowed_lateness_seconds=str(10 * 86_400))
    settings = load_settings({}, **common)
    asyncio.run(ensure_topics(settings))
    t = base_time()
    ids = [f"r{n}" for n in range(CUSTOMERS)]
    profiles = [Record(settings.topic_customers, c.encode(), to_bytes(profile(
        customer_id=c, segment=("smb", "enterprise")[n % 2], value=float(n * 7 % 500),
        updated_at=t.isoformat()))) for n, c in enumerate(ids)]
    records = [Record(settings.topic_feedback, ids[n % CUSTOMERS].encode(), to_bytes(feedback(
        event_id=f"bf-{n}", customer_id=ids[n % CUSTOMERS], score=n % 11,
        occurred_at=(t + timedelta(seconds=n)).isoformat()))) for n in range(800)]
    records += [Record(settings.topic_interactions, ids[n % CUSTOMERS].encode(), to_bytes(
        interaction(event_id=f"bi-{n}", customer_id=ids[n % CUSTOMERS],
                    outcome=("success", "failure")[n % 5 == 0],
                    occurred_at=(t + timedelta(seconds=n)).isoformat())))
        for n in range(800)]
    first = WorkerProcess(base_env(**common), tmp_path / "first.log",
                          int(common["web_port"])).start()
    try:
        first.wait_for("cxstream_partitions_assigned", 3, timeout=120)
        asyncio.run(produce(settings, profiles))  # profiles first: no "unknown" segment
        first.wait_for("cxstream_events_folded_total", CUSTOMERS, kind="customer")
        asyncio.run(produce(settings, records))
        first.wait_for("cxstream_events_folded_total", CUSTOMERS + len(records),
                       timeout=180)
        sample = ids[::17]
        before = {c: customer(first.web_port, c) for c in sample}
        assert wait_until(lambda: agreed(first.web_port, settings) == [], timeout=60), (
            agreed(first.web_port, settings)[:3])
    finally:
        assert first.stop() == 0

    workers = [WorkerProcess(base_env(**{**common, "data_dir": str(tmp_path / name),
                                          "web_port": str(free_port())}),
                             tmp_path / f"{name}.log", 0)
               for name in (("fresh", "joining") if joined else ("fresh",))]
    for worker in workers:
        worker.web_port = int(worker.env["CXSTREAM_WEB_PORT"])
    try:
        workers[0].start()
        if joined:  # takes its share of the partitions, restored in bulk, from the first
            workers[0].wait_for("cxstream_partitions_assigned", 3, timeout=120)
            workers[1].start()
            assert wait_until(lambda: all(
                worker.wait_for("cxstream_partitions_assigned", 0) >= 1
                for worker in workers), timeout=120), workers[1].log()
            assert wait_until(lambda: bulk_records(workers[1]) > 0, timeout=60), (
                workers[1].log())
        port = workers[0].web_port
        # both ways of reading agree: the tallies with a recomputation from the topics,
        # the customers with what the first worker served
        assert wait_until(lambda: agreed(port, settings) == [], timeout=180), (
            agreed(port, settings)[:3], workers[0].log())
        after = {c: customer(port, c) for c in sample}
        assert after == before, [(c, {k: (before[c].get(k), after[c].get(k))
                                      for k in set(before[c]) | set(after[c])
                                      if before[c].get(k) != after[c].get(k)})
                                 for c in sample if after[c] != before[c]]
        restored = sum(bulk_records(worker) for worker in workers)
        assert restored >= CUSTOMERS, [worker.log() for worker in workers]
        # and they serve: a detractor's alert comes from whoever owns the customer
        asyncio.run(produce(settings, [Record(settings.topic_feedback, b"r3", to_bytes(
            feedback(event_id="after-restore", customer_id="r3", score=0,
                     occurred_at=(t + timedelta(hours=2)).isoformat())))]))
        assert wait_until(lambda: any(
            alert.get("customer_id") == "r3" and alert.get("rule") == "detractor"
            for alert in alerts_on_topic(settings)), timeout=90)
        print(f"\n{restored} changelog records restored in bulk by "
              f"{len(workers)} worker(s); {len(sample)} customers and every tally as "
              "before")
    finally:
        for worker in workers:
            if worker.running:
                assert worker.stop() == 0
