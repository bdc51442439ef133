"""Kafka client options from the settings, and creation of the contract's topics."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from typing import Any

import faust
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.helpers import create_ssl_context

from cxstream.streams.settings import Settings

log = logging.getLogger(__name__)


class TopicLayoutError(RuntimeError):
    """The existing topics cannot be used as they are (for example not co-partitioned)."""


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for SSL or SASL_SSL, or None for plaintext protocols."""
    if not settings.security_protocol.endswith("SSL"):
        return None
    password = settings.ssl_keyfile_password
    return create_ssl_context(
        cafile=str(settings.ssl_cafile) if settings.ssl_cafile else None,
        certfile=str(settings.ssl_certfile) if settings.ssl_certfile else None,
        keyfile=str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
        password=password.get_secret_value() if password else None,
    )


def aiokafka_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments shared by every aiokafka client the project creates."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": settings.security_protocol,
        "ssl_context": ssl_context(settings),
    }
    if settings.security_protocol.startswith("SASL_"):
        assert settings.sasl_password is not None  # checked by Settings
        options.update(
            sasl_mechanism=settings.sasl_mechanism,
            sasl_plain_username=settings.sasl_username,
            sasl_plain_password=settings.sasl_password.get_secret_value(),
        )
    return options


def faust_credentials(settings: Settings) -> Any:
    """Faust's credentials object for the configured protocol (None for PLAINTEXT)."""
    context = ssl_context(settings)
    if settings.security_protocol.startswith("SASL_"):
        assert settings.sasl_password is not None and settings.sasl_mechanism is not None
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_password.get_secret_value(),
            mechanism=settings.sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


#: the worker's tables (each has a compacted changelog topic named after the app)
WORKER_TABLES = ("customer_to_state", "group_partials", "deadletter_marks", "issue_windows",
                 "erased_customers", "segment_tallies", "survey_memory",
                 "issue_priorities")


def worker_topics(settings: Settings) -> dict[str, dict[str, str]]:
    """The worker's own topics and their configs: the recurring-issue signals, the segment
    shares and the tables' changelogs. Created before the worker starts because Faust
    creates them only while it joins its group, and a topic created that late can be
    missing from the first assignment and from the producer's metadata for minutes (a
    worker stalled so)."""
    topics: dict[str, dict[str, str]] = {f"{settings.app_id}-issue-signals": {},
                                         segment_shares_topic(settings.app_id): {}}
    for table in WORKER_TABLES:
        topics[f"{settings.app_id}-{table}-changelog"] = {"cleanup.policy": "compact"}
    return topics


def segment_shares_topic(app_id: str) -> str:
    """The internal topic of each input partition's segment tallies, keyed by segment
    (streams.groups.segment_drops)."""
    return f"{app_id}-segment-shares"


def webhook_settled_topic(settings: Settings) -> tuple[str, dict[str, str]]:
    """The internal topic of the webhook sink's settled notices (delivered, dead-lettered
    or expired), one record per alert record of cx.alerts, in the same partition, with its
    config: kept twice CXSTREAM_WEBHOOK_RETRY_MAX_AGE_SECONDS (at least a day), past which
    no alert record waits above its partition's commit (streams.alerting.webhooks.sink)."""
    keep = max(2 * settings.webhook_retry_max_age_seconds, 86_400.0)
    return (f"{settings.app_id}-webhook-settled",
            {"cleanup.policy": "delete", "retention.ms": str(int(keep * 1000))})


def alert_event_topic(settings: Settings) -> str:
    """The internal topic of alert messages and resolutions keyed by alert id, from which
    the alert cases (the lifecycle topic) are kept."""
    return f"{settings.app_id}-alert-events"


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
    responses = await admin.describe_configs([ConfigResource(
        ConfigResourceType.BROKER, str(broker), {"default.replication.factor": None})])
    for response in responses:
        for resource in response.resources:
            for entry in resource[4]:  # (name, value, read_only, is_default, sensitive...)
                if entry[0] == "default.replication.factor" and entry[1] is not None:
                    return int(entry[1])
    return 1  # a broker that does not say: Kafka's own default


async def resolved_replication(settings: Settings) -> Settings:
    """``settings`` with the replication factor the cluster decides (for the app's
    changelog topics, which Faust creates)."""
    admin = AIOKafkaAdminClient(**aiokafka_options(settings), request_timeout_ms=30_000)
    await admin.start()
    try:
        factor = await replication_factor(admin, settings, strict=False)
    finally:
        await admin.close()
    return settings.model_copy(update={"replication_factor": factor})


