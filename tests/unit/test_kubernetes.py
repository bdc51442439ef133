"""The Kubernetes manifests (deploy/kubernetes): valid against the API's schemas, and
wired as the worker needs (probes on its endpoints, settings it knows, a volume for its
state)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from cxstream.streams.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "kubernetes"
KUBERNETES = "1.33.0"  # a version the validator bundles schemas for


def documents() -> list[dict[str, Any]]:
    found = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        found += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in documents() if doc["kind"] == kind]


@pytest.mark.parametrize("doc", [d for d in documents()
                                 if d["apiVersion"] != "monitoring.coreos.com/v1"],
                         ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_each_manifest_is_valid_for_the_kubernetes_api(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_an_invalid_manifest_is_refused() -> None:  # the check can fail
    (statefulset,) = by_kind("StatefulSet")
    broken = {**statefulset, "spec": {**statefulset["spec"], "replicas": "three"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)


def test_the_workers_probe_their_endpoints_and_keep_their_state() -> None:
    (statefulset,) = by_kind("StatefulSet")
    pod = statefulset["spec"]["template"]["spec"]
    (worker,) = pod["containers"]
    assert worker["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert worker["readinessProbe"]["httpGet"]["path"] == "/readyz"
    (config,) = by_kind("ConfigMap")
    data_dir = config["data"]["CXSTREAM_DATA_DIR"]
    claims = {claim["metadata"]["name"] for claim in statefulset["spec"]["volumeClaimTemplates"]}
    assert any(mount["mountPath"] == data_dir and mount["name"] in claims
               for mount in worker["volumeMounts"])
    settings = load_settings({**config["data"], "CXSTREAM_API_TOKEN": "x" * 40,
                              "CXSTREAM_WEB_ADVERTISED_HOST": "cxstream-worker-0.w"})
    assert pod["terminationGracePeriodSeconds"] > settings.drain_timeout_seconds + 10
    assert statefulset["spec"]["replicas"] <= settings.partitions
    port = worker["ports"][0]["containerPort"]
    assert port == settings.web_port


def test_the_service_monitor_scrapes_the_workers_metrics() -> None:
    (monitor,) = by_kind("ServiceMonitor")
    (statefulset,) = by_kind("StatefulSet")
    labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    services = [s for s in by_kind("Service")
                if s["spec"]["selector"].items() <= labels.items()
                and monitor["spec"]["selector"]["matchLabels"].items()
                <= s["metadata"]["labels"].items()]
    assert services and any(p["name"] == endpoint["port"] for p in services[0]["spec"]["ports"])
