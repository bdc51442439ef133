"""The services of one worker, built once and handed to the agents, timers and views that
streams.topology declares: one typed object, nothing hung on the Faust app.

``read_files`` reads the rules file, the lexicons and the users file once (a bad one
stops the start naming it); ``build_services`` builds every part over the topics and
tables the topology declared, in the order each needs the others: metrics, the core
(fold, customer rules, survey desk, priorities), the cluster view, the alert cases and
publishing, the group rules, the ingest, the watchdog, the credentials.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry

from cxstream.alerts.comment_tags import TopicTagger, load_tagger
from cxstream.alerts.config import RulesConfig, load_rules
from cxstream.streams.alerting.cases import AlertCases
from cxstream.streams.alerting.group_alerts import SegmentDropCheck
from cxstream.streams.alerting.publishing import EVENT_SOURCE, AlertEmitter, AlertPublisher
from cxstream.streams.alerting.recurring_issues import (
    IssueWindowExpiry,
    RecurringIssues,
    issue_retention,
)
from cxstream.streams.alerting.webhooks import WebhookRun, webhook_run
from cxstream.streams.core import Core, CorePorts, CoreTables, build_core
from cxstream.streams.credentials import Credentials, signing_key
from cxstream.streams.customers.revaluation import Revaluator
from cxstream.streams.customers.state_work import StateWork
from cxstream.streams.customers.value_snapshot import snapshot_folder
from cxstream.streams.groups.cluster import Cluster
from cxstream.streams.groups.drivers import GroupDrivers
from cxstream.streams.groups.segment_drops import SegmentTallies
from cxstream.streams.health.collectors import OpenAlertsCollector, WorkerCollector
from cxstream.streams.health.readiness import readiness, recovery_remaining
from cxstream.streams.health.watchdog import EXIT_STALLED, StallWatchdog
from cxstream.streams.ingest.batches import Ingest, IngestLimits
from cxstream.streams.ingest.deadletter_once import (
    ExactlyOnceDeadLetters,
    KafkaDeadLetterTopic,
    TableMarks,
)
from cxstream.streams.ingest.deadletter_record import copy_limit
from cxstream.streams.kafka import confirmed_sends
from cxstream.streams.kafka.agents import OwnedPartitions
from cxstream.streams.kafka.changelog import BulkChangelog, kafka_sender
from cxstream.streams.kafka.clients import aiokafka_options
from cxstream.streams.kafka.confirmed_sends import BatchGuard
from cxstream.streams.kafka.faust_compat import restore
from cxstream.streams.kafka.table_writers import BulkWrites, ConfirmedSend
from cxstream.streams.metrics import WorkerMetrics, add_process_collectors
from cxstream.streams.settings import Settings
from cxstream.streams.users import Users, load_users


@dataclass(frozen=True)
class WorkerFiles:
    """The files a worker reads at start-up, read once."""

    rules: RulesConfig
    tagger: TopicTagger
    users: Users


def read_files(settings: Settings) -> WorkerFiles:
    """Raises RulesError, LexiconError or UsersError naming the file and the problem."""
    token = settings.api_token.get_secret_value() if settings.api_token else None
    return WorkerFiles(load_rules(settings.rules_file), load_tagger(settings.lexicons_dir),
                       load_users(settings.users_file, token))


@dataclass(frozen=True)
class Partitions:
    """The partitions of the contract's topics as the cluster has them (tables' changelogs
    must match their source topics), and the dead-letter topic's message limit."""

    inputs: int
    alerts: int
    deadletter: int
    deadletter_max_message_bytes: int | None = None


@dataclass
class Topics:
    """Every topic a worker reads or writes (streams.topology declares them)."""

    inputs: Any  # cx.customers, cx.interactions, cx.feedback
    alerts: Any  # cx.alerts
    alert_events: Any  # <app_id>-alert-events: the cases are kept from it
    issue_signals: Any  # <app_id>-issue-signals
    segment_shares: Any  # <app_id>-segment-shares (None: segment drops are off)
    survey_requests: Any  # cx.survey-requests
    alert_lifecycle: Any  # cx.alert-lifecycle: the changelog of alert_cases


@dataclass
class Tables:
    """Every table of a worker, named as the map it holds (the Faust name, which names
    its changelog topic, in brackets)."""

    customer_to_state: Any  # [customer_to_state] customer id -> state, history records
    slice_to_partial: Any  # [group_partials] partition|dimension|window|start|key -> tally
    customer_to_survey_memory: Any  # [survey_memory] customer id -> survey memory
    issue_to_count: Any  # [issue_priorities] issue window -> count; customer -> marks
    erased_id_to_marker: Any  # [erased_customers] digest of an erased id -> applied offsets
    input_partition_to_mark: Any  # [deadletter_marks] topic|partition -> dead-letter mark
    alert_to_case: Any  # [alert_cases] alert id -> case (changelog: cx.alert-lifecycle)
    issue_window_to_count: Any  # [issue_windows] issue|window start -> customers counted
    segment_window_to_shares: Any  # [segment_tallies] None: segment drops are off


