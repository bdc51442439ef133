"""What a worker runs: every topic, table, agent, timer, task and web view, declared here
in the order data flows through them.

    cx.customers ─┐
    cx.interactions ─┼─▶ agent ingest_events ──▶ validate (ingest.batches), dead letters
    cx.feedback ─┘        │                         to cx.deadletter (ingest.deadletter_once)
                          ▼
          the core (core.build_core): fold, customer rules, survey desk, priorities
          tables customer_to_state, group_partials, survey_memory, issue_priorities,
                 erased_customers, deadletter_marks
                          │ outputs, sent before the batch is acknowledged
          ┌───────────────┼──────────────────┬─────────────────────┐
          ▼               ▼                  ▼                     ▼
    cx.alerts +     <app>-issue-signals  <app>-segment-shares  cx.survey-requests
    <app>-alert-events    │                  │
          │               ▼                  ▼
          │   agent count_recurring_issues   agent fold_segment_shares
          │   table issue_windows            table segment_tallies
          ▼                                  timer check_segment_drops
    agent track_alert_cases ─▶ table alert_cases (its changelog: cx.alert-lifecycle)
    timers check_alert_deadlines, forget_resolved_alerts
    cx.alerts ─▶ task deliver_alerts_to_webhook (its own consumer, alerting.webhooks)

Timers that read or write state wait while the worker restores its tables
(kafka.timers.state_timer): restoring state never acts. Web views: /api (web.api),
/console (web.console), /metrics, /healthz and /readyz.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, cast

import faust
from prometheus_client import CollectorRegistry

from cxstream.streams.customers.survey_desk import load_waiting_surveys
from cxstream.streams.customers.value_snapshot import rebuild_value_index, snapshot_folder
from cxstream.streams.health.views import register_health_views
from cxstream.streams.kafka.agents import batches
from cxstream.streams.kafka.clients import alert_event_topic, segment_shares_topic
from cxstream.streams.kafka.faust_app import check_faust_environment, faust_app
from cxstream.streams.kafka.faust_compat import fixes
from cxstream.streams.kafka.stores import state_store
from cxstream.streams.kafka.timers import state_timer
from cxstream.streams.services import (
    Partitions,
    Tables,
    Topics,
    WorkerFiles,
    WorkerServices,
    build_services,
    read_files,
)
from cxstream.streams.settings import Settings
from cxstream.streams.web.api import register_api
from cxstream.streams.web.console.routes import register_console

RAW: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
log = logging.getLogger(__name__)


@dataclass
class Worker:
    """A worker's Faust app and the services its agents, timers and views act through."""

    app: faust.App
    services: WorkerServices


def build_app(settings: Settings, partition_count: int | None = None,
              alerts_partition_count: int | None = None,
              registry: CollectorRegistry | None = None,
              deadletter_partition_count: int | None = None,
              deadletter_max_message_bytes: int | None = None,
              files: WorkerFiles | None = None) -> Worker:
    """The worker: its app with every topic, table, agent, timer and view, and its services.

    The partition counts are those of the topics on the cluster (tables' changelogs must
    match their source topics); ``files``: the rules, lexicons and users as read at
    start-up (read here when not given). Raises RulesError, LexiconError or UsersError
    when one of those files is invalid.
    """
    check_faust_environment(os.environ)
    if not fixes.is_applied():  # without them input messages can be skipped for good
        raise RuntimeError("apply the Faust fixes first: cxstream.streams.kafka.faust_compat."
                           "install() (the worker does)")
    if settings.state_store == "rocksdb":  # one budget for every table partition
        fixes.share_rocksdb_memory(settings.state_cache_bytes)
    files = files or read_files(settings)
    partitions = Partitions(partition_count or settings.partitions,
                            alerts_partition_count or settings.partitions,
                            deadletter_partition_count or settings.partitions,
                            deadletter_max_message_bytes)
    app = faust_app(settings, partitions.inputs)
    topics = declare_topics(app, settings, files, partitions)
    tables = declare_tables(app, settings, topics, partitions)
    services = build_services(app, settings, files, topics, tables, partitions, registry)
    declare_agents(app, topics, services)
    declare_recovery(app, tables, services)
    declare_timers(app, services)
    declare_web(app, services)
    return Worker(app, services)


