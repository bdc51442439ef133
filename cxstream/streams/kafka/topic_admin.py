"""Making the contract's topics and the worker's own, and checking those that exist.

Never by naming a topic in a metadata request: a broker with
``auto.create.topics.enable`` (Kafka's default) makes any topic so named, with one
partition, its default replication and no compaction. Topics are described by asking
for all of them, and every refusal of ``create_topics`` is read and reported.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, for_code

from cxstream.streams.kafka.clients import (
    aiokafka_options,
    alert_event_topic,
    contract_topics,
    webhook_settled_topic,
    worker_topics,
)
from cxstream.streams.settings import Settings

log = logging.getLogger(__name__)


class TopicLayoutError(RuntimeError):
    """A topic cannot be made, or cannot be used as it is (not co-partitioned, not
    compacted where the contract keeps the latest per key, refused by the broker)."""


#: how long topic creation waits for the brokers a replication factor needs: a broker
#: restarting, or fenced for a missed heartbeat on a loaded machine, is left out of the
#: cluster's description for a few seconds (seen with a three-broker cluster starting)
BROKERS_GRACE_SECONDS = 10.0


async def replication_factor(admin: AIOKafkaAdminClient, settings: Settings,
                             strict: bool = True,
                             grace_seconds: float = BROKERS_GRACE_SECONDS) -> int:
    """The replication of the topics cxstream creates: CXSTREAM_REPLICATION_FACTOR, else
    the cluster's ``default.replication.factor`` (never silently 1 on a cluster set up
    for more). ``strict`` (when topics are to be created): raises TopicLayoutError when it
    is more than the brokers the cluster has, after waiting up to ``grace_seconds`` for
    them; a worker starting while a broker is down for a moment, with its topics made, is
    not refused."""
    cluster = await admin.describe_cluster()
    brokers = cluster["brokers"]
    wanted = settings.replication_factor
    if wanted is None:
        wanted = await _broker_default_replication(admin, brokers[0]["node_id"])
    deadline = time.monotonic() + grace_seconds
    while strict and wanted > len(brokers) and time.monotonic() < deadline:
        log.info("replication factor %d, %d broker(s) in the cluster: waiting for the others",
                 wanted, len(brokers))
        await asyncio.sleep(1.0)
        brokers = (await admin.describe_cluster())["brokers"]
    if strict and wanted > len(brokers):
        raise TopicLayoutError(
            f"CXSTREAM_REPLICATION_FACTOR={wanted} is more than the {len(brokers)} broker(s) "
            f"of the cluster at {settings.bootstrap_servers}: lower it, or unset it to take "
            "the cluster's default.replication.factor"
            if settings.replication_factor is not None else
            f"the cluster's default.replication.factor is {wanted} but it has "
            f"{len(brokers)} broker(s): set CXSTREAM_REPLICATION_FACTOR")
    return int(wanted)


async def _broker_default_replication(admin: AIOKafkaAdminClient, broker: int) -> int:
    value = await _config_value(admin, ConfigResourceType.BROKER, str(broker),
                                "default.replication.factor")
    return int(value) if value is not None else 1  # a broker that does not say: Kafka's


async def _config_value(admin: AIOKafkaAdminClient, kind: ConfigResourceType, name: str,
                        key: str) -> str | None:
    responses = await admin.describe_configs([ConfigResource(kind, name, {key: None})])
    for response in responses:
        for resource in response.resources:
            for entry in resource[4]:  # (name, value, read_only, is_default, sensitive...)
                if entry[0] == key and entry[1] is not None:
                    return str(entry[1])
    return None


async def resolved_replication(settings: Settings) -> Settings:
    """``settings`` with the replication factor the cluster decides (for the app's
    changelog topics, which Faust creates)."""
    admin = AIOKafkaAdminClient(**aiokafka_options(settings), request_timeout_ms=30_000)
    try:
        await admin.start()
        factor = await replication_factor(admin, settings, strict=False)
    finally:
        await admin.close()
    return settings.model_copy(update={"replication_factor": factor})


async def existing_topics(admin: AIOKafkaAdminClient,
                          names: list[str]) -> dict[str, dict[str, Any]]:
    """The metadata of those of ``names`` that exist, asked for all topics at once (a
    request naming them would make them on a broker that auto-creates topics)."""
    wanted = set(names)
    return {item["topic"]: item for item in await admin.describe_topics()
            if item["topic"] in wanted and item["error_code"] == 0}


async def create_topics(admin: AIOKafkaAdminClient, topics: list[NewTopic]) -> None:
    """Ask the controller for ``topics``; raises TopicLayoutError naming each topic the
    broker refused and its error (one made meanwhile by another process is no error)."""
    response = await admin.create_topics(topics, timeout_ms=30_000)
    refused = []
    for entry in response.topic_errors:  # (topic, error_code[, error_message])
        name, code = entry[0], entry[1]
        if code in (0, TopicAlreadyExistsError.errno):
            continue
        error = for_code(code)
        detail = entry[2] if len(entry) > 2 and entry[2] else error.description
        refused.append(f"{name}: {error.__name__} ({detail})")
    if refused:
        raise TopicLayoutError("the broker refused to create " + "; ".join(refused))


def compacted_topics(settings: Settings) -> list[str]:
    """The contract's topics whose latest record per key is the state (profiles, alert
    cases): compacted, or a replay after retention loses customers and cases."""
    return [settings.topic_customers, settings.topic_alert_lifecycle]


@dataclass(frozen=True)
class TopicLayout:
    """The contract's topics as they are: partitions and replication of each, and which
    were made just now."""

    partitions: dict[str, int]
    replication: dict[str, int]
    created: tuple[str, ...]


async def ensure_topics(settings: Settings, strict: bool = False) -> TopicLayout:
    """Create the contract's missing topics and check them all: input topics
    co-partitioned (every input is keyed by customer_id, and one worker owns a customer
    across all three), the lifecycle topic partitioned as the alerts, profiles and cases
    compacted. ``strict`` (``cxstream topics create``): the replication factor is checked
    against the brokers even when nothing is to be made, and an existing topic with less
    replication than asked is an error."""
    admin = AIOKafkaAdminClient(**aiokafka_options(settings), request_timeout_ms=30_000)
    try:
        await admin.start()
        wanted = contract_topics(settings)
        existing = await existing_topics(admin, wanted)
        missing = [name for name in wanted if name not in existing]
        factor = (await replication_factor(admin, settings)
                  if missing or strict else 1)
        lifecycle, alerts = settings.topic_alert_lifecycle, settings.topic_alerts
        compacted = compacted_topics(settings)
        first = [NewTopic(name, settings.partitions, factor,
                          topic_configs={"cleanup.policy": "compact"}
                          if name in compacted else None)
                 for name in missing if name != lifecycle]
        if first:
            log.info("creating topics %s with %d partitions", [t.name for t in first],
                     settings.partitions)
            await create_topics(admin, first)
        if lifecycle in missing:  # as many partitions as the alerts, compacted
            count = (len(existing[alerts]["partitions"]) if alerts in existing
                     else settings.partitions)
            log.info("creating topic %s with %d partitions (compacted)", lifecycle, count)
            await create_topics(admin, [NewTopic(
                lifecycle, count, factor, topic_configs={"cleanup.policy": "compact"})])
        described = await _described_in_full(admin, wanted)
        policies = {name: await _cleanup_policy(admin, name) for name in compacted}
    finally:
        await admin.close()
    layout = TopicLayout(
        partitions={name: len(item["partitions"]) for name, item in described.items()},
        replication={name: min(len(p["replicas"]) for p in item["partitions"])
                     for name, item in described.items()},
        created=tuple(missing))
    _check_layout(settings, layout, policies, factor if strict else None)
    return layout


async def _cleanup_policy(admin: AIOKafkaAdminClient, name: str, tries: int = 20,
                          pause: float = 0.5) -> str | None:
    """A topic's cleanup.policy. A broker answers a topic it has not heard of yet with an
    error and no value: on a cluster, the broker asked right after the topic was made may
    not have applied it (seen on the three-broker cluster of the failover test), so ask
    again for up to ``tries`` x ``pause`` seconds before taking no value for an answer."""
    value = None
    for attempt in range(tries):
        value = await _config_value(admin, ConfigResourceType.TOPIC, name, "cleanup.policy")
        if value is not None:
            return value
        if attempt + 1 < tries:
            await asyncio.sleep(pause)
    return value


async def _described_in_full(admin: AIOKafkaAdminClient,
                             names: list[str]) -> dict[str, dict[str, Any]]:
    described: dict[str, dict[str, Any]] = {}
    for _ in range(20):  # topics just created may not be described in full yet
        described = await existing_topics(admin, names)
        if len(described) == len(names) and all(
                item["partitions"] for item in described.values()):
            return described
        await asyncio.sleep(0.5)
    absent = sorted(set(names) - {n for n, item in described.items() if item["partitions"]})
    raise TopicLayoutError(f"topics not described after they were made: {absent}")


def _check_layout(settings: Settings, layout: TopicLayout, policies: dict[str, str | None],
                  replication: int | None) -> None:
    problems = []
    inputs = {name: layout.partitions[name] for name in settings.input_topics}
    if len(set(inputs.values())) != 1:
        problems.append("input topics must have the same number of partitions, found "
                        + ", ".join(f"{name}={n}" for name, n in inputs.items()))
    alerts, lifecycle = settings.topic_alerts, settings.topic_alert_lifecycle
    if layout.partitions[lifecycle] != layout.partitions[alerts]:
        problems.append(f"{lifecycle} must have as many partitions as {alerts}: found "
                        f"{layout.partitions[lifecycle]} and {layout.partitions[alerts]}")
    for name, policy in policies.items():
        if "compact" not in (policy or ""):
            problems.append(
                f"{name} has cleanup.policy={policy or 'delete'} but must be compacted "
                f"(the latest record per key is the state): kafka-configs.sh --alter "
                f"--entity-type topics --entity-name {name} --add-config "
                "cleanup.policy=compact")
    if replication is not None:
        problems.extend(
            f"{name} has replication {count}, asked {replication} (made before, perhaps by "
            "the broker's auto.create.topics.enable): recreate it or lower "
            "CXSTREAM_REPLICATION_FACTOR"
            for name, count in layout.replication.items() if count < replication)
    if problems:
        raise TopicLayoutError("; ".join(problems))


async def ensure_worker_topics(settings: Settings, partitions: int,
                               alerts_partitions: int | None = None) -> None:
    """Create the missing worker topics with ``partitions`` (that of the input topics);
    the alert events topic gets ``alerts_partitions`` (that of the lifecycle topic)."""
    admin = AIOKafkaAdminClient(**aiokafka_options(settings), request_timeout_ms=30_000)
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        wanted = {name: (partitions, config) for name, config in worker_topics(settings).items()}
        wanted[alert_event_topic(settings)] = (alerts_partitions or partitions, {})
        settled, config = webhook_settled_topic(settings)
        wanted[settled] = (alerts_partitions or partitions, config)
        missing = {name: spec for name, spec in wanted.items() if name not in existing}
        if missing:
            factor = await replication_factor(admin, settings)
            log.info("creating worker topics %s (replication %d)", sorted(missing), factor)
            await create_topics(admin, [NewTopic(name, count, factor, topic_configs=config)
                                        for name, (count, config) in missing.items()])
    finally:
        await admin.close()


async def topic_max_message_bytes(settings: Settings, topic: str) -> int | None:
    """The topic's effective ``max.message.bytes`` (None if the broker does not say)."""
    admin = AIOKafkaAdminClient(**aiokafka_options(settings), request_timeout_ms=30_000)
    try:
        await admin.start()
        value = await _config_value(admin, ConfigResourceType.TOPIC, topic,
                                    "max.message.bytes")
    finally:
        await admin.close()
    return int(value) if value is not None else None