@dataclass
class ExitRequest:
    """The exit code a part of the worker asked for (the stall watchdog's 75), read by
    ``run_worker`` once Faust's worker has stopped."""

    code: int | None = None


@dataclass
class WorkerServices:
    """What a worker's agents, timers and views act through."""

    settings: Settings
    files: WorkerFiles
    metrics: WorkerMetrics
    guard: BatchGuard  # confirmed sends; read by the draining stop
    core: Core
    cluster: Cluster
    state: StateWork
    deadletters: ExactlyOnceDeadLetters
    cases: AlertCases
    recurring: RecurringIssues
    segment_drops: SegmentDropCheck | None
    webhooks: WebhookRun | None
    watchdog: StallWatchdog
    credentials: Credentials
    partitions: Partitions
    exit: ExitRequest = field(default_factory=ExitRequest)
    #: (segment, quadrant) -> customers, counted at each value-band refresh
    quadrants: dict[tuple[str, str], int] = field(default_factory=dict)
    tables: Tables | None = None

    async def refresh_value_bands(self) -> None:
        """Timer ``refresh_value_bands``: the other workers' shares, then the customers
        a fall of a threshold put in the band, then the quadrant counts."""
        bands, index = self.core.bands, self.core.index
        await bands.refresh(self.cluster)
        await self.state.revaluate()
        counted = index.quadrant_counts(self.cluster.active_partitions(), bands.current)
        self.quadrants.clear()
        self.quadrants.update(counted)

    async def after_drain(self) -> None:
        """Once a clean stop has drained: the value index saved for the next start."""
        assert self.tables is not None
        await self.state.save_value_index(snapshot_folder(self.settings.data_dir),
                                          self.tables.customer_to_state)

    async def stop_for_restart(self, reason: str) -> None:
        """The watchdog gave up: drain and commit, then exit 75 (run_worker)."""
        self.exit.code = EXIT_STALLED
        os.kill(os.getpid(), signal.SIGTERM)


def build_services(app: Any, settings: Settings, files: WorkerFiles, topics: Topics,
                   tables: Tables, partitions: Partitions,
                   registry: CollectorRegistry | None = None) -> WorkerServices:
    """Every part of a worker, over the app's topics and tables."""
    if registry is None:
        registry = CollectorRegistry()
        add_process_collectors(registry)
    metrics = WorkerMetrics(registry)
    metrics.start_series(settings.input_topics)
    _restore_in_bulk(app, settings, metrics)
    guard = BatchGuard()
    input_owned = OwnedPartitions(app, settings.topic_feedback)
    changelog = BulkChangelog(kafka_sender(app))
    publisher = AlertPublisher(topics.alerts, topics.alert_events,
                               f"{EVENT_SOURCE}/{settings.app_id}")
    emitter = AlertEmitter(publisher, topics.issue_signals, metrics, topics.segment_shares,
                           topics.survey_requests)

    writes = BulkWrites(changelog, _confirmed(guard, metrics.send_retries.labels("changelog")))
    core = build_core(settings, files.rules, CoreTables(
        tables.customer_to_state, tables.slice_to_partial, tables.customer_to_survey_memory,
        tables.issue_to_count, tables.erased_id_to_marker),
        CorePorts(metrics, input_owned, partitions.inputs, emitter.emit, writes,
                  _confirmed(guard, metrics.send_retries.labels("alerts"))), files.tagger)
    token = settings.api_token.get_secret_value() if settings.api_token else None
    cluster = Cluster(app, settings.topic_feedback, partitions.inputs, tables.slice_to_partial,
                      core.index, settings.canonical_url, token,
                      lambda reason: metrics.cluster_request_failures.labels(reason).inc(),
                      core.partials_index)
    cases = AlertCases(tables.alert_to_case, files.rules, metrics, partitions.alerts,
                       BulkChangelog(kafka_sender(app)),
                       OwnedPartitions(app, topics.alert_events), publisher.follow_up)
    deadletters = _deadletters(settings, tables, changelog, partitions, guard, metrics)
    last_read: dict[tuple[str, int], float] = {}  # kept by the ingest, for the lag
    ingest = _ingest(settings, partitions, metrics, deadletters, core, last_read)
    revaluator = Revaluator(core.bands, core.index, input_owned, core.writer,
                            core.customer_alerts)
    services = WorkerServices(
        settings=settings, files=files, metrics=metrics, guard=guard, core=core,
        cluster=cluster, state=StateWork(ingest, core.writer, revaluator, guard, input_owned),
        deadletters=deadletters, cases=cases,
        recurring=_recurring_issues(app, settings, files.rules, tables, topics, publisher,
                                    metrics, partitions),
        segment_drops=_segment_drops(app, settings, files.rules, tables, topics, publisher,
                                     metrics, core, input_owned, cluster),
        webhooks=webhook_run(settings, files.rules, metrics),
        watchdog=StallWatchdog(app, set(settings.input_topics), settings.stall_seconds,
                               lambda action: metrics.partition_stalls.labels(action).inc(),
                               lambda reason: services.stop_for_restart(reason),
                               time.monotonic),
        credentials=Credentials(files.users, signing_key(token),
                                settings.console_session_hours, token),
        partitions=partitions, tables=tables)
    _collect_metrics(app, services, tables, last_read)
    return services


