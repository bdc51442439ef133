"""Deployment files: promtool accepts them, the dashboard only queries real metrics."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from prometheus_client import CollectorRegistry

from cxstream.scoring.partials_index import PartialsIndex
from cxstream.streams.health.collectors import WorkerCollector
from cxstream.streams.metrics import WorkerMetrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def collected_names() -> set[str]:
    """Families the scrape-time collector yields (run against an empty worker), with the
    per-group detail that the compose stack turns on for its dashboard."""
    app = SimpleNamespace(monitor=SimpleNamespace(tp_end_offsets={}, tp_read_offsets={}))
    collector = WorkerCollector(app, {"customer_to_state": {}}, PartialsIndex(), set, (), dict,
                                group_detail=True)
    return {family.name for family in collector.collect()}


needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool is not on PATH (Debian package prometheus; `make test` installs it)")


def exposed_metric_names() -> set[str]:
    """Every sample name a worker can expose (families from the one metrics factory)."""
    from datetime import UTC, datetime

    from cxstream.streams.health.collectors import OpenAlertsCollector

    names = collected_names() | {family.name for family in OpenAlertsCollector(
        lambda now: ({}, {}), lambda: datetime.now(UTC)).collect()}
    for family in WorkerMetrics(CollectorRegistry()).registry.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {f"{family.name}_{suffix}" for suffix in ("bucket", "count", "sum")}
        else:
            names.add(family.name)
    return names


def queried_metric_names(text: str) -> set[str]:
    return set(re.findall(r"\bcxstream_[a-z_]+", text))


@needs_promtool
def test_promtool_accepts_the_scrape_config_and_rules() -> None:
    for args in (["check", "config", str(DEPLOY / "prometheus" / "prometheus.yml")],
                 ["check", "config", str(DEPLOY / "prometheus" / "prometheus-static.yml")],
                 ["check", "rules", *map(str, (DEPLOY / "prometheus" / "rules").glob("*.yml"))]):
        result = subprocess.run(["promtool", *args], capture_output=True, text=True,
                                check=False)
        assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_the_alert_rules_fire_as_their_unit_tests_say() -> None:
    result = subprocess.run(["promtool", "test", "rules", str(
        DEPLOY / "prometheus" / "tests" / "cxstream.rules.test.yml")], capture_output=True,
        text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool is not on PATH (Debian "
                    "package prometheus-alertmanager; `make test` installs it)")
def test_amtool_accepts_the_alertmanager_config() -> None:
    result = subprocess.run(["amtool", "check-config", str(
        DEPLOY / "alertmanager" / "alertmanager.yml")], capture_output=True, text=True,
        check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_rule_links_to_its_runbook_and_is_tested() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules" / "cxstream.rules.yml").read_text())
    operations = (ROOT / "docs" / "operations.md").read_text()
    headings = {re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
                for line in operations.splitlines() if line.startswith("#")}
    tests = (DEPLOY / "prometheus" / "tests" / "cxstream.rules.test.yml").read_text()
    names = []
    for group in rules["groups"]:
        for rule in group["rules"]:
            name = rule["alert"]
            names.append(name)
            url = rule["annotations"]["runbook_url"]
            assert url == f"docs/operations.md#{name.lower()}", name
            assert name.lower() in headings, f"docs/operations.md has no runbook for {name}"
    fired = {case["alertname"] for test in yaml.safe_load(tests)["tests"]
             for case in test["alert_rule_test"] if case["exp_alerts"]}
    assert sorted(set(names) - fired) == []  # each rule made to fire once by promtool
    assert len(names) >= 13


def test_every_counter_the_rules_read_is_exposed_at_zero_from_the_start() -> None:
    """increase() and rate() see nothing of a series' first sample: a counter that
    appeared only at its first increment (a worker's first stall) could not fire."""
    from prometheus_client import generate_latest

    rules = (DEPLOY / "prometheus" / "rules" / "cxstream.rules.yml").read_text()
    counters = set(re.findall(r"\b(cxstream_[a-z_]+_total)\b", rules))
    metrics = WorkerMetrics(CollectorRegistry())
    metrics.start_series(["cx.interactions", "cx.feedback", "cx.customers"])
    samples = [line for line in generate_latest(metrics.registry).decode().splitlines()
               if line and not line.startswith("#")]
    for counter in counters:
        assert [line for line in samples if line.startswith(counter + "{")], counter
    assert 'cxstream_partition_stalls_total{action="resumed"} 0.0' in samples
    assert ('cxstream_events_deadlettered_total{reason="schema",topic="cx.feedback"} 0.0'
            in samples)


def test_prometheus_sends_to_the_stacks_alertmanager() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert targets == ["alertmanager:9093"] and "alertmanager" in compose["services"]


DASHBOARDS = DEPLOY / "grafana" / "dashboards"


def dashboards() -> dict[str, dict]:  # type: ignore[type-arg]
    return {path.name: json.loads(path.read_text()) for path in DASHBOARDS.glob("*.json")}


def test_dashboards_are_what_their_builder_writes() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "dashboards", DEPLOY / "grafana" / "dashboards.py")
    assert spec is not None and spec.loader is not None
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    rendered = builder.render()
    assert set(rendered) == {"cxstream-operations.json", "cxstream-cx.json"}
    for name, text in rendered.items():
        assert (DASHBOARDS / name).read_text() == text, "run deploy/grafana/dashboards.py"


