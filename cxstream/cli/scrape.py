"""Read a worker's /metrics (used by the demo, the CLI and tests)."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str, timeout: float = 5.0) -> Samples:
    """Samples at ``url`` as {(name, sorted label pairs): value}."""
    return parse_samples(httpx.get(url, timeout=timeout).text)


def parse_samples(text: str) -> Samples:
    """Samples of a Prometheus text exposition as {(name, sorted label pairs): value}."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(value for (sample_name, sample_labels), value in samples.items()
               if sample_name == name and wanted <= set(sample_labels))
