"""All Prometheus metrics of a worker, created once against the registry passed in.

Names follow Prometheus conventions: prefix ``cxstream_``, ``_total`` on counters, base
units. Labels take bounded values only (topic names, error classes): never a customer id,
an event id or free text.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)

from cxstream.schemas.parsing import ErrorClass


def build_versions() -> dict[str, str]:
    """cxstream's version and those of the libraries that decide its behaviour."""
    from importlib.metadata import version

    from cxstream import __version__

    return {"version": __version__, "faust": version("faust-streaming"),
            "aiokafka": version("aiokafka"), "python": platform.python_version()}


def add_process_collectors(registry: CollectorRegistry) -> None:
    """process_* (CPU, memory, file descriptors), python_gc_* and python_info, which a
    fresh registry lacks (the default one has them)."""
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)


#: the stages of cxstream_own_work_seconds_total, in the order a batch goes through them
OWN_WORK_STAGES = ("validation", "read", "fold", "rules", "predict", "priorities",
                   "surveys", "encoding", "write", "send")
#: the actions of cxstream_partition_stalls_total (streams.health.watchdog)
STALL_ACTIONS = ("resumed", "gave_up")
#: the outcomes of cxstream_webhook_deliveries_total (streams.alerting.webhooks)
WEBHOOK_OUTCOMES = ("delivered", "retried", "deadlettered", "expired", "duplicate")