def declare_topics(app: faust.App, settings: Settings, files: WorkerFiles,
                   partitions: Partitions) -> Topics:
    """Every topic, as raw bytes (the worker validates with pydantic itself)."""
    segment_drops_on = files.rules.segment_drop.enabled
    return Topics(
        inputs=app.topic(*settings.input_topics, **RAW),
        alerts=app.topic(settings.topic_alerts, **RAW),
        alert_events=app.topic(alert_event_topic(settings), partitions=partitions.alerts,
                               internal=True, **RAW),
        issue_signals=app.topic(f"{settings.app_id}-issue-signals",
                                partitions=partitions.inputs, internal=True, **RAW),
        segment_shares=app.topic(segment_shares_topic(settings.app_id),
                                 partitions=partitions.inputs, internal=True, **RAW)
        if segment_drops_on else None,
        survey_requests=app.topic(settings.topic_survey_requests, **RAW),
        # compacted, with as many partitions as cx.alerts (topic_admin.ensure_topics);
        # a changelog, never acknowledged by a stream, as Faust declares its own: with
        # acks on, Faust's stall check saw its end move past a position no stream
        # advances and logged "Stream has not started processing" from an idle worker
        alert_lifecycle=app.topic(settings.topic_alert_lifecycle,
                                  partitions=partitions.alerts, acks=False, **RAW),
    )


def declare_tables(app: faust.App, settings: Settings, topics: Topics,
                   partitions: Partitions) -> Tables:
    """Every table, named as the map it holds (and by its Faust name, which names its
    changelog topic); bytes keys use the raw codec, so a customer key routes like the
    producers' keys. Each changelog has its source's partitions."""
    def table(name: str, count: int = partitions.inputs, stored: bool = True,
              **options: Any) -> Any:
        where = state_store(settings, name) if stored else {}
        return app.Table(name, partitions=count, key_type=bytes, value_type=bytes,
                         **where, **options)

    return Tables(
        customer_to_state=table("customer_to_state"),
        # its values are JSON: Faust's default codec
        slice_to_partial=app.Table("group_partials", partitions=partitions.inputs,
                                   key_type=bytes, **state_store(settings, "group_partials")),
        customer_to_survey_memory=table("survey_memory"),
        issue_to_count=table("issue_priorities"),
        erased_id_to_marker=table("erased_customers"),
        input_partition_to_mark=table("deadletter_marks", stored=False),
        alert_to_case=table("alert_cases", partitions.alerts,
                            changelog_topic=topics.alert_lifecycle),
        issue_window_to_count=table("issue_windows", stored=False),
        segment_window_to_shares=table("segment_tallies", stored=False)
        if topics.segment_shares is not None else None,
    )


def declare_agents(app: faust.App, topics: Topics, services: WorkerServices) -> None:
    """One agent per source topic; concurrency 1 (faust-streaming#606): the worker scales
    with partitions and workers instead."""
    settings = services.settings

    @app.agent(topics.inputs, name="ingest_events", concurrency=1)
    async def ingest_events(stream: Any) -> None:
        async for events in batches(stream, settings):
            await services.state.take_batch(events)

    @app.agent(topics.alert_events, name="track_alert_cases", concurrency=1)
    async def track_alert_cases(stream: Any) -> None:
        async for events in batches(stream, settings):
            await services.cases.take_events([event.message.value for event in events])

    @app.agent(topics.issue_signals, name="count_recurring_issues", concurrency=1)
    async def count_recurring_issues(stream: Any) -> None:
        async for events in batches(stream, settings):
            await services.recurring.count(events)

    drops = services.segment_drops
    if drops is not None:
        @app.agent(topics.segment_shares, name="fold_segment_shares", concurrency=1)
        async def fold_segment_shares(stream: Any) -> None:
            async for events in batches(stream, settings):
                await drops.fold(events)

    webhooks = services.webhooks
    if webhooks is not None:
        @app.task
        async def deliver_alerts_to_webhook() -> None:
            await webhooks.run_forever()


