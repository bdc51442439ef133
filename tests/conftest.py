"""Fixtures shared by all layers: the real Kafka broker for integration tests."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cxstream.cli.kafka import local_broker
from cxstream.cli.processes import log_excerpt
from cxstream.streams.settings import Settings, load_settings
from testkit.support import free_port

_counter = itertools.count()


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Kafka broker: the one in CXSTREAM_TEST_BOOTSTRAP_SERVERS, or a local one."""
    external = os.environ.get("CXSTREAM_TEST_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    broker_dir = tmp_path_factory.mktemp("broker")
    port = free_port()
    settings = load_settings({}, bootstrap_servers=f"127.0.0.1:{port}", broker_dir=broker_dir)
    local_broker.start(settings, controller_port=free_port())
    try:
        yield settings.bootstrap_servers
    finally:
        local_broker.stop(settings)


@pytest.fixture
def isolated(kafka_bootstrap: str, tmp_path: Path) -> dict[str, str]:
    """Settings (as CXSTREAM_* names without prefix) with topics and group of this test only."""
    run = f"t{os.getpid()}x{next(_counter)}"
    return {
        "bootstrap_servers": kafka_bootstrap,
        "app_id": f"cxstream-{run}",
        "topic_interactions": f"{run}.cx.interactions",
        "topic_feedback": f"{run}.cx.feedback",
        "topic_customers": f"{run}.cx.customers",
        "topic_alerts": f"{run}.cx.alerts",
        "topic_deadletter": f"{run}.cx.deadletter",
        "topic_alert_lifecycle": f"{run}.cx.alert-lifecycle",
        "topic_survey_requests": f"{run}.cx.survey-requests",
        "partitions": "3",
        # scenarios of a few customers per segment: one of five is its top 20 %
        "high_value_min_customers": "1",
        "data_dir": str(tmp_path / "worker"),
        "web_port": str(free_port()),
    }


@pytest.fixture
def isolated_settings(isolated: dict[str, str]) -> Settings:
    return load_settings({}, **isolated)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test that ran worker processes shows their logs (files ``*.log`` under its
    ``tmp_path``, RocksDB's own left out): an exit code alone, such as -11, does not say
    what happened."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when != "call" or not report.failed:
        return
    tmp = getattr(item, "funcargs", {}).get("tmp_path")
    if tmp is None:
        return
    logs = [log for log in sorted(Path(tmp).rglob("*.log"))
            if not any(part.endswith(".db") for part in log.parts)]  # not RocksDB's
    for log in logs[:6]:
        text = log.read_text(errors="replace")
        report.sections.append((f"log {log.relative_to(tmp)}", log_excerpt(text, 3_000)))
