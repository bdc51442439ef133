"""A worker restarted on its own data after a clean stop takes its value index from the
snapshot it saved, and after a crash reads it from the table: the same bands either way."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from cxstream.cli.processes import WorkerProcess
from cxstream.cli.scrape import total
from cxstream.streams.settings import load_settings
from testkit.support import Api, configure, feedback, profile, send, start

pytestmark = pytest.mark.integration


def value_view(worker: WorkerProcess, api: Api, customers: int
               ) -> tuple[Any, dict[str, float]]:
    """The worker's value histograms once every partition is indexed with all
    ``customers`` (after a crash, a profile whose changelog record was not written yet is
    folded again from the input, after the index was read from the table), and its
    customers per quadrant once a band refresh has counted them all."""
    deadline = time.monotonic() + 120
    while True:
        worker.check_running()
        try:  # refused while the web server starts, 503 during a rebalance
            response = api.client.get("/internal/value-histograms")
            histograms = response.json() if response.status_code == 200 else {}
        except httpx.HTTPError:
            histograms = {}
        if histograms.get("partitions") == [0, 1, 2] and sum(
                sum(counts.values()) for counts in histograms["segments"].values()
        ) >= customers:
            break
        assert time.monotonic() < deadline, histograms
        time.sleep(0.3)
    worker.wait_for("cxstream_customers", customers, timeout=60)
    samples = worker.metrics()
    quadrants = {quadrant: total(samples, "cxstream_customers", quadrant=quadrant)
                 for quadrant in ("at-risk", "exemplary", "dangling", "growth", "unknown")}
    return histograms["segments"], quadrants


def test_a_clean_restart_takes_the_saved_value_index_and_a_crash_reads_the_table(
        isolated: dict[str, str], tmp_path: Path) -> None:
    run = configure(isolated)
    settings = load_settings({}, **run)
    customers = [profile(customer_id=f"v{n:02d}", segment=("smb", "enterprise")[n % 2],
                         value=float(100 * (n + 1))) for n in range(30)]
    answers = [feedback(event_id=f"f{n}", customer_id=f"v{n:02d}", score=n % 11)
               for n in range(0, 30, 2)]
    snapshots = Path(run["data_dir"]) / "value-index"
    worker = start(run, tmp_path, "first")
    try:
        send(settings, settings.topic_customers, customers)
        send(settings, settings.topic_feedback, answers)
        worker.wait_for("cxstream_events_folded_total", len(customers) + len(answers))
        before = value_view(worker, Api(int(run["web_port"])), 30)
    finally:
        assert worker.stop(signal.SIGTERM) == 0
    assert "value index saved for the next start: 30 customers" in worker.log_path.read_text()
    assert sorted(p.name for p in snapshots.iterdir()) == ["0.json", "1.json", "2.json"]

    worker = start(run, tmp_path, "clean-restart")
    try:
        after_clean = value_view(worker, Api(int(run["web_port"])), 30)
        assert ("value index: partitions [0, 1, 2] from their snapshots (30 customers), [] "
                "read from the table") in worker.log_path.read_text()
        assert not list(snapshots.glob("*.json"))  # gone once taken
        send(settings, settings.topic_customers,
             [profile(customer_id="v99", segment="smb", value=50_000.0)])
        worker.wait_for("cxstream_events_folded_total", 1, kind="customer")
    finally:
        worker.stop(signal.SIGKILL)
    assert after_clean == before

    worker = start(run, tmp_path, "after-a-crash")
    try:
        histograms, quadrants = value_view(worker, Api(int(run["web_port"])), 31)
        assert ("value index: partitions [] from their snapshots (0 customers), [0, 1, 2] "
                "read from the table") in worker.log_path.read_text()
    finally:
        assert worker.stop(signal.SIGTERM) == 0
    assert sum(quadrants.values()) == sum(before[1].values()) + 1 == 31
    assert sum(sum(counts.values()) for counts in histograms.values()) == 31
