"""What an orchestrator and ops see of a running worker: /healthz and /readyz without a
token (503 while a table recovers, 200 after), and a scrape that holds every metric
docs/operations.md lists, with bounded label sets only."""

from __future__ import annotations

import re
import shutil
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from testkit.support import configure, feedback, interaction, profile, send, start

pytestmark = pytest.mark.integration
DOCS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
#: a label value that names one customer, event or alert: never allowed
ID_LIKE = re.compile(r"^(c-\d+|[fi]-\d+|customer-[0-9a-f]{8,}|[0-9a-f]{24,})$")


def documented_metrics() -> set[str]:
    """Metric names in the first column of docs/operations.md's tables."""
    return set(re.findall(r"^\| `(cxstream_[a-z_]+|process_[a-z_]+|python_[a-z_]+)",
                          DOCS.read_text(), re.M))


def test_readyz_is_503_while_a_table_recovers_and_200_after(
        isolated: dict[str, str], tmp_path: Path) -> None:
    from cxstream.streams.settings import load_settings

    run = configure(isolated)
    settings = load_settings({}, **run)
    base = f"http://127.0.0.1:{run['web_port']}"
    worker = start(run, tmp_path, "worker")
    customers = 60_000
    try:
        worker.wait_for("cxstream_partitions_assigned", 3, timeout=120)
        worker.wait_for("cxstream_ready", 1, timeout=120)
        ready = httpx.get(f"{base}/readyz", timeout=10)  # no token
        assert (ready.status_code, ready.json()) == (200, {"ready": True, "reason": "ready"})
        alive = httpx.get(f"{base}/healthz", timeout=10)
        assert (alive.status_code, alive.json()) == (200, {"alive": True})
        send(settings, settings.topic_customers, [
            profile(customer_id=f"r{n}", value=float(n)) for n in range(customers)])
        worker.wait_for("cxstream_events_folded_total", customers, timeout=300,
                        kind="customer")
        assert worker.stop() == 0, worker.log()
        shutil.rmtree(run["data_dir"])  # the next start reads every changelog again

        seen: list[tuple[int, str]] = []
        stop = threading.Event()

        def watch() -> None:
            with httpx.Client(base_url=base, timeout=5) as client:
                while not stop.is_set():
                    try:
                        answer = client.get("/readyz")
                    except httpx.HTTPError:
                        time.sleep(0.02)
                        continue
                    found = (answer.status_code, answer.json()["reason"])
                    if not seen or seen[-1] != found:
                        seen.append(found)
                    if found[0] == 200:
                        return
                    time.sleep(0.02)

        watcher = threading.Thread(target=watch)
        worker.start()
        watcher.start()
        watcher.join(timeout=240)
        stop.set()
        assert (503, "recovering") in seen, seen
        assert seen[-1] == (200, "ready"), seen
        assert seen.index((503, "recovering")) < seen.index((200, "ready"))
        samples = worker.metrics()
        assert samples[("cxstream_ready", ())] == 1.0
        assert samples[("cxstream_recovery_remaining_records", ())] == 0.0
    finally:
        if worker.running:
            assert worker.stop() == 0, worker.log()


def test_a_scrape_has_every_documented_metric_and_only_bounded_labels(
        isolated: dict[str, str], tmp_path: Path) -> None:
    from cxstream.streams.settings import load_settings

    run = configure(isolated, metrics_group_detail="true")
    settings = load_settings({}, **run)
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    worker = start(run, tmp_path, "worker")
    try:
        worker.wait_for("cxstream_partitions_assigned", 3, timeout=120)
        send(settings, settings.topic_customers,
             [profile(customer_id=f"c-{n:05d}", value=100.0 * n) for n in range(20)])
        send(settings, settings.topic_feedback, [
            feedback(event_id=f"f-{n:05d}", customer_id=f"c-{n:05d}", score=n % 11,
                     occurred_at=now) for n in range(20)])
        send(settings, settings.topic_interactions, [
            interaction(event_id=f"i-{n:05d}", customer_id=f"c-{n:05d}",
                        outcome="failure", occurred_at=now) for n in range(20)])
        worker.wait_for("cxstream_events_folded_total", 60)
        text = httpx.get(f"http://127.0.0.1:{run['web_port']}/metrics", timeout=10).text
    finally:
        assert worker.stop() == 0, worker.log()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    exposed = set(families) | {f"{name}_total" for name in families} | {
        f"{name}_info" for name in families}
    missing = sorted(documented_metrics() - exposed)
    assert not missing, f"documented in docs/operations.md, not exposed: {missing}"
    for name, family in families.items():
        label_sets = {tuple(sorted(sample.labels.items())) for sample in family.samples}
        assert len(label_sets) <= 2_000, (name, len(label_sets))
        for labels in label_sets:
            for label, value in labels:
                assert not ID_LIKE.match(value), (name, label, value)
    build = next(s for s in families["cxstream_build_info"].samples)
    assert set(build.labels) == {"version", "faust", "aiokafka", "python"}
    assert "process_resident_memory_bytes" in {s.name for f in families.values()
                                               for s in f.samples}
