"""Helpers shared by the test layers: event builders and a worker process handle."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

NOW = "2026-11-23T10:00:00+00:00"


def feedback(**overrides: Any) -> dict[str, Any]:
    event = {"event_id": "f-1", "customer_id": "c-1", "occurred_at": NOW, "survey": "nps",
             "score": 9, "channel": "web", "touchpoint": "checkout"}
    event.update(overrides)
    return event


def interaction(**overrides: Any) -> dict[str, Any]:
    event = {"event_id": "i-1", "customer_id": "c-1", "occurred_at": NOW, "channel": "phone",
             "touchpoint": "support"}
    event.update(overrides)
    return event


def profile(**overrides: Any) -> dict[str, Any]:
    event = {"customer_id": "c-1", "segment": "smb", "value": 100.0, "updated_at": NOW}
    event.update(overrides)
    return event


def to_bytes(event: dict[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False).encode("utf-8")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def read_metrics(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Samples of a worker's /metrics as {(name, sorted labels): value}."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def metric(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
           **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    return sum(value for (sample_name, sample_labels), value in samples.items()
               if sample_name == name and set(labels.items()) <= set(sample_labels))


@dataclass
class WorkerProcess:
    """A ``cxstream worker`` subprocess with its own environment and web port."""

    env: dict[str, str]
    log_path: Path
    web_port: int
    process: subprocess.Popen[bytes] | None = field(default=None)

    def start(self) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cxstream", "worker"], env=self.env,
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return read_metrics(self.web_port)

    def wait_for(self, name: str, expected: float, timeout: float = 90, **labels: str) -> float:
        """Poll /metrics until ``name`` (summed over ``labels``) reaches ``expected``."""
        deadline = time.monotonic() + timeout
        value = -1.0
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited {self.process.returncode}:\n{self.log()}")
            try:
                value = metric(self.metrics(), name, **labels)
            except httpx.HTTPError:
                value = -1.0
            if value >= expected:
                return value
            time.sleep(0.3)
        raise AssertionError(f"{name}{labels} reached {value}, expected {expected}\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def base_env(**settings: str) -> dict[str, str]:
    """The parent environment without CXSTREAM_/Faust variables, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXSTREAM_")}
    env.update({f"CXSTREAM_{k.upper()}": v for k, v in settings.items()})
    return env
