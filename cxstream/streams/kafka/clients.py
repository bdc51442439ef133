"""Kafka client options from the settings, and the names of the contract's and the
worker's topics (kafka.topic_admin makes them)."""

from __future__ import annotations

import ssl
from typing import Any

import faust
from aiokafka.helpers import create_ssl_context

from cxstream.streams.settings import Settings


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


def contract_topics(settings: Settings) -> list[str]:
    """Every topic of the contract: the three inputs, alerts, the dead-letter topics, the
    alert cases and the survey requests."""
    return [*settings.input_topics, settings.topic_alerts, settings.topic_deadletter,
            settings.topic_alerts_deadletter, settings.topic_alert_lifecycle,
            settings.topic_survey_requests]
