"""The Faust app object of a worker, configured from the settings (no topic, table or
agent yet: streams.topology declares them)."""

from __future__ import annotations

from collections.abc import Mapping

import faust
from faust.types.settings import Settings as FaustSettings

from cxstream.streams.kafka.clients import faust_credentials
from cxstream.streams.kafka.lean_monitor import LeanMonitor
from cxstream.streams.settings import Settings


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
                         "cluster first (streams.kafka.topic_admin.resolved_replication)")
    return replication_factor


def faust_app(settings: Settings, partitions: int) -> faust.App:
    """The worker's Faust app: raw bytes in and out, tables in memory unless a table asks
    for RocksDB, acks from every in-sync replica, Faust's own table and router views
    off."""
    return faust.App(
        settings.app_id,
        broker=[f"kafka://{server}" for server in settings.bootstrap_servers.split(",")],
        broker_credentials=faust_credentials(settings),
        store="memory://",
        datadir=str(settings.data_dir),
        topic_partitions=partitions,
        # the worker resolves it from the cluster first (topic_admin.resolved_replication)
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
        stream_processing_timeout=settings.slow_processing_log_seconds,
        broker_commit_livelock_soft_timeout=settings.slow_processing_log_seconds,
        # a restarted worker takes its partitions back without a rebalance
        consumer_group_instance_id=settings.group_instance_id,
        autodiscover=False,
        key_serializer="raw",
        value_serializer="raw",
        # Faust's default monitor keeps statistics per event that nothing reads
        # (streams.kafka.lean_monitor; bench/throughput.py has Faust's iteration with each)
        Monitor=LeanMonitor,
    )