def test_dashboard_queries_only_metrics_the_worker_exposes() -> None:
    exposed = exposed_metric_names() | {"process_resident_memory_bytes",
                                        "process_cpu_seconds_total"}
    for name, dashboard in dashboards().items():
        exprs = [target["expr"] for panel in dashboard["panels"]
                 for target in panel["targets"]]
        queried = set().union(*(set(re.findall(r"\b(?:cxstream|process)_[a-z_]+", expr))
                                for expr in exprs))
        assert queried and queried <= exposed, (name, queried - exposed)


def test_dashboards_use_variables_and_the_rate_interval() -> None:
    for name, dashboard in dashboards().items():
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource", name
        assert "worker" in variables, name
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == "${datasource}", (name, panel["title"])
            for target in panel["targets"]:
                expr = target["expr"]
                assert "$worker" in expr, (name, panel["title"], expr)
                for window in re.findall(r"\[([^\]]+)\]", expr):
                    assert window in {"$__rate_interval", "1h"}, (name, expr)
    cx = dashboards()["cxstream-cx.json"]
    assert "segment" in {v["name"] for v in cx["templating"]["list"]}
    titles = {panel["title"]: panel for panel in cx["panels"]}
    nps = titles["NPS per segment"]["targets"]
    assert len(nps) == 3 and "sqrt" in nps[1]["expr"]  # the margin of error, both ways
    ops = dashboards()["cxstream-operations.json"]
    assert not any("group_answers" in t["expr"] for p in ops["panels"] for t in p["targets"])


def test_the_dashboards_nps_margin_is_the_apis() -> None:
    """The PromQL margin of the CX dashboard, computed on numbers, equals scoring's."""
    import math

    from cxstream.scoring.conventions import Conventions
    from cxstream.scoring.tallies import Tally, scores

    tally = Tally(promoters=30, passives=10, detractors=20)
    p, d, n = 30, 20, 60
    promql = 100 * 1.96 * math.sqrt(max((p + d) / n - ((p - d) / n) ** 2, 0) / n)
    assert round(promql, 2) == scores(tally, Conventions())["nps"]["margin_of_error"]


def test_alert_rules_query_only_metrics_the_worker_exposes() -> None:
    text = (DEPLOY / "prometheus" / "rules" / "cxstream.rules.yml").read_text()
    rules = yaml.safe_load(text)
    assert {group["name"] for group in rules["groups"]} == {"cxstream-ops", "cxstream-cx"}
    assert queried_metric_names(text) <= exposed_metric_names()


def test_compose_mounts_existing_deploy_files_and_provisions_the_dashboard() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for service in ("prometheus", "grafana", "alertmanager"):
        for volume in compose["services"][service]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):  # a file of this repository (else a named volume)
                assert (ROOT / source).exists(), source
            else:
                assert source in compose["volumes"], source
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "cxstream.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_without_group_detail_metrics_carry_no_group_names() -> None:
    import time

    from cxstream.scoring.fold import partial_key
    from cxstream.scoring.windows import window_specs, window_start

    app = SimpleNamespace(monitor=SimpleNamespace(tp_end_offsets={}, tp_read_offsets={}))
    key = partial_key(0, "segment", "day", window_start(time.time(), 86_400), "smb")
    partials = {key.encode(): {"tally": {"promoters": 3}}}
    index = PartialsIndex()
    index.load(partials.items(), {0})
    quadrants = {("enterprise", "at-risk"): 2, ("smb", "at-risk"): 1}
    for detail, has_groups in ((False, False), (True, True)):
        collector = WorkerCollector(app, {"group_partials": partials}, index, lambda: {0},
                                    window_specs(7), lambda: quadrants, group_detail=detail)
        families = {family.name: family for family in collector.collect()}
        assert ("cxstream_group_answers" in families) is has_groups
        labels = [sample.labels for sample in families["cxstream_customers"].samples]
        segments = {label["segment"] for label in labels}
        assert segments == ({"enterprise", "smb"} if detail else {"all"})
        if not detail:
            assert [s.value for s in families["cxstream_customers"].samples] == [3]