def _confirmed(guard: BatchGuard, retries: Any) -> ConfirmedSend:
    """Sends run until Kafka confirms them, each retry counted on ``retries`` (a counter
    of cxstream_send_retries_total or cxstream_deadletter_send_retries_total)."""
    def send(work: Any, what: str) -> Any:
        return confirmed_sends.send_confirmed(work, guard, what, on_retry=retries.inc)
    return send


def _restore_in_bulk(app: Any, settings: Settings, metrics: WorkerMetrics) -> None:
    """Tables read back from their changelogs in bulk (Faust fix 11), when enabled."""
    if not (settings.bulk_restore and settings.state_store == "rocksdb"):
        return
    restore.read_changelogs_with(
        app, lambda: AIOKafkaConsumer(
            **aiokafka_options(settings), group_id=None, enable_auto_commit=False,
            auto_offset_reset="earliest", fetch_max_wait_ms=100,
            max_partition_fetch_bytes=16 * 2**20, fetch_max_bytes=64 * 2**20),
        settings.bulk_restore_min_records,
        lambda records, partitions, seconds: metrics.bulk_restored.inc(records))


def _ingest(settings: Settings, partitions: Partitions, metrics: WorkerMetrics,
            deadletters: ExactlyOnceDeadLetters, core: Core,
            last_read: dict[tuple[str, int], float]) -> Ingest:
    return Ingest(
        kind_of_topic=settings.input_kinds(),
        limits=IngestLimits(settings.max_event_bytes,
                            copy_limit(settings.producer_max_request_bytes,
                                       partitions.deadletter_max_message_bytes),
                            settings.max_clock_skew_seconds),
        metrics=metrics, deadletters=deadletters, handle_batch=core.writer.handle,
        finish=core.writer.finish, last_read=last_read)


def _deadletters(settings: Settings, tables: Tables, changelog: BulkChangelog,
                 partitions: Partitions, guard: BatchGuard, metrics: WorkerMetrics
                 ) -> ExactlyOnceDeadLetters:
    return ExactlyOnceDeadLetters(
        KafkaDeadLetterTopic(aiokafka_options(settings), settings.topic_deadletter,
                             partitions.deadletter, settings.producer_max_request_bytes),
        TableMarks(tables.input_partition_to_mark, changelog),
        _confirmed(guard, metrics.deadletter_send_retries))


def _recurring_issues(app: Any, settings: Settings, config: RulesConfig, tables: Tables,
                      topics: Topics, publisher: AlertPublisher, metrics: WorkerMetrics,
                      partitions: Partitions) -> RecurringIssues:
    expiry = IssueWindowExpiry(tables.issue_window_to_count, config,
                               issue_retention(settings.allowed_lateness_seconds, config),
                               partitions.inputs, BulkChangelog(kafka_sender(app)),
                               OwnedPartitions(app, topics.issue_signals),
                               settings.max_group_keys, metrics)
    return RecurringIssues(expiry, publisher, metrics)


def _segment_drops(app: Any, settings: Settings, config: RulesConfig, tables: Tables,
                   topics: Topics, publisher: AlertPublisher, metrics: WorkerMetrics,
                   core: Core, input_owned: OwnedPartitions, cluster: Cluster
                   ) -> SegmentDropCheck | None:
    if core.shares is None or topics.segment_shares is None:
        return None
    tallies = SegmentTallies(tables.segment_window_to_shares, core.shares.spec, config,
                             core.rules.conventions, BulkChangelog(kafka_sender(app)),
                             OwnedPartitions(app, topics.segment_shares))
    return SegmentDropCheck(settings, config, metrics, publisher, core.shares, tallies,
                            topics.segment_shares, input_owned,
                            GroupDrivers(cluster, core.rules.conventions, config.drivers))


def _collect_metrics(app: Any, services: WorkerServices, tables: Tables,
                     last_read: dict[tuple[str, int], float]) -> None:
    """The gauges read at scrape time."""
    metrics, core, settings = services.metrics, services.core, services.settings
    owned = services.cluster.active_partitions
    metrics.watch_partitions(lambda: len(owned()))
    metrics.registry.register(WorkerCollector(
        app, {"customer_to_state": tables.customer_to_state,
              "group_partials": tables.slice_to_partial}, core.partials_index, owned,
        core.rules.windows, lambda: services.quadrants,
        group_detail=settings.metrics_group_detail, max_keys=settings.max_group_keys,
        last_read=lambda: last_read))
    metrics.registry.register(OpenAlertsCollector(services.cases.open_counts,
                                                  lambda: datetime.now(UTC)))
    metrics.ready.set_function(
        lambda: 1.0 if readiness(app, services.watchdog).ready else 0.0)
    metrics.recovery_remaining.set_function(lambda: recovery_remaining(app))
