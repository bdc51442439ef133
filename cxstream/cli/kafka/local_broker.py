"""A single-node Apache Kafka broker (KRaft) on loopback, for development, tests and demo.

The jars come from Maven Central through Maven (cached under ``kafka_cache_dir``); the
broker's data, configuration, log and pid file live in ``broker_dir``. Production users
point ``CXSTREAM_BOOTSTRAP_SERVERS`` at their own cluster instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from cxstream.streams.settings import Settings, load_settings

log = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 30.0


class BrokerError(RuntimeError):
    """The local broker could not be fetched, started or stopped."""


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    bootstrap_servers: str
    log_file: Path


def libs_dir(settings: Settings) -> Path:
    return settings.kafka_cache_dir / f"kafka-{settings.kafka_version}" / "libs"


def fetch_jars(settings: Settings) -> Path:
    """Download Kafka's jars with Maven once; later calls return the cached folder."""
    target = libs_dir(settings)
    marker = target / ".complete"
    if marker.exists():
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError("Maven (mvn) is not on PATH; install it (Debian: apt-get install maven)")
    staging = target.with_name("libs.partial")
    shutil.rmtree(staging, ignore_errors=True)
    with resources.as_file(resources.files("cxstream.cli.kafka") / "pom.xml") as pom:
        command = [
            mvn, "-B", "-q", "-f", str(pom), "dependency:copy-dependencies",
            f"-Dkafka.version={settings.kafka_version}",
            f"-DoutputDirectory={staging}", "-DincludeScope=runtime",
        ]
        log.info("fetching Apache Kafka %s jars with Maven", settings.kafka_version)
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BrokerError(
            f"Maven could not fetch Kafka {settings.kafka_version} "
            f"(exit {result.returncode}): {' '.join(command)}\n{result.stdout[-3000:]}"
            f"{result.stderr[-3000:]}"
        )
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    marker.touch()
    return target


def server_properties(settings: Settings, controller_port: int) -> str:
    """The broker's configuration: single-node KRaft, loopback, replication factor 1."""
    port = settings.bootstrap_port
    data = (settings.broker_dir / "data").resolve()
    return "\n".join([
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
        f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        f"log.dirs={data}",
        "num.partitions=1",
        # Topics are created explicitly with their partition counts (cxstream topics).
        "auto.create.topics.enable=false",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=8",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        # Kafka's default: workers started together form their group in one rebalance
        # (a rebalance of a worker already consuming has left it idle; docs/faust-risks.md)
        "group.initial.rebalance.delay.ms=3000",
        "log.retention.hours=168",
        "",
    ])


def _pid_file(settings: Settings) -> Path:
    return settings.broker_dir / "broker.pid"


def _log_file(settings: Settings) -> Path:
    return settings.broker_dir / "broker.log"


def _running_pid(settings: Settings) -> int | None:
    try:
        pid = int(_pid_file(settings).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def status(settings: Settings) -> BrokerStatus:
    """Whether the local broker of these settings is running."""
    pid = _running_pid(settings)
    return BrokerStatus(pid is not None, pid, settings.bootstrap_servers, _log_file(settings))


def _java(libs: Path, *args: str, heap: str = "256m") -> list[str]:
    with resources.as_file(resources.files("cxstream.cli.kafka") / "log4j.properties") as log4j:
        return [
            shutil.which("java") or "java", f"-Xmx{heap}", "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{log4j}", "-cp", f"{libs}/*", *args,
        ]


def _format_storage(settings: Settings, libs: Path, properties: Path) -> None:
    if (settings.broker_dir / "data" / "meta.properties").exists():
        return
    uuid = subprocess.run(_java(libs, "kafka.tools.StorageTool", "random-uuid"),
                          capture_output=True, text=True, check=True).stdout.split()[-1]
    result = subprocess.run(
        _java(libs, "kafka.tools.StorageTool", "format", "-t", uuid, "-c", str(properties)),
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise BrokerError(f"formatting KRaft storage failed: {result.stdout}{result.stderr}")


def start(settings: Settings, controller_port: int | None = None) -> BrokerStatus:
    """Start the local broker (fetching jars the first time) and wait until it serves."""
    if not settings.uses_local_broker:
        raise BrokerError(
            f"CXSTREAM_BOOTSTRAP_SERVERS={settings.bootstrap_servers} is not a loopback "
            "address; the local broker only serves localhost"
        )
    current = status(settings)
    if current.running:
        return current
    libs = fetch_jars(settings)
    settings.broker_dir.mkdir(parents=True, exist_ok=True)
    properties = settings.broker_dir / "server.properties"
    properties.write_text(
        server_properties(settings, controller_port or settings.bootstrap_port + 1)
    )
    _format_storage(settings, libs, properties)
    with _log_file(settings).open("ab") as log_handle:
        process = subprocess.Popen(
            _java(libs, "kafka.Kafka", str(properties), heap=settings.broker_heap),
            stdout=log_handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # survives the CLI that started it
        )
    _pid_file(settings).write_text(str(process.pid))
    _wait_until_serving(settings, process)
    return status(settings)


def _wait_until_serving(settings: Settings, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = _log_file(settings).read_text(errors="replace")[-3000:]
            raise BrokerError(f"the broker exited with {process.returncode}:\n{tail}")
        if asyncio.run(is_serving(settings.bootstrap_servers)):
            return
        time.sleep(0.5)
    raise BrokerError(f"the broker did not serve within {START_TIMEOUT_SECONDS:.0f} s; "
                      f"see {_log_file(settings)}")


async def is_serving(bootstrap_servers: str) -> bool:
    """True when a Kafka client can fetch cluster metadata from ``bootstrap_servers``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=3_000)
    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # refused connections are expected while it starts
    try:
        await asyncio.wait_for(admin.start(), timeout=5)
        await asyncio.wait_for(admin.list_topics(), timeout=5)
        return True
    except Exception:  # any failure here just means "not yet"
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
        quiet.setLevel(level)


def stop(settings: Settings, kill: bool = False) -> bool:
    """Stop the local broker (SIGTERM, then SIGKILL after a timeout); True if it ran."""
    pid = _running_pid(settings)
    if pid is None:
        _pid_file(settings).unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.1)
    _pid_file(settings).unlink(missing_ok=True)
    return True


def _alive(pid: int) -> bool:
    # Reap our own child if it is one, so it does not linger as a zombie.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextlib.contextmanager
def scratch_broker(prefix: str, heap: str = "1g") -> Iterator[tuple[str, Path]]:
    """A throw-away broker on free loopback ports in a temporary folder, for the bench
    scripts: yields (bootstrap servers, the folder); stops it and removes the folder."""
    from cxstream.cli.processes import free_port


    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        work = Path(folder)
        settings = load_settings({}, bootstrap_servers=f"127.0.0.1:{free_port()}",
                                 broker_dir=work / "broker", broker_heap=heap)
        start(settings, controller_port=free_port())
        try:
            yield settings.bootstrap_servers, work
        finally:
            stop(settings)
