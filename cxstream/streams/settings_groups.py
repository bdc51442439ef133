"""Groups of settings that no check of ``Settings`` spans, kept apart to keep the
settings module readable; ``Settings`` inherits each (the environment variables are the
same: ``CXSTREAM_<NAME>``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class WebhookDelivery(BaseModel):
    """How alerts are posted to webhooks: retries, body, timeouts, queues."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    webhook_secret: SecretStr | None = None
    """the webhook's Standard Webhooks signing key (`whsec_<base64>`, or any string)."""
    webhook_previous_secret: SecretStr | None = None
    """during a key rotation, the key receivers may still hold: requests carry a signature for
    each
    """
    webhook_retry_max_age_seconds: float = Field(default=86_400, gt=0)
    """an alert the receiver keeps refusing (5xx, 408, 429, unreachable) is retried until it is
    this old (a follow-up: since its notice), then moved to the alerts dead-letter topic
    """
    webhook_format: Literal["json", "slack"] = "json"
    """the webhook body: the alert as JSON, or a Slack message."""
    webhook_timeout_seconds: float = Field(default=5, gt=0, le=120)
    """timeout of one webhook request."""
    webhook_max_backoff_seconds: float = Field(default=60, gt=0, le=3600)
    """longest wait between webhook retries (jittered; a `Retry-After` of the receiver wins)."""
    webhook_queue_max: int = Field(default=10_000, ge=1, le=1_000_000)
    """deliveries (alerts, follow-ups, digests) waiting for one destination at most; one
    more is moved to the alerts dead-letter topic with the reason (each destination has its
    own queue: a receiver that is down delays no other)
    """


class EventTime(BaseModel):
    """Windows and event time."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    long_window_days: int = Field(default=7, ge=2, le=366)
    """the long window beside hour and day."""
    allowed_lateness_seconds: float = Field(default=86_400, ge=0)
    """answers older than the watermark minus this are late."""
    max_clock_skew_seconds: float = Field(default=600, ge=0, le=86_400)
    """an event time (`occurred_at`, a profile's `updated_at`) further ahead of the worker's
    clock or of its Kafka record's timestamp is dead-lettered as `schema`; no watermark or
    customer clock moves past the worker's clock plus this
    """


class SlowProcessingLog(BaseModel):
    """When Faust reports a partition it reads but does not process or commit."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    slow_processing_log_seconds: float = Field(default=300, ge=5, le=86_400)
    """a partition with unread records that no stream has processed, or no commit has
    advanced, for this long is logged at ERROR by Faust, with its likely causes (Faust's
    `stream_processing_timeout` and `broker_commit_livelock_soft_timeout`)
    """


class HighValueBand(BaseModel):
    """Which customers are high-value."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    high_value_share: float = Field(default=0.2, gt=0, lt=1)
    """the top share of customers by value that is "high-value"."""
    high_value_scope: Literal["segment", "overall"] = "segment"
    """`segment`: the top share within the customer's segment; `overall`: among all
    customers.
    """
    high_value_threshold: float | None = Field(default=None, ge=0)
    """a fixed value threshold instead of the top share."""
    high_value_min_customers: int | None = Field(default=None, ge=1)
    """a segment (scope `segment`) or the base (scope `overall`) has no top-share band until
    it counts this many customers with a profile: its customers are neither high-value nor
    not (quadrant `unknown`); unset: as many as the share needs to hold one customer, 1 /
    `CXSTREAM_HIGH_VALUE_SHARE` (5 for 0.2)
    """
    @property
    def band_min_customers(self) -> int:
        """CXSTREAM_HIGH_VALUE_MIN_CUSTOMERS, or 1 / the share (rounded up)."""
        return self.high_value_min_customers or math.ceil(1 / self.high_value_share - 1e-9)

    value_band_refresh_seconds: float = Field(default=30, gt=0)
    """how often the other workers' value histograms are gathered (a worker counts its own
    customers' profiles at once)
    """


class LocalBroker(BaseModel):
    """The local broker started by `cxstream broker start` (development, tests, demo)."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    kafka_version: str = Field(default="3.9.1", pattern=r"^\d+\.\d+\.\d+$")
    """Kafka version of the local broker (jars from Maven Central)."""
    kafka_cache_dir: Path = Path.home() / ".cache" / "cxstream"
    """where the jars are cached."""
    broker_dir: Path = Path(".cxstream/broker")
    """local broker's data, log and pid file."""
    broker_heap: str = Field(default="512m", pattern=r"^\d+[kmg]$")
    """local broker's Java heap."""


class Prediction(BaseModel):
    """The prediction model (docs/predictions.md)."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    model_file: Path | None = None
    """a model file written by `cxstream model train`: the worker scores every customer after
    each of their interactions and answers, and measures the predictions against the answers
    that follow; a file of another feature version stops start-up
    """

    @field_validator("model_file")
    @classmethod
    def _model_runs_here(cls, value: Path | None) -> Path | None:
        if value is not None:
            from cxstream.scoring.prediction import Model

            Model.load(value)  # ModelMismatch (a ValueError) says what differs
        return value