class WorkerMetrics:
    """The metric families a worker updates; tests pass a fresh ``CollectorRegistry()``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.build = Info("cxstream_build", "The versions this worker runs.",
                          registry=registry)
        self.build.info(build_versions())
        self._ingest(registry)
        self._outputs(registry)
        self._faults(registry)
        self._timing(registry)
        self._lifecycle(registry)

    def start_series(self, input_topics: Sequence[str]) -> None:
        """Write every label set the shipped Prometheus rules read, at 0: a counter
        series that appears only at its first increment hides that increment from
        ``increase()`` and ``rate()``, so a worker's first stall, dead letter or failed
        webhook would raise no alert (deploy/prometheus/rules)."""
        for topic in input_topics:
            self.events_consumed.labels(topic)
            for reason in ErrorClass:
                self.events_deadlettered.labels(topic, reason.value)
        for action in STALL_ACTIONS:
            self.partition_stalls.labels(action)
        for outcome in WEBHOOK_OUTCOMES:
            self.webhook_deliveries.labels(outcome)

    def _ingest(self, registry: CollectorRegistry) -> None:
        """Input read, validated, dead-lettered and folded."""
        self.events_consumed = Counter(
            "cxstream_events_consumed_total",
            "Input messages read from Kafka, valid or not.",
            ["topic"], registry=registry,
        )
        self.events_accepted = Counter(
            "cxstream_events_accepted_total",
            "Input messages that passed validation and were processed.",
            ["topic"], registry=registry,
        )
        self.events_deadlettered = Counter(
            "cxstream_events_deadlettered_total",
            "Input messages sent to the dead-letter topic, by error class.",
            ["topic", "reason"], registry=registry,
        )
        self.unknown_fields = Counter(
            "cxstream_unknown_fields_total",
            "Fields of accepted inputs that the contract does not name, by topic and "
            "field (ignored, never stored; the first 32 names per topic, later ones as "
            "(other)).", ["topic", "field"], registry=registry)
        self.events_too_old_for_rules = Counter(
            "cxstream_events_too_old_for_rules_total",
            "Feedback and interactions older than the rules file's max_event_age_hours "
            "when folded: counted in the scores, skipped by the customer rules (no alert "
            "for a backfill).", ["kind"], registry=registry)
        self.events_folded = Counter(
            "cxstream_events_folded_total",
            "Accepted inputs by what the fold did: applied, duplicate (same event_id "
            "resent), replayed (redelivered after a restart), late (kept in customer "
            "state, left out of group windows).",
            ["kind", "outcome"], registry=registry,
        )

    def _outputs(self, registry: CollectorRegistry) -> None:
        """What the rules raised and sent."""
        self.alerts_raised = Counter(
            "cxstream_alerts_raised_total",
            "New alerts published to the alerts topic.",
            ["rule", "severity"], registry=registry,
        )
        self.alerts_folded = Counter(
            "cxstream_alerts_folded_total",
            "Triggers folded into an open alert by its cooldown (an update is published).",
            ["rule"], registry=registry,
        )
        self.segment_evaluations = Counter(
            "cxstream_segment_evaluations_total",
            "Segment-drop evaluations of the segments whose shares this worker holds, and "
            "the segments looked at.",
            ["what"], registry=registry,
        )
        self.priority_signals = Counter(
            "cxstream_priority_signals_total",
            "Negative signals looked at for the priorities, by result: counted (moved an "
            "issue's count), again (the customer already counts in that issue and "
            "window), too_old or ahead (outside the current and previous windows).",
            ["result"], registry=registry,
        )
        self.survey_decisions = Counter(
            "cxstream_survey_decisions_total",
            "Survey requests asked for by a trigger, by survey and what was done: sent, "
            "suppressed or deferred (later), with the fatigue rule's reason (none when sent).",
            ["survey", "action", "reason"], registry=registry,
        )
        self.signals_emitted = Counter(
            "cxstream_issue_signals_total",
            "Negative experiences sent to recurring-issue counting, by kind.",
            ["kind"], registry=registry,
        )
        self.webhook_deliveries = Counter(
            "cxstream_webhook_deliveries_total",
            "Webhook outcomes: delivered, retried (a failed attempt), deadlettered "
            "(refused for good), expired (retried past webhook_retry_max_age_seconds, "
            "dead-lettered), duplicate (already delivered, skipped).",
            ["outcome"], registry=registry,
        )
        self.webhook_alerts_expired = Counter(
            "cxstream_webhook_alerts_expired_total",
            "Alerts deleted by the alerts topic's retention before the webhook got them.",
            registry=registry)

    def _faults(self, registry: CollectorRegistry) -> None:
        """Retries, overflows, failures, restores and stalls."""
        self.deadletter_send_retries = Counter(
            "cxstream_deadletter_send_retries_total",
            "Failed attempts to write a dead-letter record (retried while the worker runs; "
            "a record Kafka refuses for good stops the worker, exit 74).",
            registry=registry,
        )
        self.group_keys_overflow = Counter(
            "cxstream_group_keys_overflow_total",
            "Answers (by dimension), issue signals (issue_<kind>) and priority signals "
            "(priority_<kind>) counted under the group key \"(other)\": their key came "
            "after CXSTREAM_MAX_GROUP_KEYS distinct keys in its partition and window.",
            ["dimension"], registry=registry)
        self.send_retries = Counter(
            "cxstream_send_retries_total",
            "Failed attempts to write what a batch caused, by what (changelog, alerts), "
            "retried while the worker runs.", ["what"], registry=registry)
        self.cluster_request_failures = Counter(
            "cxstream_cluster_request_failures_total",
            "Requests to another worker's API that failed, by reason (unauthorized: the "
            "workers' CXSTREAM_API_TOKEN differ or one has none).",
            ["reason"], registry=registry)
        self.bulk_restored = Counter(
            "cxstream_bulk_restored_records_total",
            "Changelog records written to the RocksDB tables by the bulk restore "
            "(CXSTREAM_BULK_RESTORE).", registry=registry)
        self.partition_stalls = Counter(
            "cxstream_partition_stalls_total",
            "Input partitions found stalled: resumed in place, or gave_up (worker exits "
            "to be restarted).",
            ["action"], registry=registry,
        )
        self.partitions_assigned = Gauge(
            "cxstream_partitions_assigned",
            "Input partitions this worker actively processes.",
            registry=registry,
        )

    def _timing(self, registry: CollectorRegistry) -> None:
        """Delays and durations: events, alerts, batches, own work."""
        self.event_delay = Histogram(
            "cxstream_event_delay_seconds",
            "From an event's own time (occurred_at) to its processing.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400),
            registry=registry,
        )
        self.alert_latency = Histogram(
            "cxstream_alert_latency_seconds",
            "From the arrival of the input that raised an alert (Kafka record time) to "
            "the alert's publication.",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        self.batch_size = Histogram(
            "cxstream_batch_events",
            "Input messages per processed batch.",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000),
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "cxstream_batch_processing_seconds",
            "Time to validate, dead-letter and fold one batch.",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        own_work = Counter(
            "cxstream_own_work_seconds_total",
            "The worker's own work on its batches, by stage: validation, read (the "
            "batch's customers from the table, decoded), fold, rules (the customer rules, "
            "inside the fold), predict (the prediction model, inside the fold), "
            "priorities, surveys, encoding (table values), write "
            "(table and changelog records staged), send (alerts and changelog to Kafka, "
            "waiting for its acknowledgement).",
            ["stage"], registry=registry)
        #: one child per stage, bound once (labels() costs a lookup per call)
        self.own_work = {stage: own_work.labels(stage) for stage in OWN_WORK_STAGES}
        self._predictions(registry)

    def _predictions(self, registry: CollectorRegistry) -> None:
        """The prediction model measured as it runs (scoring.prediction_live); the
        version label has at most prediction_live.VERSIONS_KEPT values."""
        self.prediction_answers = Counter(
            "cxstream_prediction_answers_total",
            "New answers compared with the prediction made before them, by model version "
            "and outcome (low or other).", ["model_version", "outcome"], registry=registry)
        self.prediction_live_auc = Gauge(
            "cxstream_prediction_live_auc",
            "AUC of the predictions made before this ISO week's answers (this worker's "
            "partitions).", ["model_version"], registry=registry)
        self.prediction_live_brier = Gauge(
            "cxstream_prediction_live_brier",
            "Brier score of the predictions made before this ISO week's answers.",
            ["model_version"], registry=registry)
        self.prediction_live_week_answers = Gauge(
            "cxstream_prediction_live_week_answers",
            "Answers compared this ISO week (what the live AUC stands on).",
            ["model_version"], registry=registry)
        self.prediction_training_auc = Gauge(
            "cxstream_prediction_training_auc",
            "AUC of the model on its training's latest answers (the model file's "
            "evaluation).", ["model_version"], registry=registry)


    def _lifecycle(self, registry: CollectorRegistry) -> None:
        """Alert cases, webhooks, recovery, timers and readiness."""
        hours = (60, 300, 900, 1800, 3600, 4 * 3600, 8 * 3600, 24 * 3600, 72 * 3600,
                 7 * 24 * 3600)
        self.alert_time_to_acknowledge = Histogram(
            "cxstream_alert_time_to_acknowledge_seconds",
            "From an alert's creation to its acknowledgement.",
            ["rule", "severity"], buckets=hours, registry=registry)
        self.alert_time_to_resolve = Histogram(
            "cxstream_alert_time_to_resolve_seconds",
            "From an alert's creation to its resolution (by a person or by itself).",
            ["rule", "severity", "how"], buckets=hours, registry=registry)
        self.alert_sla_breaches = Counter(
            "cxstream_alert_sla_breaches_total",
            "Deadlines missed, by which: acknowledged (act_by) or resolved (resolve_by); "
            "each one escalates the alert (up to lifecycle.max_escalations).",
            ["rule", "missed"], registry=registry)
        self.alert_changes = Counter(
            "cxstream_alert_lifecycle_changes_total",
            "Changes written to the alert lifecycle topic, by action.",
            ["action"], registry=registry)
        self.alert_notifications = Counter(
            "cxstream_alert_notifications_total",
            "Messages to receivers, by kind (alert, follow_up, digest) and outcome "
            "(posted, held: waiting for the recipient's digest).",
            ["kind", "outcome"], registry=registry)

        self.webhook_request_seconds = Histogram(
            "cxstream_webhook_request_seconds",
            "Time of each webhook request, by outcome: delivered, retried (a transient "
            "failure: timeout, 5xx, 408, 429) or refused (for good: 3xx, other 4xx).",
            ["outcome"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry)
        self.webhook_oldest_undelivered = Gauge(
            "cxstream_webhook_oldest_undelivered_seconds",
            "Age (since it was raised) of the oldest alert this worker's webhook sink is "
            "retrying or holding for a digest; 0 when none waits.", registry=registry)
        self.recovery_remaining = Gauge(
            "cxstream_recovery_remaining_records",
            "Changelog records a table recovery still has to read (0 when none runs).",
            registry=registry)
        self.timer_ticks = Counter(
            "cxstream_timer_ticks_total",
            "Ticks of the timers that act on state, by timer and outcome: ran, failed, or "
            "waited (the worker was restoring a table, rebalancing or stopping: restoring "
            "state never acts).", ["timer", "outcome"], registry=registry)
        self.timer_seconds = Histogram(
            "cxstream_timer_tick_seconds",
            "How long a tick of a timer that acts on state held the worker's loop (the "
            "deadline check, the retention sweep, the survey timer...), by timer.",
            ["timer"], registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.ready = Gauge(
            "cxstream_ready",
            "1 when the worker is ready (GET /readyz answers 200), else 0.",
            registry=registry)

    def watch_partitions(self, count: Callable[[], int]) -> None:
        """Read the assigned partition count at each scrape."""
        self.partitions_assigned.set_function(count)