async def ensure_worker_topics(settings: Settings, partitions: int,
                               alerts_partitions: int | None = None) -> None:
    """Create the missing worker topics with ``partitions`` (that of the input topics);
    the alert events topic gets ``alerts_partitions`` (that of the lifecycle topic)."""
    admin = AIOKafkaAdminClient(**aiokafka_options(settings), request_timeout_ms=30_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = {name: (partitions, config) for name, config in worker_topics(settings).items()}
        wanted[alert_event_topic(settings)] = (alerts_partitions or partitions, {})
        settled, config = webhook_settled_topic(settings)
        wanted[settled] = (alerts_partitions or partitions, config)
        missing = {name: spec for name, spec in wanted.items() if name not in existing}
        if missing:
            factor = await replication_factor(admin, settings)
            log.info("creating worker topics %s (replication %d)", sorted(missing), factor)
            await admin.create_topics(
                [NewTopic(name, count, factor, topic_configs=config)
                 for name, (count, config) in missing.items()], timeout_ms=30_000)
    finally:
        await admin.close()


def contract_topics(settings: Settings) -> list[str]:
    """Every topic of the contract: the three inputs, alerts, the dead-letter topics, the
    alert cases and the survey requests."""
    return [*settings.input_topics, settings.topic_alerts, settings.topic_deadletter,
            settings.topic_alerts_deadletter, settings.topic_alert_lifecycle,
            settings.topic_survey_requests]


async def ensure_topics(settings: Settings) -> dict[str, int]:
    """Create the contract's missing topics; return each topic's partition count.

    Input topics must be co-partitioned (same partition count), because every input is
    keyed by customer_id and one worker owns a customer across all three.
    """
    admin = AIOKafkaAdminClient(**aiokafka_options(settings), request_timeout_ms=30_000)
    await admin.start()
    try:
        wanted = contract_topics(settings)
        existing = set(await admin.list_topics())
        missing = [name for name in wanted if name not in existing]
        lifecycle = settings.topic_alert_lifecycle
        make_lifecycle = lifecycle in missing
        if make_lifecycle:
            missing.remove(lifecycle)
        alerts_existed = settings.topic_alerts not in missing
        factor = (await replication_factor(admin, settings)
                  if missing or make_lifecycle else 1)
        if missing:
            log.info("creating topics %s with %d partitions", missing, settings.partitions)
            # profiles: the latest per customer wins, so compaction keeps every customer
            # for as long as the topic lives (a replay still finds every value)
            new = [NewTopic(name, settings.partitions, factor,
                            topic_configs={"cleanup.policy": "compact"}
                            if name == settings.topic_customers else None)
                   for name in missing]
            await admin.create_topics(new, timeout_ms=30_000)
        if make_lifecycle:  # as many partitions as the alerts, compacted
            count = settings.partitions if not alerts_existed else len(
                (await admin.describe_topics([settings.topic_alerts]))[0]["partitions"])
            log.info("creating topic %s with %d partitions (compacted)", lifecycle, count)
            await admin.create_topics([NewTopic(
                lifecycle, count, factor,
                topic_configs={"cleanup.policy": "compact"})], timeout_ms=30_000)
        for _ in range(20):  # topics just created may not be described in full yet
            described = await admin.describe_topics(wanted)
            if all(item["partitions"] for item in described):
                break
            await asyncio.sleep(0.5)
    finally:
        await admin.close()
    counts = {item["topic"]: len(item["partitions"]) for item in described}
    input_counts = {name: counts[name] for name in settings.input_topics}
    if len(set(input_counts.values())) != 1:
        raise TopicLayoutError(
            "input topics must have the same number of partitions, found "
            + ", ".join(f"{name}={n}" for name, n in input_counts.items())
        )
    alerts, lifecycle = settings.topic_alerts, settings.topic_alert_lifecycle
    if counts[lifecycle] != counts[alerts]:
        raise TopicLayoutError(
            f"{lifecycle} must have as many partitions as {alerts}: found {counts[lifecycle]} "
            f"and {counts[alerts]}")
    return counts


async def topic_max_message_bytes(settings: Settings, topic: str) -> int | None:
    """The topic's effective ``max.message.bytes`` (None if the broker does not say)."""
    admin = AIOKafkaAdminClient(**aiokafka_options(settings), request_timeout_ms=30_000)
    await admin.start()
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, {"max.message.bytes": None})])
    finally:
        await admin.close()
    for response in responses:
        for resource in response.resources:
            for entry in resource[4]:  # (name, value, read_only, is_default, sensitive...)
                if entry[0] == "max.message.bytes" and entry[1] is not None:
                    return int(entry[1])
    return None
