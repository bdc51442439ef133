"""A three-broker (or N-broker) Apache Kafka cluster (KRaft) on loopback, for failover
tests and trying cxstream as production runs it: every node a broker and a controller,
replication 3 and ``min.insync.replicas=2`` by default for every topic, the offsets and
transaction topics included.

Node ``i`` (1-based) listens on ``base + 10 * (i - 1)`` for clients and the next port for
the controller quorum, and keeps its data, configuration, log and pid file in
``<broker_dir>/node-<i>``. The jars are the single broker's (local_broker.fetch_jars).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cxstream.cli.kafka.local_broker import (
    START_TIMEOUT_SECONDS,
    BrokerError,
    _alive,
    _java,
    fetch_jars,
    is_serving,
)
from cxstream.streams.settings import Settings

PORT_STEP = 10


@dataclass(frozen=True)
class Node:
    """One broker of the cluster."""

    node_id: int
    port: int
    controller_port: int
    folder: Path

    @property
    def pid_file(self) -> Path:
        return self.folder / "broker.pid"

    @property
    def log_file(self) -> Path:
        return self.folder / "broker.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _alive(pid) else None


def nodes(settings: Settings, brokers: int) -> list[Node]:
    """The nodes' layout: as the cluster was first started (``layout.json`` in the
    broker folder), else the ports after CXSTREAM_BOOTSTRAP_SERVERS's."""
    layout = settings.broker_dir / "layout.json"
    if layout.exists():
        ports = json.loads(layout.read_text())
    else:
        base = settings.bootstrap_port
        ports = [[base + PORT_STEP * i, base + PORT_STEP * i + 1] for i in range(brokers)]
    return [Node(i + 1, port, controller, settings.broker_dir / f"node-{i + 1}")
            for i, (port, controller) in enumerate(ports[:brokers])]


def lay_out(settings: Settings, ports: list[tuple[int, int]]) -> None:
    """Fix the nodes' (client, controller) ports before the first start (tests pick free
    ones: the ports after the first may be taken)."""
    settings.broker_dir.mkdir(parents=True, exist_ok=True)
    (settings.broker_dir / "layout.json").write_text(json.dumps([list(p) for p in ports]))


def bootstrap_servers(settings: Settings, brokers: int) -> str:
    return ",".join(f"127.0.0.1:{node.port}" for node in nodes(settings, brokers))


def node_properties(node: Node, every: list[Node]) -> str:
    """A node's configuration: broker and controller, replication 3 (or the cluster's
    size) with two in-sync replicas needed for a write."""
    replicas = min(3, len(every))
    in_sync = min(2, replicas)
    voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in every)
    return "\n".join([
        "process.roles=broker,controller",
        f"node.id={node.node_id}",
        f"controller.quorum.voters={voters}",
        f"listeners=PLAINTEXT://127.0.0.1:{node.port},"
        f"CONTROLLER://127.0.0.1:{node.controller_port}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{node.port}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        f"log.dirs={(node.folder / 'data').resolve()}",
        "num.partitions=1",
        "auto.create.topics.enable=false",
        f"default.replication.factor={replicas}",
        f"min.insync.replicas={in_sync}",
        f"offsets.topic.replication.factor={replicas}",
        "offsets.topic.num.partitions=8",
        f"transaction.state.log.replication.factor={replicas}",
        f"transaction.state.log.min.isr={in_sync}",
        "group.initial.rebalance.delay.ms=3000",
        # a killed leader is replaced quickly: the tests kill them on purpose
        "replica.lag.time.max.ms=10000",
        "log.retention.hours=168",
        "",
    ])


def start(settings: Settings, brokers: int = 3) -> str:
    """Start every node that is not running (formatting new ones with one cluster id);
    wait until the cluster serves; return its bootstrap servers."""
    libs = fetch_jars(settings)
    every = nodes(settings, brokers)
    cluster_id = _cluster_id(settings, libs)
    try:
        for node in every:
            if node.pid() is None:
                _start_node(node, every, libs, cluster_id, settings.broker_heap)
        servers = bootstrap_servers(settings, brokers)
        _wait_until_serving(servers, every)
    except BaseException:  # no half-started cluster left behind
        stop(settings, brokers)
        raise
    return servers


