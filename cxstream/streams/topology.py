"""The Faust application, built from the settings: topics, agents and web views."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any, cast

import faust
from aiokafka import AIOKafkaConsumer
from faust.types.settings import Settings as FaustSettings
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from cxstream.alerts.comment_tags import load_tagger
from cxstream.alerts.config import load_rules
from cxstream.streams.alerting.wiring import register_alerting
from cxstream.streams.core import CorePorts, CoreTables, build_core
from cxstream.streams.customers.revaluation import Revaluator
from cxstream.streams.customers.state_writer import StateWriter, rebuild_value_index
from cxstream.streams.customers.survey_desk import load_waiting_surveys
from cxstream.streams.customers.value_snapshot import snapshot_folder, write_snapshots
from cxstream.streams.groups.cluster import Cluster, active_partitions
from cxstream.streams.health.collectors import OpenAlertsCollector, WorkerCollector
from cxstream.streams.health.readiness import readiness, recovery_remaining
from cxstream.streams.health.watchdog import EXIT_STALLED, StallWatchdog
from cxstream.streams.ingest.batches import Ingest, IngestLimits
from cxstream.streams.ingest.deadletter_once import (
    DeadLetterMark,
    ExactlyOnceDeadLetters,
    KafkaDeadLetterTopic,
)
from cxstream.streams.ingest.deadletter_record import copy_limit
from cxstream.streams.kafka import confirmed_sends as delivery
from cxstream.streams.kafka.changelog import BulkChangelog, kafka_sender
from cxstream.streams.kafka.clients import aiokafka_options, faust_credentials
from cxstream.streams.kafka.confirmed_sends import BatchGuard
from cxstream.streams.kafka.faust_compat import fixes, restore
from cxstream.streams.kafka.faust_compat.access import table_store
from cxstream.streams.kafka.lean_monitor import LeanMonitor
from cxstream.streams.kafka.stores import state_store
from cxstream.streams.kafka.timers import state_timer
from cxstream.streams.metrics import WorkerMetrics, add_process_collectors
from cxstream.streams.settings import Settings
from cxstream.streams.users import load_users
from cxstream.streams.web.api import AlertsApi, register_api
from cxstream.streams.web.console import register_console
from cxstream.streams.web.credentials import Credentials, signing_key

log = logging.getLogger(__name__)


class FaustEnvironmentError(RuntimeError):
    """Faust's own environment variables are set; they would override cxstream's settings."""


def check_faust_environment(environ: Mapping[str, str]) -> None:
    """Refuse to start when Faust's variables (``BROKER_URL``, ``APP_DATADIR``...) are set.

    Faust reads them itself and they win over the settings passed to the app, which would
    silently send a worker to another cluster or data folder.
    """
    names = {param.env_name for param in FaustSettings.SETTINGS.values() if param.env_name}
    present = sorted(name for name in names if name in environ)
    if present:
        raise FaustEnvironmentError(
            "unset Faust's own variables " + ", ".join(present)
            + "; configure cxstream with CXSTREAM_* settings instead"
        )


def _resolved(replication_factor: int | None) -> int:
    if replication_factor is None:
        raise ValueError("CXSTREAM_REPLICATION_FACTOR is not resolved: run_worker asks the "
                         "cluster first (streams.kafka.clients.resolved_replication)")
    return replication_factor


def build_app(settings: Settings, partition_count: int | None = None,
              alerts_partition_count: int | None = None,
              registry: CollectorRegistry | None = None,
              deadletter_partition_count: int | None = None,
              deadletter_max_message_bytes: int | None = None) -> faust.App:
    """Create the worker's Faust app with its tables, agents and views.

    ``partition_count`` is that of the input topics and ``alerts_partition_count`` that of
    the alerts topic (tables' changelogs must match their source topics).
    Raises RulesError or LexiconError when the rules or lexicon files are invalid.
    """
    check_faust_environment(os.environ)
    if not fixes.is_applied():  # without them input messages can be skipped for good
        raise RuntimeError("apply the Faust fixes first: cxstream.streams.kafka.faust_compat."
                           "install() (the worker does)")
    if settings.state_store == "rocksdb":  # one budget for every table partition
        fixes.share_rocksdb_memory(settings.state_cache_bytes)
    partitions = partition_count or settings.partitions
    rules_config = load_rules(settings.rules_file)
    tagger = load_tagger(settings.lexicons_dir)
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{server}" for server in settings.bootstrap_servers.split(",")],
        broker_credentials=faust_credentials(settings),
        store="memory://",
        datadir=str(settings.data_dir),
        topic_partitions=partitions,
        # the worker resolves it from the cluster first (clients.resolved_replication)
        topic_replication_factor=_resolved(settings.replication_factor),
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # changelog writes and alerts batched for up to 5 ms: one produce request per batch
        # instead of one per record (socket writes stood out in a py-spy profile)
        producer_linger=0.005,
        producer_max_batch_size=262_144,
        producer_max_request_size=settings.producer_max_request_bytes,
        web_enabled=True,
        # Faust's own views would serve table contents and routing to anyone
        web_tables_enabled=False,
        web_router_enabled=False,
        web_graph_enabled=False,
        web_host=settings.web_host,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        canonical_url=settings.canonical_url,
        # Standbys would double the changelog reads on two cores; a worker that takes over
        # a partition restores it from the changelog instead.
        table_standby_replicas=0,
        broker_session_timeout=settings.session_timeout_seconds,
        # Faust refuses a session longer than a request (its default 90 s), which the
        # setting allows (up to 300 s): the worker then crashed as its consumer started
        broker_request_timeout=max(90.0, settings.session_timeout_seconds + 10),
        broker_heartbeat_interval=min(3.0, settings.session_timeout_seconds / 3),
        # a restarted worker takes its partitions back without a rebalance
        consumer_group_instance_id=settings.group_instance_id,
        autodiscover=False,
        key_serializer="raw",
        value_serializer="raw",
        # Faust's default monitor keeps statistics per event that nothing reads
        # (streams.kafka.lean_monitor; bench/throughput.py has Faust's iteration with each)
        Monitor=LeanMonitor,
    )
    if registry is None:
        registry = CollectorRegistry()
        add_process_collectors(registry)
    metrics = WorkerMetrics(registry)
    if settings.bulk_restore and settings.state_store == "rocksdb":
        restore.read_changelogs_with(
            app, lambda: AIOKafkaConsumer(
                **aiokafka_options(settings), group_id=None, enable_auto_commit=False,
                auto_offset_reset="earliest", fetch_max_wait_ms=100,
                max_partition_fetch_bytes=16 * 2**20, fetch_max_bytes=64 * 2**20),
            settings.bulk_restore_min_records,
            lambda records, partitions, seconds: metrics.bulk_restored.inc(records))
    rules = settings.fold_rules()
    # bytes keys use the raw codec, so a customer key routes like the producers' keys
    customers = app.Table("customer_to_state", partitions=partitions, key_type=bytes,
                          value_type=bytes, **state_store(settings, "customer_to_state"))
    partials = app.Table("group_partials", partitions=partitions, key_type=bytes,
                         **state_store(settings, "group_partials"))
    survey_table = app.Table("survey_memory", partitions=partitions, key_type=bytes,
                             value_type=bytes, **state_store(settings, "survey_memory"))
    issues_table = app.Table("issue_priorities", partitions=partitions, key_type=bytes,
                             value_type=bytes, **state_store(settings, "issue_priorities"))
    erased = app.Table("erased_customers", partitions=partitions, key_type=bytes,
                       value_type=bytes, **state_store(settings, "erased_customers"))
    guard = BatchGuard()
    app.cx_batch_guard = guard  # type: ignore[attr-defined]  # read by the draining worker

    def deliver(send: Any, what: str) -> Any:
        kind = "changelog" if "changelog" in what else "alerts"
        return delivery.deliver(send, guard, what,
                                on_retry=metrics.send_retries.labels(kind).inc)

    async def emit(outputs: list[Any]) -> None:
        # the alert emitter is registered below: it needs the core's segment shares
        await emitter.emit(outputs)

    changelog = BulkChangelog(kafka_sender(app))
    core = build_core(settings, rules_config,
                      CoreTables(customers, partials, survey_table, issues_table, erased),
                      CorePorts(metrics, partial(active_partitions, app, settings.topic_feedback),
                                partitions, emit, changelog, deliver), tagger)
    value_index, partials_index, bands = core.index, core.partials_index, core.bands
    desk, board, shares, writer = core.surveys, core.priorities, core.shares, core.writer
    token = settings.api_token.get_secret_value() if settings.api_token else None
    cluster = Cluster(app, settings.topic_feedback, partitions, partials, value_index,
                      settings.canonical_url, token,
                      lambda reason: metrics.cluster_request_failures.labels(reason).inc(),
                      partials_index)

    @partials.on_recover
    async def index_recovered_partials() -> None:
        owned = cluster.active_partitions()
        read = partials_index.load(list(partials.items()), owned)
        if shares is not None:
            shares.to_resend |= owned  # a crash may have kept the last ones from the topic
        log.info("partials index loaded: %d tallies in %d slices", read,
                 partials_index.slice_count())

    @survey_table.on_recover
    async def index_waiting_surveys() -> None:
        if desk is not None:
            waiting = load_waiting_surveys(survey_table, desk, cluster.active_partitions())
            log.info("survey requests waiting: %d customers", waiting)

    @issues_table.on_recover
    async def index_issue_counts() -> None:
        if board is not None:
            read = board.recovered(cluster.active_partitions())
            log.info("issue counts read: %d", read)

    @customers.on_recover
    async def index_recovered_customers() -> None:
        indexed = rebuild_value_index(customers, value_index, cluster.active_partitions(),
                                      rules.state, snapshot_folder(settings.data_dir))
        log.info("value index rebuilt: %d customers with a profile", indexed)
    metrics.watch_partitions(lambda: len(cluster.active_partitions()))
    quadrants: dict[tuple[str, str], int] = {}  # counted at each value-band refresh
    last_read: dict[tuple[str, int], float] = {}  # kept by the ingest, for the lag
    metrics.registry.register(WorkerCollector(
        app, {"customer_to_state": customers, "group_partials": partials}, partials_index,
        cluster.active_partitions, rules.windows, lambda: quadrants,
        group_detail=settings.metrics_group_detail, max_keys=settings.max_group_keys,
        last_read=lambda: last_read))
    emitter, cases = register_alerting(app, settings, rules_config, metrics, partitions,
                                       alerts_partition_count or settings.partitions,
                                       rules.conventions, rules.windows, shares,
                                       cluster.active_partitions)
    metrics.registry.register(OpenAlertsCollector(cases.open_counts,
                                                  lambda: datetime.now(UTC)))
    state_lock = asyncio.Lock()  # batches, revaluations and erasures, one at a time

    async def erase_customer(customer_id: str) -> dict[str, Any] | None:
        """What was deleted, by store (None: no such customer here)."""
        async with state_lock:
            receipt = writer.erase(customer_id)
            if receipt is None:
                return None
            await writer.finish()  # the tombstones are in Kafka before the answer
        log.info("customer erased (state, remembered ids and value removed)")
        return {"deleted": receipt}
    revaluator = Revaluator(bands, value_index, cluster.active_partitions, writer,
                            core.customer_alerts)

    async def save_value_index() -> None:
        """After the drain of a clean stop: the value index of every owned partition, with
        the changelog offsets it matches (streams.customers.value_snapshot)."""
        async with state_lock:
            saved = write_snapshots(snapshot_folder(settings.data_dir), customers,
                                    value_index, cluster.active_partitions())
        log.info("value index saved for the next start: %d customers", saved)
    app.cx_after_drain = save_value_index  # type: ignore[attr-defined]  # read by the worker

    def recount_bands_after_assignment(sender: Any, *args: Any, **kwargs: Any) -> None:
        bands.ownership_changed()

    # cast: mode types the handler as a union of callables, which mypy cannot match
    app.on_partitions_assigned.connect(cast(Any, recount_bands_after_assignment))

    _register_ingest(app, settings, metrics, writer, partitions,
                     deadletter_partition_count or settings.partitions, guard, changelog,
                     copy_limit(settings.producer_max_request_bytes,
                                deadletter_max_message_bytes), state_lock, revaluator,
                     last_read)

    watchdog = _register_watchdog(app, settings, metrics)

    if desk is not None:
        @state_timer(app, rules_config.surveys.check_every_seconds, metrics)
        async def send_waiting_surveys() -> None:
            async with state_lock:
                await _send_waiting_surveys(writer, cluster.active_partitions(), guard)

    @state_timer(app, settings.value_band_refresh_seconds, metrics)
    async def refresh_value_bands() -> None:
        await bands.refresh(cluster)
        async with state_lock:
            await _revaluate(revaluator, guard)
        counted = value_index.quadrant_counts(cluster.active_partitions(), bands.current)
        quadrants.clear()
        quadrants.update(counted)

    users = load_users(settings.users_file, token)
    credentials = Credentials(users, signing_key(token), settings.console_session_hours,
                              token)
    register_api(app, customers, cluster, bands, rules, credentials, rules_config.routing,
                 erase_customer,
                 AlertsApi(cases, alerts_partition_count or settings.partitions),
                 None if desk is None else table_store(survey_table),
                 settings.agent_min_answers, board)
    register_console(app, settings, credentials, rules_config, rules.windows)
    _register_metrics_view(app, metrics)
    _register_health_views(app, watchdog)
    metrics.ready.set_function(lambda: 1.0 if readiness(app, watchdog).ready else 0.0)
    metrics.recovery_remaining.set_function(lambda: recovery_remaining(app))
    return app


def _register_watchdog(app: faust.App, settings: Settings, metrics: WorkerMetrics
                       ) -> StallWatchdog:
    async def give_up(reason: str) -> None:
        app.cx_exit_code = EXIT_STALLED  # type: ignore[attr-defined]  # read by run_worker
        os.kill(os.getpid(), signal.SIGTERM)  # drain and commit, then exit 75

    watchdog = StallWatchdog(app, set(settings.input_topics), settings.stall_seconds,
                             lambda action: metrics.partition_stalls.labels(action).inc(),
                             give_up, time.monotonic)

    @app.timer(max(1.0, settings.stall_seconds / 4))
    async def watch_for_stalls() -> None:
        await watchdog.check()

    return watchdog


def _register_ingest(app: faust.App, settings: Settings, metrics: WorkerMetrics,
                     writer: StateWriter, partitions: int, deadletter_partitions: int,
                     guard: BatchGuard, changelog: BulkChangelog,
                     deadletter_copy_limit: int, state_lock: asyncio.Lock,
                     revaluator: Revaluator,
                     last_read: dict[tuple[str, int], float] | None = None) -> None:
    input_topic = app.topic(*settings.input_topics, key_serializer="raw", value_serializer="raw")

    def deliver(send: Any, what: str) -> Any:
        return delivery.deliver(send, guard, what,
                                on_retry=metrics.deadletter_send_retries.inc)

    marks_table = app.Table("deadletter_marks", partitions=partitions, key_type=bytes,
                            value_type=bytes)
    deadletters = ExactlyOnceDeadLetters(
        KafkaDeadLetterTopic(aiokafka_options(settings), settings.topic_deadletter,
                             deadletter_partitions, settings.producer_max_request_bytes),
        TableMarks(marks_table, changelog), deliver)

    def read_back_deadletters_after_assignment(sender: Any, *args: Any,
                                                **kwargs: Any) -> None:
        deadletters.forget_verified()

    app.on_partitions_assigned.connect(cast(Any, read_back_deadletters_after_assignment))
    app.cx_deadletters = deadletters  # type: ignore[attr-defined]  # for inspection

    ingest = Ingest(
        kind_of_topic=settings.input_kinds(),
        limits=IngestLimits(settings.max_event_bytes, deadletter_copy_limit,
                            settings.max_clock_skew_seconds),
        metrics=metrics,
        deadletters=deadletters,
        handle_batch=writer.handle,
        finish=writer.finish,
    )
    if last_read is not None:
        ingest.last_read = last_read

    # Concurrency 1 (faust-streaming#606): scale with partitions and workers instead.
    @app.agent(input_topic, name="ingest_events", concurrency=1)
    async def ingest_events(stream: Any) -> None:  # faust.Stream: take_events is untyped
        async for events in stream.take_events(settings.batch_size,
                                               within=settings.batch_timeout_seconds):
            async with state_lock:
                try:
                    await ingest.process(events)
                except Exception as exc:  # leaving the batch would acknowledge it
                    await guard.fail(exc)
                await _revaluate(revaluator, guard)


async def _send_waiting_surveys(writer: StateWriter, owned: set[int], guard: BatchGuard
                                ) -> None:
    """Deferred survey requests whose condition cleared."""
    async def send() -> None:
        writer.send_due_surveys(owned)
        await writer.finish()
    await _outside_batches(send, guard, "looking at the waiting survey requests")


async def _revaluate(revaluator: Revaluator, guard: BatchGuard) -> None:
    """Customers who entered the high-value band."""
    await _outside_batches(revaluator.run, guard,
                           "evaluating customers who entered the high-value band")


async def _outside_batches(work: Callable[[], Awaitable[object]], guard: BatchGuard,
                           what: str) -> None:
    """Timer work that writes state: a failure leaves it for the next run (nothing of an
    input is lost), unless sending failed for good."""
    try:
        await work()
    except delivery.SendFailed as exc:
        await guard.fail(exc)
    except delivery.BatchAbandoned:
        pass
    except Exception:
        log.exception("%s failed", what)


class TableMarks:
    """Dead-letter marks (streams.ingest.deadletter_once.DeadLetterMark) in a Faust table, keyed by
    "<topic>|<partition>" and written with the batch's other changelog records."""

    def __init__(self, table: Any, changelog: BulkChangelog) -> None:
        self.table = table
        self.changelog = changelog

    @staticmethod
    def _key(topic: str, partition: int) -> bytes:
        return f"{topic}|{partition}".encode()

    def get(self, topic: str, partition: int) -> DeadLetterMark:
        return DeadLetterMark.decode(table_store(self.table).get(self._key(topic, partition)))

    def set(self, topic: str, partition: int, mark: DeadLetterMark) -> None:
        if mark.offset >= self.get(topic, partition).offset:
            self.changelog.set(self.table, partition, self._key(topic, partition),
                               mark.encode())


def _register_health_views(app: faust.App, watchdog: StallWatchdog) -> None:
    """/healthz and /readyz (streams.health.readiness): no token, no data."""

    @app.page("/healthz")
    async def alive(web: Any, request: Any) -> Any:
        return web.json({"alive": True})

    @app.page("/readyz")
    async def ready(web: Any, request: Any) -> Any:
        found = readiness(app, watchdog)
        return web.json({"ready": found.ready, "reason": found.reason},
                        status=200 if found.ready else 503)


def _register_metrics_view(app: faust.App, metrics: WorkerMetrics) -> None:
    @app.page("/metrics")
    async def serve_metrics(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(metrics.registry),
                         content_type=CONTENT_TYPE_LATEST.split(";")[0])
