"""A three-broker cluster (replication 3, min.insync.replicas=2, the project's own
`cxstream broker start --brokers 3`): the leader of an input partition and then the
leader of a changelog partition are killed with SIGKILL while events flow, and restarted
later. As multisets: every valid input is applied once (the scores equal a recomputation
from the topics), every bad input is dead-lettered once, and every expected alert is on
cx.alerts once as raised and posted to the webhook once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from cxstream.cli.consistency import batch_tallies
from cxstream.cli.kafka import local_cluster
from cxstream.streams.ingest.deadletter_record import read_headers
from cxstream.streams.kafka.clients import aiokafka_options
from cxstream.streams.kafka.plain_clients import Record, produce, read_topic
from cxstream.streams.settings import Settings, load_settings
from testkit.support import (
    SECRET,
    TOKEN,
    configure,
    feedback,
    free_port,
    profile,
    send,
    settled_differences,
    start,
    to_bytes,
    wait_until,
)
from tests.receiver import Receiver

pytestmark = pytest.mark.integration
BROKERS = 3
ROUNDS = 6
PER_ROUND = 40  # customers answering per round


async def leader_of(settings: Settings, topic: str, partition: int) -> int:
    admin = AIOKafkaAdminClient(**aiokafka_options(settings))
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    leader: int = next(p["leader"] for p in described["partitions"]
                       if p["partition"] == partition)
    return leader


def round_of(n: int, now: datetime) -> tuple[list[dict[str, Any]], list[bytes]]:
    """A round of answers (a detractor from every other customer) and two bad inputs."""
    answers = [feedback(event_id=f"r{n}-c{c}", customer_id=f"c{c:03d}",
                        score=2 if c % 2 else 9,
                        occurred_at=(now - timedelta(seconds=n * 60 + c)).isoformat())
               for c in range(n * PER_ROUND, (n + 1) * PER_ROUND)]
    return answers, [b"{not json " + str(n).encode(), b'{"event_id": "half-' +
                     str(n).encode() + b'"}']


def test_leader_kills_lose_and_double_nothing(isolated: dict[str, str],
                                              tmp_path: Path) -> None:
    ports = [(free_port(), free_port()) for _ in range(BROKERS)]
    base = load_settings({}, bootstrap_servers=f"127.0.0.1:{ports[0][0]}",
                         broker_dir=tmp_path / "cluster")
    local_cluster.lay_out(base, ports)
    servers = local_cluster.start(base, BROKERS)
    receiver = Receiver(free_port(), SECRET).start()
    values = configure({**isolated, "bootstrap_servers": servers}, webhook_url=receiver.url,
                       webhook_secret=SECRET)
    settings = load_settings({}, **values)
    now = datetime.now(UTC).replace(microsecond=0)
    customers = [f"c{c:03d}" for c in range(ROUNDS * PER_ROUND)]
    worker = start(values, tmp_path, "worker")
    killed: list[int] = []
    try:
        worker.wait_for("cxstream_partitions_assigned", 3, timeout=180)
        send(settings, settings.topic_customers, [
            profile(customer_id=c, segment="smb", updated_at=now.isoformat())
            for c in customers])
        # every profile first: an answer read before its customer's profile counts under
        # the segment "unknown" (topics are read independently), and the comparison
        # below is about loss and doubling, not about that order
        worker.wait_for("cxstream_events_folded_total", len(customers), kind="customer",
                        timeout=120)
        bad_sent = 0
        for n in range(ROUNDS):
            answers, bad = round_of(n, now)
            asyncio.run(produce(settings, [
                *(Record(settings.topic_feedback, a["customer_id"].encode(), to_bytes(a))
                  for a in answers),
                *(Record(settings.topic_feedback, b"bad", value) for value in bad)]))
            bad_sent += len(bad)
            if n == 1:  # the leader of an input partition
                killed.append(asyncio.run(leader_of(settings, settings.topic_feedback, 0)))
                local_cluster.kill(base, BROKERS, killed[-1])
            if n == 3:  # it comes back; then the leader of a changelog partition goes
                local_cluster.start_node(base, BROKERS, killed[-1])
                wait_until(lambda: asyncio.run(leader_of(
                    settings, f"{settings.app_id}-customer_to_state-changelog", 1)) > 0,
                    timeout=60)
                time.sleep(5)  # the restarted node catches up before another goes
                killed.append(asyncio.run(leader_of(
                    settings, f"{settings.app_id}-customer_to_state-changelog", 1)))
                local_cluster.kill(base, BROKERS, killed[-1])
            time.sleep(1)
        local_cluster.start_node(base, BROKERS, killed[-1])
        answers_sent = ROUNDS * PER_ROUND
        worker.wait_for("cxstream_events_folded_total", answers_sent, kind="feedback",
                        timeout=240)

        # every valid input applied once: the worker's scores are the recomputation's
        port = int(values["web_port"])
        differ = settled_differences(f"http://127.0.0.1:{port}", TOKEN,
                                     batch_tallies(settings), timeout=120)
        assert differ == [], (differ[:2], worker.log(200_000))
        # every bad input dead-lettered once
        dead = asyncio.run(read_topic(settings, settings.topic_deadletter))
        sources = Counter((h["source.partition"], h["source.offset"]) for h in (
            read_headers(list(r.headers)) for r in dead))
        assert len(sources) == bad_sent and set(sources.values()) == {1}
        # every expected alert raised once on cx.alerts and posted once
        detractors = {c for c in customers if int(c[1:]) % 2}

        def raised() -> list[dict[str, Any]]:
            """The customer alerts' raising messages on cx.alerts (a detractor of the
            top value band raises high_value_at_risk, detractor among its rules)."""
            return [a for a in (orjson.loads(r.value) for r in asyncio.run(
                read_topic(settings, settings.topic_alerts)))
                if a["customer_id"] and a["occurrences"] == 1 and not a["notice"]]

        assert wait_until(lambda: {a["customer_id"] for a in raised()} == detractors,
                          timeout=120)
        on_topic = Counter(a["alert_id"] for a in raised())
        assert len(on_topic) == len(detractors) and set(on_topic.values()) == {1}
        assert wait_until(lambda: set(receiver.alert_ids()) >= set(on_topic), timeout=120)
        posted = Counter(r.alert_id_header for r in receiver.received
                         if r.alert.get("customer_id") and not r.alert.get("notice"))
        assert set(posted) == set(on_topic) and set(posted.values()) == {1}
        print(f"\ncluster failover: killed brokers {killed}; {answers_sent} answers, "
              f"{bad_sent} bad inputs dead-lettered once, {len(on_topic)} alerts each "
              "raised and posted once")
    finally:
        assert worker.stop() == 0, worker.log()
        receiver.stop()
        local_cluster.stop(base, BROKERS)