def start_node(settings: Settings, brokers: int, node_id: int) -> None:
    """Start one stopped node again (after ``kill``); it rejoins the cluster."""
    libs = fetch_jars(settings)
    every = nodes(settings, brokers)
    _start_node(every[node_id - 1], every, libs, _cluster_id(settings, libs),
                settings.broker_heap)


def kill(settings: Settings, brokers: int, node_id: int,
         sig: int = signal.SIGKILL) -> None:
    """Stop one node at once (SIGKILL by default: a crash, no controlled shutdown)."""
    node = nodes(settings, brokers)[node_id - 1]
    pid = node.pid()
    if pid is not None:
        os.kill(pid, sig)
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    node.pid_file.unlink(missing_ok=True)


def stop(settings: Settings, brokers: int = 3) -> int:
    """Stop every node (SIGTERM, then SIGKILL); returns how many were running."""
    running = [(node, pid) for node in nodes(settings, brokers)
               if (pid := node.pid()) is not None]
    for _, pid in running:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    for node, pid in running:
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        node.pid_file.unlink(missing_ok=True)
    return len(running)


def _cluster_id(settings: Settings, libs: Path) -> str:
    marker = settings.broker_dir / "cluster.id"
    if marker.exists():
        return marker.read_text().strip()
    settings.broker_dir.mkdir(parents=True, exist_ok=True)
    uuid = subprocess.run(_java(libs, "kafka.tools.StorageTool", "random-uuid"),
                          capture_output=True, text=True, check=True).stdout.split()[-1]
    marker.write_text(uuid)
    return uuid


def _start_node(node: Node, every: list[Node], libs: Path, cluster_id: str,
                heap: str) -> None:
    node.folder.mkdir(parents=True, exist_ok=True)
    properties = node.folder / "server.properties"
    properties.write_text(node_properties(node, every))
    if not (node.folder / "data" / "meta.properties").exists():
        result = subprocess.run(_java(libs, "kafka.tools.StorageTool", "format", "-t",
                                      cluster_id, "-c", str(properties)),
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BrokerError(f"formatting node {node.node_id} failed: "
                              f"{result.stdout}{result.stderr}")
    with node.log_file.open("ab") as log_handle:
        process = subprocess.Popen(
            _java(libs, "kafka.Kafka", str(properties), heap=heap),
            stdout=log_handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    node.pid_file.write_text(str(process.pid))


def _wait_until_serving(servers: str, every: list[Node]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS * 2
    while time.monotonic() < deadline:
        dead = [node for node in every if node.pid() is None]
        if dead:
            tail = dead[0].log_file.read_text(errors="replace")[-3000:]
            raise BrokerError(f"node {dead[0].node_id} exited:\n{tail}")
        if asyncio.run(_all_brokers_up(servers, len(every))):
            return
        time.sleep(1)
    raise BrokerError(f"the cluster did not serve within {START_TIMEOUT_SECONDS * 2:.0f} s")


async def _all_brokers_up(servers: str, count: int) -> bool:
    """Every node serves and sees every broker: each keeps its own view of the cluster's
    metadata, and a client asking a node that does not see them all yet would find a
    smaller cluster (a replication factor refused, a partition without a leader)."""
    from aiokafka.admin import AIOKafkaAdminClient

    for server in servers.split(","):
        if not await is_serving(server):
            return False
        admin = AIOKafkaAdminClient(bootstrap_servers=server, request_timeout_ms=3_000)
        try:
            await admin.start()
            if len((await admin.describe_cluster())["brokers"]) != count:
                return False
        except Exception:  # not yet
            return False
        finally:
            await admin.close()
    return True