def declare_recovery(app: faust.App, tables: Tables, services: WorkerServices) -> None:
    """What each table's readers index once it is restored, and what a new assignment
    resets. Indexing only: restoring state never acts."""
    core, cluster, settings = services.core, services.cluster, services.settings

    @tables.customer_to_state.on_recover
    async def index_recovered_customers() -> None:
        indexed = rebuild_value_index(tables.customer_to_state, core.index,
                                      cluster.active_partitions(), core.rules.state,
                                      snapshot_folder(settings.data_dir))
        log.info("value index rebuilt: %d customers with a profile", indexed)

    @tables.slice_to_partial.on_recover
    async def index_recovered_partials() -> None:
        owned = cluster.active_partitions()
        read = core.partials_index.load(list(tables.slice_to_partial.items()), owned)
        if core.shares is not None:
            core.shares.to_resend |= owned  # a crash may have kept the last ones from the topic
        log.info("partials index loaded: %d tallies in %d slices", read,
                 core.partials_index.slice_count())

    @tables.customer_to_survey_memory.on_recover
    async def index_waiting_surveys() -> None:
        if core.surveys is not None:
            waiting = load_waiting_surveys(tables.customer_to_survey_memory, core.surveys,
                                           cluster.active_partitions())
            log.info("survey requests waiting: %d customers", waiting)

    @tables.issue_to_count.on_recover
    async def index_issue_counts() -> None:
        if core.priorities is not None:
            read = core.priorities.recovered(cluster.active_partitions())
            log.info("issue counts read: %d", read)

    @tables.alert_to_case.on_recover
    async def read_open_cases_again() -> None:
        services.cases.table_recovered()

    @tables.issue_window_to_count.on_recover
    async def index_issue_windows_again() -> None:
        services.recurring.expiry.table_recovered()

    drops = services.segment_drops
    if drops is not None:
        @tables.segment_window_to_shares.on_recover
        async def read_segment_tallies_again() -> None:
            drops.table_recovered(list(tables.segment_window_to_shares.items()))

    def after_assignment(sender: Any, *args: Any, **kwargs: Any) -> None:
        core.bands.ownership_changed()  # the high-value band counts this worker's share
        services.deadletters.forget_verified()  # read the dead-letter marks back again

    # cast: mode types the handler as a union of callables, which mypy cannot match
    app.on_partitions_assigned.connect(cast(Any, after_assignment))


def declare_timers(app: faust.App, services: WorkerServices) -> None:
    """Periodic work. Every timer but the stall watchdog is a state timer."""
    settings, config, metrics = services.settings, services.files.rules, services.metrics

    @app.timer(max(1.0, settings.stall_seconds / 4))
    async def watch_for_stalls() -> None:  # reads no table: runs while a recovery is stuck
        await services.watchdog.check()

    @state_timer(app, settings.value_band_refresh_seconds, metrics)
    async def refresh_value_bands() -> None:
        await services.refresh_value_bands()

    if services.core.surveys is not None:
        @state_timer(app, config.surveys.check_every_seconds, metrics)
        async def send_waiting_surveys() -> None:
            await services.state.send_waiting_surveys()

    @state_timer(app, config.lifecycle.check_every_seconds, metrics)
    async def check_alert_deadlines() -> None:
        await services.cases.check_deadlines()

    @state_timer(app, 5.0, metrics)
    async def forget_resolved_alerts() -> None:
        # 500 stored cases looked at per tick (about 6 ms: bench/alert_cases.py): a whole
        # walk of a million cases takes under three hours, far within the retention's days
        await services.cases.forget_resolved(settings.alert_case_retention_days,
                                             slice_size=500)

    if config.recurring_issue.auto_resolve:
        @state_timer(app, min(60.0, config.recurring_issue.window_minutes * 15.0), metrics)
        async def resolve_recovered_issues() -> None:
            await services.recurring.resolve_recovered()

    drops = services.segment_drops
    if drops is not None:
        @state_timer(app, config.segment_drop.evaluate_every_seconds, metrics)
        async def check_segment_drops() -> None:
            await drops.check()


def declare_web(app: faust.App, services: WorkerServices) -> None:
    """The HTTP views: the API, the console, metrics and health."""
    api = register_api(app, services)
    register_console(app, services, api)
    register_health_views(app, services.metrics, services.watchdog)
