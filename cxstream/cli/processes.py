"""A ``cxstream worker`` child process: start, stop, read its metrics, wait for a count."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from cxstream.cli.scrape import Samples, scrape, total

_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A TCP port free on the loopback interface right now, and not handed out before by
    this process: a port reserved for a worker that has not bound it yet is free to the
    kernel, which gave it once to the next caller too (a test's webhook receiver then
    answered the worker's /metrics)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def log_excerpt(text: str, chars: int = 4000) -> str:
    """What to show of a worker's log: from a native crash's report when there is one
    (faulthandler's tracebacks name the thread that crashed), else the end of the log."""
    crash = text.find("Fatal Python error")
    if crash >= 0:
        return text[crash:crash + chars]
    return text[-chars:]


class WorkerExited(RuntimeError):
    """The worker process ended while it was expected to run."""


@dataclass
class WorkerProcess:
    """One worker subprocess with its own environment, log file and web port."""

    env: dict[str, str]
    log_path: Path
    web_port: int
    process: subprocess.Popen[bytes] | None = field(default=None)
    #: arguments before ``-m cxstream worker`` (a profiler's: ``-m memray run -o FILE``)
    python_args: tuple[str, ...] = ()

    def start(self) -> WorkerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, *self.python_args, "-m", "cxstream", "worker"],
                env=self.env,
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Send ``sig`` (SIGTERM: commit and stop cleanly) and wait; return the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def metrics(self) -> Samples:
        return scrape(f"http://127.0.0.1:{self.web_port}/metrics")

    def wait_for(self, name: str, expected: float, timeout: float = 90, **labels: str) -> float:
        """Poll /metrics until ``name`` (summed over ``labels``) reaches ``expected``."""
        deadline = time.monotonic() + timeout
        value = -1.0
        while time.monotonic() < deadline:
            self.check_running()
            try:
                value = total(self.metrics(), name, **labels)
            except httpx.HTTPError:
                value = -1.0
            if value >= expected:
                return value
            time.sleep(0.3)
        raise TimeoutError(f"{name}{labels} reached {value}, expected {expected}\n{self.log()}")

    def check_running(self) -> None:
        """Raise WorkerExited (with the end of its log) if the worker has stopped."""
        if not self.running:
            raise WorkerExited(f"worker exited with {self.exit_code}:\n{self.log()}")

    @property
    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def log(self, chars: int = 4000) -> str:
        return log_excerpt(self.log_path.read_text(errors="replace"), chars)
